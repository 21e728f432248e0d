"""Blob collection: unreferenced blobs go once they are old enough, referenced
ones stay; deleting a volume removes its namespace and frees its blobs."""

import errno
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
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


def test_a_slow_write_is_sent_again_only_if_a_collection_may_have_taken_its_blob(
    tmp_path: Path, database_url: str
) -> None:
    """A stream slower than half the blob grace commits unless the collector
    decided about old blobs meanwhile; then it changes nothing and is answered
    UNAVAILABLE, which clients retry on, and the same call sent again applies."""
    grace = 4.0
    args = ("--blob-grace-seconds", str(grace), "--collect-interval-seconds", "0.2")
    server = StorageServer(tmp_path / "server", database_url, extra_args=args)
    try:
        server.start()
        vol = Volume(server)
        file = vol.create("f", b"inline data needs no blob")
        data = random.Random(3).randbytes(BLOB_MAX)  # a blob as soon as it is in

        def slow(request_id: str, meanwhile: Callable[[], None]) -> Iterator[pb.WriteRequest]:
            header = pb.WriteHeader(volume_id=vol.id, request_id=request_id, ino=file.ino)
            yield pb.WriteRequest(header=header)
            yield pb.WriteRequest(data=pb.WriteData(offset=0, data=data))
            started = time.monotonic()
            meanwhile()
            time.sleep(max(0.0, grace / 2 + 0.5 - (time.monotonic() - started)))

        # No collection in between: slow, but its blob is safe.
        assert vol.fs.Write(slow(new_request_id(), lambda: None)).size == BLOB_MAX
        assert vol.read(file.ino) == data

        def old_blob_collected() -> None:
            store = LocalBlobStore(server.blob_dir)
            junk = store.put([b"nobody's"])
            old = time.time() - 10 * grace
            os.utime(server.blob_dir / junk[:2] / junk, (old, old))
            wait_until(lambda: junk not in blobs_on_disk(server), 10, "the collector")

        rewrite = new_request_id()
        with pytest.raises(grpc.RpcError) as refused:
            vol.fs.Write(slow(rewrite, old_blob_collected))
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert vol.read(file.ino) == data

        header = pb.WriteHeader(volume_id=vol.id, request_id=rewrite, ino=file.ino)
        again = [
            pb.WriteRequest(header=header),
            pb.WriteRequest(data=pb.WriteData(data=data[::-1])),
        ]
        assert vol.fs.Write(iter(again)).size == BLOB_MAX
        assert vol.read(file.ino) == data[::-1]
    finally:
        server.stop()
