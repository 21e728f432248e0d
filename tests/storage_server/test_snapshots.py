"""Snapshots, and volumes restored from them or cloned from other volumes, through
the admin API of a real server process, on SQLite and PostgreSQL."""

import random
import stat
import threading
import uuid

import grpc
import pytest

from proto.netvol.v1 import admin_pb2 as pb
from proto.netvol.v1 import filesystem_pb2 as fpb
from tests.harness.csi import code_of
from tests.harness.server import StorageServer
from tests.harness.volume import Volume, sha256

GiB = 2**30
MiB = 2**20
Entry = tuple[object, ...]


def take(server: StorageServer, volume: Volume, name: str = "") -> pb.Snapshot:
    request = pb.CreateSnapshotRequest(
        name=name or f"snap-{uuid.uuid4().hex[:12]}", source_volume=pb.VolumeRef(id=volume.id)
    )
    return server.admin().CreateSnapshot(request)


def from_snapshot(snapshot: pb.Snapshot) -> pb.ContentSource:
    return pb.ContentSource(snapshot=pb.SnapshotRef(id=snapshot.id))


def from_volume(volume: Volume) -> pb.ContentSource:
    return pb.ContentSource(volume=pb.VolumeRef(id=volume.id))


def populate(vol: Volume) -> None:
    """A bit of everything a volume holds: inline and blob data, a hole, a hard
    link, a symlink, a FIFO, nested directories and extended attributes."""
    rng = random.Random(7)
    top = vol.mkdir("dir")
    sub = vol.mkdir("sub", parent=top.ino)
    small = vol.create("small", b"inline bytes")
    big = vol.create("big", rng.randbytes(3 * MiB))
    vol.create("deep", rng.randbytes(100_000), parent=sub.ino)
    vol.link(big.ino, "big-link", parent=top.ino)
    vol.mknod("symlink", stat.S_IFLNK | 0o777, target="dir/sub/deep")
    vol.mknod("fifo", stat.S_IFIFO | 0o600)
    sparse = vol.mknod("sparse")
    vol.write(sparse.ino, 5 * MiB, b"the end")
    for ino, value in ((small.ino, b"tag"), (top.ino, b"dir-tag")):
        vol.fs.SetXattr(fpb.SetXattrRequest(volume_id=vol.id, ino=ino, name="user.t", value=value))


def tree(vol: Volume) -> dict[str, Entry]:
    """Every path of the volume with its attributes, contents and xattrs; an
    inode is named by the first path it was found at, so hard links show."""
    found: dict[str, Entry] = {}
    first_path: dict[int, str] = {}

    def walk(ino: int, prefix: str) -> None:
        for entry in vol.readdir(ino).entries:
            path, attr = prefix + entry.name, entry.attr
            if stat.S_ISREG(attr.mode):
                content = sha256(vol.read(attr.ino))
            elif stat.S_ISLNK(attr.mode):
                request = fpb.ReadLinkRequest(volume_id=vol.id, ino=attr.ino)
                content = vol.fs.ReadLink(request).target
            else:
                content = ""
            names = vol.fs.ListXattr(fpb.ListXattrRequest(volume_id=vol.id, ino=attr.ino)).names
            xattrs = {
                n: vol.fs.GetXattr(fpb.GetXattrRequest(volume_id=vol.id, ino=attr.ino, name=n))
                for n in names
            }
            found[path] = (
                first_path.setdefault(attr.ino, path),
                attr.mode,
                attr.nlink,
                attr.size,
                attr.allocated,
                attr.mtime_ns,
                content,
                {n: v.value for n, v in xattrs.items()},
            )
            if stat.S_ISDIR(attr.mode):
                walk(attr.ino, path + "/")

    walk(vol.root, "")
    return found


def change_everything(vol: Volume) -> None:
    big = vol.lookup("big")
    vol.write(big.ino, MiB, b"overwritten")
    vol.setattr(vol.lookup("sparse").ino, size=10)
    vol.unlink("small")
    vol.rename("dir", "renamed")
    vol.unlink("symlink")
    vol.create("new", b"after the snapshot")
    vol.fs.SetXattr(fpb.SetXattrRequest(volume_id=vol.id, ino=big.ino, name="user.n", value=b"x"))


def blob_count(server: StorageServer) -> int:
    return sum(1 for _ in server.blob_dir.glob("*/*"))


# ----------------------------------------------------------------- contents


def test_a_snapshot_keeps_the_files_as_they_were(server: StorageServer) -> None:
    vol = Volume(server)
    populate(vol)
    before, used = tree(vol), vol.used()
    snapshot = take(server, vol)
    assert (snapshot.size_bytes, snapshot.used_bytes) == (GiB, used)
    assert snapshot.ready_to_use and snapshot.source_volume_id == vol.id
    change_everything(vol)
    assert tree(vol) != before

    restored = Volume(server, size=GiB, source=from_snapshot(snapshot))
    assert tree(restored) == before
    assert restored.used() == used
    # The restored volume is a volume like any other, and the snapshot stays as it was.
    restored.unlink("big")
    assert tree(Volume(server, size=GiB, source=from_snapshot(snapshot))) == before


def test_a_clone_copies_a_volume_then_goes_its_own_way(server: StorageServer) -> None:
    vol = Volume(server)
    populate(vol)
    before = tree(vol)
    clone = Volume(server, size=2 * GiB, source=from_volume(vol))
    assert tree(clone) == before
    assert clone.used() == vol.used()

    change_everything(clone)
    assert tree(vol) == before
    changed = tree(clone)
    vol.unlink("big")
    assert tree(clone) == changed


def test_restore_after_the_source_volume_is_gone(server: StorageServer) -> None:
    admin = server.admin()
    vol = Volume(server)
    populate(vol)
    before = tree(vol)
    snapshot = take(server, vol)
    admin.DeleteVolume(pb.DeleteVolumeRequest(volume=pb.VolumeRef(id=vol.id)))
    kept = admin.GetSnapshot(pb.GetSnapshotRequest(snapshot=pb.SnapshotRef(id=snapshot.id)))
    # CSI requires the source's id of every snapshot, even after the source is gone.
    assert kept == snapshot
    assert tree(Volume(server, source=from_snapshot(snapshot))) == before


def test_a_snapshot_of_a_volume_being_written_is_one_moment(server: StorageServer) -> None:
    """A writer replaces a file again and again (a new file, then a rename over
    the old one); every snapshot holds one whole version, never a mixture."""
    vol = Volume(server)
    vol.create("f", bytes([0]) * 70_000)
    stop = threading.Event()

    def writer() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            name = f"tmp-{k}"
            vol.create(name, bytes([k % 256]) * (70_000 + k))
            vol.rename(name, "f")

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        snapshots = [take(server, vol) for _ in range(15)]
    finally:
        stop.set()
        thread.join()
    for snapshot in snapshots:
        restored = Volume(server, source=from_snapshot(snapshot))
        data = restored.read(restored.lookup("f").ino)
        assert data == data[:1] * len(data)
        assert (len(data) - 70_000) % 256 == data[0]
        assert restored.used() == sum(e.attr.allocated for e in restored.readdir().entries)


# ----------------------------------------------------------------- blobs and quota


def test_snapshots_restores_and_clones_share_the_blobs(server: StorageServer) -> None:
    vol = Volume(server)
    populate(vol)
    blobs = blob_count(server)
    assert blobs >= 2
    snapshot = take(server, vol)
    Volume(server, source=from_snapshot(snapshot))
    Volume(server, source=from_volume(vol))
    assert blob_count(server) == blobs


def test_a_copy_must_fit_its_data(server: StorageServer) -> None:
    admin = server.admin()
    vol = Volume(server)
    vol.create("f", bytes(3 * MiB))
    used = vol.used()
    snapshot = take(server, vol)
    for source in (from_snapshot(snapshot), from_volume(vol)):
        small = pb.CreateVolumeRequest(name="small", size_bytes=used - 1, content_source=source)
        assert code_of(admin.CreateVolume, small) == grpc.StatusCode.OUT_OF_RANGE
        fitting = Volume(server, size=used, source=source)
        assert fitting.used() == used
        # Full: one more byte is beyond the quota.
        extra = fitting.create("extra")
        request = fpb.WriteRequest(header=fpb.WriteHeader(volume_id=fitting.id, ino=extra.ino))
        data = fpb.WriteRequest(data=fpb.WriteData(offset=0, data=b"x"))
        with pytest.raises(grpc.RpcError) as info:
            fitting.fs.Write(iter([request, data]))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    names = [v.name for v in admin.ListVolumes(pb.ListVolumesRequest()).volumes]
    assert "small" not in names


# ----------------------------------------------------------------- the API's rules


def test_create_snapshot_is_idempotent_by_name_and_source(server: StorageServer) -> None:
    admin = server.admin()
    vol, other = Volume(server), Volume(server)
    first = take(server, vol, "daily")
    again = admin.CreateSnapshot(
        pb.CreateSnapshotRequest(name="daily", source_volume=pb.VolumeRef(name=vol.name))
    )
    assert again == first
    elsewhere = pb.CreateSnapshotRequest(name="daily", source_volume=pb.VolumeRef(id=other.id))
    assert code_of(admin.CreateSnapshot, elsewhere) == grpc.StatusCode.ALREADY_EXISTS
    # Snapshot names and volume names are apart.
    assert take(server, vol, vol.name).name == vol.name


def test_create_snapshot_errors(server: StorageServer) -> None:
    admin = server.admin()
    admin.CreateVolume(pb.CreateVolumeRequest(name="v", size_bytes=GiB))
    source = pb.VolumeRef(name="v")
    for request, code in (
        (pb.CreateSnapshotRequest(name="s", source_volume=pb.VolumeRef(name="nope")), "NOT_FOUND"),
        (pb.CreateSnapshotRequest(name="s", source_volume=pb.VolumeRef(id="nope")), "NOT_FOUND"),
        (pb.CreateSnapshotRequest(name="s"), "INVALID_ARGUMENT"),
        (pb.CreateSnapshotRequest(source_volume=source), "INVALID_ARGUMENT"),
        (pb.CreateSnapshotRequest(name="bad/name", source_volume=source), "INVALID_ARGUMENT"),
        (pb.CreateSnapshotRequest(name="x" * 129, source_volume=source), "INVALID_ARGUMENT"),
    ):
        assert code_of(admin.CreateSnapshot, request).name == code
    assert not admin.ListSnapshots(pb.ListSnapshotsRequest()).snapshots


def test_get_and_delete_snapshots(server: StorageServer) -> None:
    admin = server.admin()
    vol = Volume(server)
    snapshot = take(server, vol, "s1")
    for ref in (pb.SnapshotRef(name="s1"), pb.SnapshotRef(id=snapshot.id)):
        assert admin.GetSnapshot(pb.GetSnapshotRequest(snapshot=ref)) == snapshot
    admin.DeleteSnapshot(pb.DeleteSnapshotRequest(snapshot=pb.SnapshotRef(name="s1")))
    for ref in (pb.SnapshotRef(name="s1"), pb.SnapshotRef(id=snapshot.id)):
        get = pb.GetSnapshotRequest(snapshot=ref)
        assert code_of(admin.GetSnapshot, get) == grpc.StatusCode.NOT_FOUND
        # Deleting the unknown succeeds.
        admin.DeleteSnapshot(pb.DeleteSnapshotRequest(snapshot=ref))
    restore = pb.CreateVolumeRequest(
        name="r", size_bytes=GiB, content_source=from_snapshot(snapshot)
    )
    assert code_of(admin.CreateVolume, restore) == grpc.StatusCode.NOT_FOUND
    no_ref = pb.DeleteSnapshotRequest()
    assert code_of(admin.DeleteSnapshot, no_ref) == grpc.StatusCode.INVALID_ARGUMENT


def test_create_volume_compares_its_source(server: StorageServer) -> None:
    admin = server.admin()
    vol = Volume(server)
    snapshot = take(server, vol, "s")
    by_name = pb.ContentSource(snapshot=pb.SnapshotRef(name="s"))
    request = pb.CreateVolumeRequest(name="copy", size_bytes=GiB, content_source=by_name)
    first = admin.CreateVolume(request)
    assert first.content_source == from_snapshot(snapshot)
    assert admin.CreateVolume(request) == first
    by_id = pb.CreateVolumeRequest(
        name="copy", size_bytes=GiB, content_source=from_snapshot(snapshot)
    )
    assert admin.CreateVolume(by_id) == first
    for other in (from_volume(vol), None):
        changed = pb.CreateVolumeRequest(name="copy", size_bytes=GiB, content_source=other)
        assert code_of(admin.CreateVolume, changed) == grpc.StatusCode.ALREADY_EXISTS
    for missing in (
        pb.ContentSource(snapshot=pb.SnapshotRef(name="nope")),
        pb.ContentSource(snapshot=pb.SnapshotRef(id="nope")),
        pb.ContentSource(volume=pb.VolumeRef(name="nope")),
        pb.ContentSource(volume=pb.VolumeRef(id="nope")),
        # A snapshot's id is not a volume's.
        pb.ContentSource(volume=pb.VolumeRef(id=snapshot.id)),
    ):
        request = pb.CreateVolumeRequest(name="new", size_bytes=GiB, content_source=missing)
        assert code_of(admin.CreateVolume, request) == grpc.StatusCode.NOT_FOUND


def test_snapshots_are_not_volumes(server: StorageServer) -> None:
    admin = server.admin()
    vol = Volume(server)
    vol.create("f", bytes(MiB))
    capacity = admin.GetCapacity(pb.GetCapacityRequest())
    snapshot = take(server, vol)
    listed = admin.ListVolumes(pb.ListVolumesRequest()).volumes
    assert [v.id for v in listed] == [vol.id]
    # Capacity counts volumes: a snapshot shares their blobs and has no quota.
    after = admin.GetCapacity(pb.GetCapacityRequest())
    counted = ("provisioned_bytes", "used_bytes", "volume_count")
    assert [getattr(after, f) for f in counted] == [getattr(capacity, f) for f in counted]
    for ref in (pb.VolumeRef(id=snapshot.id), pb.VolumeRef(name=snapshot.name)):
        get = pb.GetVolumeRequest(volume=ref)
        assert code_of(admin.GetVolume, get) == grpc.StatusCode.NOT_FOUND
    opened = fpb.OpenVolumeRequest(name=snapshot.name)
    assert code_of(vol.fs.OpenVolume, opened) == grpc.StatusCode.NOT_FOUND


def test_list_snapshots_pages_and_filters(server: StorageServer) -> None:
    admin = server.admin()
    volumes = [Volume(server), Volume(server)]
    made = [take(server, volumes[i % 2], f"snap-{i:03}") for i in range(120)]
    seen: list[pb.Snapshot] = []
    token = ""
    while True:
        page = admin.ListSnapshots(pb.ListSnapshotsRequest(page_size=7, page_token=token))
        assert len(page.snapshots) <= 7
        seen += page.snapshots
        token = page.next_page_token
        if not token:
            break
    assert seen == made
    assert len(admin.ListSnapshots(pb.ListSnapshotsRequest()).snapshots) == 100

    of_second = admin.ListSnapshots(
        pb.ListSnapshotsRequest(page_size=1000, source_volume_id=volumes[1].id)
    ).snapshots
    assert list(of_second) == made[1::2]
    one = pb.ListSnapshotsRequest(snapshot_id=made[5].id)
    assert list(admin.ListSnapshots(one).snapshots) == [made[5]]
    both = pb.ListSnapshotsRequest(snapshot_id=made[5].id, source_volume_id=volumes[0].id)
    assert not admin.ListSnapshots(both).snapshots
    for unknown in (
        pb.ListSnapshotsRequest(snapshot_id="none-exist-id"),
        pb.ListSnapshotsRequest(source_volume_id="fake-vol-id"),
    ):
        assert not admin.ListSnapshots(unknown).snapshots

    # A token stays valid when the snapshot it ends at is deleted.
    first = admin.ListSnapshots(pb.ListSnapshotsRequest(page_size=3))
    admin.DeleteSnapshot(pb.DeleteSnapshotRequest(snapshot=pb.SnapshotRef(id=made[2].id)))
    rest = admin.ListSnapshots(
        pb.ListSnapshotsRequest(page_size=1000, page_token=first.next_page_token)
    )
    assert list(rest.snapshots) == made[3:]
    for bad in (
        pb.ListSnapshotsRequest(page_token="invalid-token"),
        pb.ListSnapshotsRequest(page_size=1001),
    ):
        assert code_of(admin.ListSnapshots, bad) == grpc.StatusCode.INVALID_ARGUMENT
