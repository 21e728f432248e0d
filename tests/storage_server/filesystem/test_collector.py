"""Blob collection: unreferenced blobs go once they are old enough, referenced
ones stay; deleting a volume removes its namespace and frees its blobs."""

import errno
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from proto.netvol.v1 import admin_pb2 as apb
from proto.netvol.v1 import filesystem_pb2 as pb
from storage_server.db import Database
from storage_server.filesystem import requests
from storage_server.filesystem.blobs import BLOB_MAX, LocalBlobStore
from storage_server.filesystem.collector import collect
from tests.harness.processes import wait_until
from tests.harness.server import StorageServer
from tests.harness.volume import Volume, errno_of, new_request_id, sha256

MiB = 1024 * 1024


def blobs_on_disk(server: StorageServer) -> set[str]:
    return {p.name for p in server.blob_dir.glob("*/*")}


def test_collect_keeps_referenced_blobs(server: StorageServer, db: Database) -> None:
    vol = Volume(server)
    rng = random.Random(11)
    kept = rng.randbytes(MiB)
    keep = vol.create("keep", kept)
    overwritten = vol.create("overwritten", rng.randbytes(MiB))
    vol.create("deleted", rng.randbytes(300_000))
    before = blobs_on_disk(server)
    assert len(before) == 3
    new = rng.randbytes(MiB)
    vol.write(overwritten.ino, 0, new)
    vol.unlink("deleted")
    stray_id = uuid.uuid4().hex
    stray = server.blob_dir / stray_id[:2] / stray_id
    stray.write_bytes(b"left by a crash before commit")
    assert len(blobs_on_disk(server)) == 5

    store = LocalBlobStore(server.blob_dir)
    assert collect(db, store, grace_seconds=600) == 0
    assert collect(db, store, grace_seconds=0) == 3
    after = blobs_on_disk(server)
    assert len(after) == 2
    assert not stray.exists()
    assert sha256(vol.read(keep.ino)) == sha256(kept)
    assert sha256(vol.read(overwritten.ino)) == sha256(new)
    assert collect(db, store, grace_seconds=0) == 0


def test_collector_runs_in_the_background(tmp_path: Path, database_url: str) -> None:
    args = ("--collect-interval-seconds", "0.2", "--blob-grace-seconds", "1")
    server = StorageServer(tmp_path / "server", database_url, extra_args=args)
    try:
        server.start()
        vol = Volume(server)
        vol.create("f", bytes(MiB))
        assert len(blobs_on_disk(server)) == 1
        vol.unlink("f")
        wait_until(lambda: not blobs_on_disk(server), 15, "the collector")
    finally:
        server.stop()


def test_delete_volume_removes_namespace_and_frees_blobs(
    server: StorageServer, db: Database
) -> None:
    vol = Volume(server, "doomed")
    keeper = Volume(server, "keeper")
    kept = keeper.create("f", b"k" * MiB)
    directory = vol.mkdir("d")
    file = vol.create("f", b"x" * MiB, parent=directory.ino)
    vol.create("small", b"inline")
    vol.mknod("g", request_id=new_request_id())
    vol.fs.SetXattr(pb.SetXattrRequest(volume_id=vol.id, ino=file.ino, name="user.a", value=b"1"))
    assert len(blobs_on_disk(server)) == 2

    server.admin().DeleteVolume(apb.DeleteVolumeRequest(volume=apb.VolumeRef(name="doomed")))
    with db.read() as session:
        for table, column in [
            ("inodes", "volume_id"),
            ("requests", "volume_id"),
        ]:
            count = session.scalar(
                sa.text(f"SELECT count(*) FROM {table} WHERE {column} = :v"), {"v": vol.id}
            )
            assert count == 0, table
        for table in ("dentries", "slices", "xattrs"):
            rows = session.scalar(sa.text(f"SELECT count(*) FROM {table}"))
            # Only the keeper's file is left: one entry, one slice, no xattrs.
            assert rows == {"dentries": 1, "slices": 1, "xattrs": 0}[table], table
    assert collect(db, LocalBlobStore(server.blob_dir), grace_seconds=0) == 1
    assert len(blobs_on_disk(server)) == 1
    assert keeper.read(kept.ino) == b"k" * MiB


def test_blobs_stay_while_a_snapshot_or_a_copy_names_them(
    server: StorageServer, db: Database
) -> None:
    admin = server.admin()
    store = LocalBlobStore(server.blob_dir)
    vol = Volume(server)
    data = random.Random(5).randbytes(2 * MiB)
    vol.create("f", data)
    snapshot = admin.CreateSnapshot(
        apb.CreateSnapshotRequest(name="s", source_volume=apb.VolumeRef(id=vol.id))
    )
    admin.DeleteVolume(apb.DeleteVolumeRequest(volume=apb.VolumeRef(id=vol.id)))
    assert collect(db, store, grace_seconds=0) == 0

    source = apb.ContentSource(snapshot=apb.SnapshotRef(id=snapshot.id))
    restored = Volume(server, source=source)
    admin.DeleteSnapshot(apb.DeleteSnapshotRequest(snapshot=apb.SnapshotRef(id=snapshot.id)))
    assert collect(db, store, grace_seconds=0) == 0
    assert sha256(restored.read(restored.lookup("f").ino)) == sha256(data)

    admin.DeleteVolume(apb.DeleteVolumeRequest(volume=apb.VolumeRef(id=restored.id)))
    assert collect(db, store, grace_seconds=0) == 1
    assert not blobs_on_disk(server)
    with db.read() as session:
        for table in ("volumes", "snapshots", "inodes", "slices"):
            assert session.scalar(sa.text(f"SELECT count(*) FROM {table}")) == 0, table


def test_expired_request_ids_are_forgotten(server: StorageServer, db: Database) -> None:
    vol = Volume(server)
    rid = new_request_id()
    vol.mknod("f", request_id=rid)
    assert requests.expire(db, ttl_seconds=3600) == 0
    assert vol.mknod("f", request_id=rid).ino == vol.lookup("f").ino
    assert requests.expire(db, ttl_seconds=0) == 1
    # Forgotten: the same id is now a new call.
    assert errno_of(lambda: vol.mknod("f", request_id=rid)) == errno.EEXIST


def test_a_write_slower_than_the_grace_period_is_sent_again(
    tmp_path: Path, database_url: str
) -> None:
    """A stream that took so long that its first blob may have been collected
    changes nothing and is answered UNAVAILABLE, which clients retry on: the
    same call sent again in good time is applied."""
    grace = 2.0
    server = StorageServer(
        tmp_path / "server", database_url, extra_args=("--blob-grace-seconds", str(grace))
    )
    try:
        server.start()
        vol = Volume(server)
        file = vol.create("f", b"inline data needs no blob")
        data = random.Random(3).randbytes(BLOB_MAX)  # a blob as soon as it is in
        header = pb.WriteHeader(volume_id=vol.id, request_id=new_request_id(), ino=file.ino)

        def slow() -> Iterator[pb.WriteRequest]:
            yield pb.WriteRequest(header=header)
            yield pb.WriteRequest(data=pb.WriteData(offset=0, data=data))
            time.sleep(grace / 2 + 0.5)

        with pytest.raises(grpc.RpcError) as refused:
            vol.fs.Write(slow())
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert vol.getattr(file.ino) == file
        assert vol.read(file.ino) == b"inline data needs no blob"

        again = [pb.WriteRequest(header=header), pb.WriteRequest(data=pb.WriteData(data=data))]
        assert vol.fs.Write(iter(again)).size == BLOB_MAX
        assert vol.read(file.ino) == data
    finally:
        server.stop()
