"""Which calls wait for the server's stable storage: a close of a file opened
for writing, fsync, a truncate and whatever makes an inode (create, mkdir,
mknod, symlink) do, for everything this mount changed before them; nothing else
waits. Counted in the server's log, one line per call."""

import os
import re
import stat
from pathlib import Path

import pytest

from fuse_client.remote import Remote, open_volume
from proto.netvol.v1 import filesystem_pb2 as pb
from storage_server.client import connect
from tests.harness.mount import Mount

SYNC_LINE = re.compile(r"method=Sync .*code=OK")


def _syncs(mounted: Mount) -> int:
    return len(SYNC_LINE.findall(mounted.server.log_path.read_text()))


def test_close_and_fsync_make_earlier_changes_durable(fs_root: Path, mounted: Mount) -> None:
    before = _syncs(mounted)
    (fs_root / "d").mkdir()
    with (fs_root / "d" / "f").open("wb") as f:
        f.write(b"data")  # mkdir, create and store are durable: no Sync
    assert _syncs(mounted) == before

    (fs_root / "d" / "f").chmod(0o600)
    with (fs_root / "d" / "f").open("rb") as f:
        assert f.read() == b"data"  # a reader's close promises nothing
    assert _syncs(mounted) == before
    with (fs_root / "d" / "f").open("ab"):
        pass  # a writer's close with nothing to store: the chmod must be made durable
    assert _syncs(mounted) == before + 1

    (fs_root / "d" / "f").rename(fs_root / "d" / "g")
    fd = os.open(fs_root / "d", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
        assert _syncs(mounted) == before + 2
        os.fsync(fd)  # nothing new since
        assert _syncs(mounted) == before + 2
    finally:
        os.close(fd)


def test_a_truncate_waits_and_covers_earlier_changes(fs_root: Path, mounted: Mount) -> None:
    (fs_root / "f").write_bytes(b"data")
    before = _syncs(mounted)
    (fs_root / "f").chmod(0o600)
    os.truncate(fs_root / "f", 2)  # durable, as its new data version is: covers the chmod
    with (fs_root / "f").open("ab"):
        pass  # a writer's close with nothing to store: nothing left to make durable
    assert _syncs(mounted) == before
    assert (fs_root / "f").read_bytes() == b"da"


def test_making_an_inode_waits_and_covers_earlier_changes(fs_root: Path, mounted: Mount) -> None:
    (fs_root / "f").write_bytes(b"data")
    for make in (
        (fs_root / "d").mkdir,
        lambda: (fs_root / "l").symlink_to("f"),
        lambda: os.mkfifo(fs_root / "p"),
        lambda: (fs_root / "g").write_bytes(b""),  # a create with nothing to store
    ):
        before = _syncs(mounted)
        (fs_root / "f").chmod(0o600)
        make()  # durable, as its new inode number is: covers the chmod
        with (fs_root / "f").open("ab"):
            pass  # a writer's close with nothing to store: nothing left to make durable
        assert _syncs(mounted) == before


@pytest.mark.parametrize("durable_names", [True, False])
def test_an_older_server_has_new_inodes_made_durable_by_a_sync(
    mounted: Mount, durable_names: bool
) -> None:
    """OpenVolume says whether MakeNode and a truncate commit durably; a mount
    told nothing (a server from before) counts them as changes for a Sync."""
    channel = connect(mounted.server.client_settings())
    try:
        volume = open_volume(channel, mounted.volume, 10)
        assert volume.durable_names
        remote = Remote(channel, volume.volume_id, 10, durable_names=durable_names)
        name = f"made-{durable_names}"
        request = pb.MakeNodeRequest(parent=volume.root_ino, name=name, mode=stat.S_IFREG | 0o644)
        made = remote.make_node(request)
        remote.setattr(pb.SetAttrRequest(ino=made.attr.ino, size=10))
        before = _syncs(mounted)
        remote.sync()
        assert _syncs(mounted) == before + (0 if durable_names else 1)
    finally:
        channel.close()
