"""Names, kinds of inodes, links and directory listings, through the Filesystem API."""

import errno
import functools
import stat
from collections.abc import Callable
from types import SimpleNamespace
from typing import cast

import grpc
import pytest
from sqlalchemy.orm import Session

from proto.netvol.v1 import admin_pb2 as apb
from proto.netvol.v1 import filesystem_pb2 as pb
from storage_server.filesystem import inodes
from tests.harness.server import StorageServer
from tests.harness.volume import Volume, errno_of


def test_new_volume_has_an_empty_root(vol: Volume) -> None:
    root = vol.getattr(vol.root)
    assert stat.S_ISDIR(root.mode)
    assert stat.S_IMODE(root.mode) == 0o777
    assert root.nlink == 2
    assert root.ino == vol.root
    assert vol.readdir().entries == []
    assert not vol.readdir().more
    assert vol.statfs() == pb.StatFsResponse(size_bytes=2**30, used_bytes=0, inodes=1)


def test_open_unknown_volume(shared_server: StorageServer) -> None:
    fs = shared_server.filesystem()
    with pytest.raises(grpc.RpcError) as info:
        fs.OpenVolume(pb.OpenVolumeRequest(name="missing"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


KINDS = [
    (stat.S_IFREG | 0o640, 0),
    (stat.S_IFDIR | 0o750, 0),
    (stat.S_IFIFO | 0o600, 0),
    (stat.S_IFSOCK | 0o755, 0),
    (stat.S_IFCHR | 0o620, 0x0501),
    (stat.S_IFBLK | 0o660, 0x0801),
]


@pytest.mark.parametrize(("mode", "rdev"), KINDS)
def test_make_every_kind(vol: Volume, mode: int, rdev: int) -> None:
    before = vol.getattr(vol.root)
    made = vol.mknod("node", mode, uid=1000, gid=2000, rdev=rdev)
    assert made.mode == mode
    assert (made.uid, made.gid, made.rdev) == (1000, 2000, rdev)
    assert made.nlink == (2 if stat.S_ISDIR(mode) else 1)
    assert made.size == 0
    assert made.atime_ns == made.mtime_ns == made.ctime_ns > before.ctime_ns
    assert vol.lookup("node") == made
    assert vol.getattr(made.ino) == made
    parent = vol.getattr(vol.root)
    assert parent.nlink == before.nlink + (1 if stat.S_ISDIR(mode) else 0)
    assert parent.mtime_ns == parent.ctime_ns == made.ctime_ns
    assert [(e.name, e.attr) for e in vol.readdir().entries] == [("node", made)]


def test_symlink(vol: Volume) -> None:
    target = "../some/where/é"
    link = vol.mknod("link", stat.S_IFLNK | 0o644, target=target)
    assert link.mode == stat.S_IFLNK | 0o777
    assert link.size == len(target.encode())
    reply = vol.fs.ReadLink(pb.ReadLinkRequest(volume_id=vol.id, ino=link.ino))
    assert reply.target == target
    longest = "t" * 4095
    assert vol.mknod("long", stat.S_IFLNK, target=longest).size == 4095
    assert errno_of(lambda: vol.mknod("x", stat.S_IFLNK, target="t" * 4096)) == errno.ENAMETOOLONG
    assert errno_of(lambda: vol.mknod("x", stat.S_IFLNK, target="")) == errno.ENOENT
    file = vol.mknod("file")
    request = pb.ReadLinkRequest(volume_id=vol.id, ino=file.ino)
    assert errno_of(lambda: vol.fs.ReadLink(request)) == errno.EINVAL


def test_make_node_errors(vol: Volume) -> None:
    file = vol.mknod("file")
    vol.mkdir("dir")
    assert errno_of(lambda: vol.mknod("file")) == errno.EEXIST
    assert errno_of(lambda: vol.mkdir("file")) == errno.EEXIST
    assert errno_of(lambda: vol.mknod("x", parent=file.ino)) == errno.ENOTDIR
    assert errno_of(lambda: vol.mknod("x", parent=2**40)) == errno.ENOENT
    assert errno_of(lambda: vol.mknod("x", parent=2**64 - 1)) == errno.ENOENT
    assert errno_of(lambda: vol.mknod("n" * 256)) == errno.ENAMETOOLONG
    assert errno_of(lambda: vol.mknod("é" * 128)) == errno.ENAMETOOLONG
    for bad in ["", ".", "..", "a/b", "a\0b"]:
        assert errno_of(functools.partial(vol.mknod, bad)) == errno.EINVAL, bad
    assert errno_of(lambda: vol.mknod("x", mode=0o644)) == errno.EINVAL
    assert errno_of(lambda: vol.mknod("x", stat.S_IFCHR, rdev=2**64 - 1)) == errno.EINVAL
    assert vol.mknod("n" * 255).size == 0
    assert vol.mknod("é" * 127).size == 0
    assert sorted(vol.names()) == sorted(["dir", "file", "n" * 255, "é" * 127])


def test_unknown_volume_is_not_found(vol: Volume) -> None:
    request = pb.GetAttrRequest(volume_id="00000000-0000-0000-0000-000000000000", ino=vol.root)
    with pytest.raises(grpc.RpcError) as info:
        vol.fs.GetAttr(request)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_inodes_of_another_volume_are_not_found(vol: Volume) -> None:
    other = Volume(vol.server)
    secret = other.create("secret", b"data")
    assert secret.ino != vol.root
    assert errno_of(lambda: vol.getattr(secret.ino)) == errno.ENOENT
    assert errno_of(lambda: vol.read(secret.ino)) == errno.ENOENT
    assert errno_of(lambda: vol.mknod("x", parent=other.root)) == errno.ENOENT
    assert errno_of(lambda: vol.link(secret.ino, "stolen")) == errno.ENOENT


def test_lookup_errors(vol: Volume) -> None:
    file = vol.mknod("file")
    assert errno_of(lambda: vol.lookup("missing")) == errno.ENOENT
    assert errno_of(lambda: vol.lookup("x", parent=file.ino)) == errno.ENOTDIR
    assert errno_of(lambda: vol.lookup("n" * 256)) == errno.ENAMETOOLONG


def test_hard_links(vol: Volume) -> None:
    data = b"shared bytes"
    file = vol.create("a", data)
    directory = vol.mkdir("d")
    linked = vol.link(file.ino, "b", parent=directory.ino)
    assert linked.ino == file.ino
    assert linked.nlink == 2
    assert linked.ctime_ns > file.ctime_ns
    assert vol.lookup("b", parent=directory.ino) == linked
    assert vol.getattr(directory.ino).mtime_ns == linked.ctime_ns

    assert errno_of(lambda: vol.link(file.ino, "a")) == errno.EEXIST
    assert errno_of(lambda: vol.link(directory.ino, "d2")) == errno.EPERM
    assert errno_of(lambda: vol.link(file.ino, "x", parent=file.ino)) == errno.ENOTDIR

    gone = vol.unlink("a")
    assert (gone.ino, gone.nlink) == (file.ino, 1)
    assert vol.read(file.ino) == data
    assert vol.used() == len(data)
    gone = vol.unlink("b", parent=directory.ino)
    assert (gone.ino, gone.nlink) == (file.ino, 0)
    assert errno_of(lambda: vol.getattr(file.ino)) == errno.ENOENT
    assert vol.used() == 0
    assert vol.statfs().inodes == 2


def test_unlink_and_rmdir(vol: Volume) -> None:
    directory = vol.mkdir("d")
    vol.mknod("f", parent=directory.ino)
    vol.mkdir("sub", parent=directory.ino)
    assert vol.getattr(directory.ino).nlink == 3
    assert vol.getattr(vol.root).nlink == 3

    assert errno_of(lambda: vol.unlink("d")) == errno.EISDIR
    assert errno_of(lambda: vol.unlink("d", directory=True)) == errno.ENOTEMPTY
    assert errno_of(lambda: vol.unlink("f", parent=directory.ino, directory=True)) == (
        errno.ENOTDIR
    )
    assert errno_of(lambda: vol.unlink("missing")) == errno.ENOENT
    assert errno_of(lambda: vol.unlink("x", parent=vol.lookup("f", directory.ino).ino)) == (
        errno.ENOTDIR
    )

    before = vol.getattr(directory.ino)
    sub = vol.unlink("sub", parent=directory.ino, directory=True)
    assert sub.nlink == 0
    after = vol.getattr(directory.ino)
    assert after.nlink == 2
    assert after.mtime_ns == after.ctime_ns > before.mtime_ns
    vol.unlink("f", parent=directory.ino)
    vol.unlink("d", directory=True)
    assert vol.getattr(vol.root).nlink == 2
    assert vol.names() == []
    assert vol.statfs().inodes == 1


def test_readdir_pages(vol: Volume) -> None:
    names = sorted(f"entry-{i:03d}" for i in range(250))
    for name in reversed(names):
        vol.mknod(name)
    seen: list[str] = []
    after = ""
    pages = 0
    while True:
        page = vol.readdir(after=after, limit=100)
        pages += 1
        seen += [e.name for e in page.entries]
        assert all(e.attr.ino and stat.S_ISREG(e.attr.mode) for e in page.entries)
        if not page.more:
            break
        after = page.entries[-1].name
    assert (pages, seen) == (3, names)
    assert [e.name for e in vol.readdir().entries] == names
    # Keyset pages: an entry removed between pages does not shift the next one.
    first = vol.readdir(limit=10)
    vol.unlink(names[10])
    second = vol.readdir(after=first.entries[-1].name, limit=10)
    assert [e.name for e in second.entries] == names[11:21]
    file = vol.lookup(names[0])
    assert errno_of(lambda: vol.readdir(file.ino)) == errno.ENOTDIR


def test_readdir_carries_the_directory_times_every_entry_change_sets(vol: Volume) -> None:
    """Clients keep a listing while these times stay: each change of a name must move them."""
    d = vol.mkdir("d").ino
    other = vol.mkdir("other").ino

    def stamp() -> tuple[int, int]:
        directory = vol.readdir(d).directory
        assert directory.ino == d and stat.S_ISDIR(directory.mode)
        return directory.mtime_ns, directory.ctime_ns

    changes: list[Callable[[], object]] = [
        lambda: vol.mknod("f", parent=d),
        lambda: vol.link(vol.lookup("f", parent=d).ino, "g", parent=d),
        lambda: vol.rename("g", "h", parent=d, new_parent=d),
        lambda: vol.rename("h", "h", parent=d, new_parent=other),
        lambda: vol.rename("h", "back", parent=other, new_parent=d),
        lambda: vol.unlink("back", parent=d),
        lambda: vol.unlink_many((d, "f")),
        lambda: vol.mkdir("sub", parent=d),
        lambda: vol.unlink("sub", parent=d, directory=True),
    ]
    seen = [stamp()]
    for change in changes:
        change()
        seen.append(stamp())
    assert len(set(seen)) == len(seen)
    assert seen[-1] == (vol.getattr(d).mtime_ns, vol.getattr(d).ctime_ns)
    # A file's data changing is not a change of the directory's names.
    file = vol.mknod("data", parent=d)
    before = stamp()
    vol.write(file.ino, 0, b"x" * 100)
    assert stamp() == before


def test_setattr(vol: Volume) -> None:
    file = vol.create("f", b"abc")
    chmod = vol.setattr(file.ino, mode=0o4711)
    assert chmod.mode == stat.S_IFREG | 0o4711
    assert chmod.ctime_ns > file.ctime_ns
    assert chmod.mtime_ns == file.mtime_ns
    # Type bits in the request are ignored: chmod cannot turn a file into a directory.
    assert vol.setattr(file.ino, mode=stat.S_IFDIR | 0o600).mode == stat.S_IFREG | 0o600
    chown = vol.setattr(file.ino, uid=4294967294, gid=7)
    assert (chown.uid, chown.gid) == (4294967294, 7)
    times = vol.setattr(file.ino, atime_ns=-5, mtime_ns=1_000_000_000_123)
    assert (times.atime_ns, times.mtime_ns) == (-5, 1_000_000_000_123)
    assert times.ctime_ns > chown.ctime_ns
    now = vol.setattr(file.ino, atime_now=True, mtime_now=True)
    assert now.atime_ns == now.mtime_ns == now.ctime_ns
    assert vol.getattr(file.ino) == now
    assert now.data_version == file.data_version

    directory = vol.mkdir("d")
    assert errno_of(lambda: vol.setattr(directory.ino, size=0)) == errno.EISDIR
    fifo = vol.mknod("p", stat.S_IFIFO | 0o600)
    assert errno_of(lambda: vol.setattr(fifo.ino, size=0)) == errno.EINVAL
    assert errno_of(lambda: vol.setattr(file.ino, size=2**63)) == errno.EFBIG
    assert errno_of(lambda: vol.setattr(2**40, mode=0o600)) == errno.ENOENT


def test_statfs_counts(vol: Volume) -> None:
    directory = vol.mkdir("d")
    vol.create("f", b"x" * 1000, parent=directory.ino)
    vol.mknod("s", stat.S_IFLNK, target="f", parent=directory.ino)
    assert vol.statfs() == pb.StatFsResponse(size_bytes=2**30, used_bytes=1000, inodes=4)


def test_deleting_a_volume_removes_its_namespace(vol: Volume) -> None:
    directory = vol.mkdir("d")
    file = vol.create("f", b"y" * 100_000, parent=directory.ino)
    vol.server.admin().DeleteVolume(apb.DeleteVolumeRequest(volume=apb.VolumeRef(name=vol.name)))
    for ino in (vol.root, directory.ino, file.ino):
        with pytest.raises(grpc.RpcError) as info:
            vol.getattr(ino)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    again = Volume(vol.server, vol.name)
    assert again.root not in (vol.root, directory.ino, file.ino)
    assert again.names() == []
    assert again.statfs().inodes == 1


def test_changes_answer_their_directories_as_they_are_after(vol: Volume) -> None:
    """The client keeps these instead of asking for the directories again."""
    directory = vol.mkdir("d")
    made = vol.make_node("sub", stat.S_IFDIR | 0o755, parent=directory.ino)
    assert made.parent == vol.getattr(directory.ino)
    assert made.parent.nlink == 3
    file = vol.create("f")
    linked = vol.fs.Link(
        pb.LinkRequest(volume_id=vol.id, ino=file.ino, new_parent=directory.ino, new_name="g")
    )
    assert linked.parent == vol.getattr(directory.ino)
    renamed = vol.fs.Rename(
        pb.RenameRequest(
            volume_id=vol.id, parent=directory.ino, name="g", new_parent=vol.root, new_name="h"
        )
    )
    assert (renamed.parent, renamed.new_parent) == (
        vol.getattr(directory.ino),
        vol.getattr(vol.root),
    )
    removed = vol.unlink("sub", parent=directory.ino, directory=True)
    assert removed.parent == vol.getattr(directory.ino)
    assert removed.parent.nlink == 2


def _times(attr: pb.Attr) -> pb.DirectoryTimes:
    return pb.DirectoryTimes(mtime_ns=attr.mtime_ns, ctime_ns=attr.ctime_ns)


def test_new_names_say_the_directorys_times_before_the_change(vol: Volume) -> None:
    """A client places its own change after a listing it read at those times."""
    directory = vol.mkdir("d")
    made = vol.make_node("f", parent=directory.ino, request_id="make-f")
    assert made.parent_before == _times(directory)
    assert made.parent == vol.getattr(directory.ino)
    assert made.parent.ctime_ns > directory.ctime_ns
    # A retried call answers as the first did.
    assert vol.make_node("f", parent=directory.ino, request_id="make-f") == made
    linked = vol.fs.Link(
        pb.LinkRequest(volume_id=vol.id, ino=made.attr.ino, new_parent=directory.ino, new_name="g")
    )
    assert linked.parent_before == _times(made.parent)
    assert linked.parent == vol.getattr(directory.ino)


def test_a_ctime_moves_on_within_a_clock_tick_and_when_the_clock_steps_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Clients take a directory whose (mtime, ctime) is unchanged as holding the
    same entries, so no change may leave both as they were."""
    written: list[dict[str, int]] = []

    def execute(_statement: object, values: dict[str, int] | list[dict[str, int]]) -> None:
        written.extend(values if isinstance(values, list) else [values])

    monkeypatch.setattr(inodes, "connection", lambda _session: SimpleNamespace(execute=execute))
    session = cast(Session, None)
    directory = inodes.Node(7, "v", stat.S_IFDIR | 0o755, 2, 0, 0, 0, 0, 0, 0, 500, 500, 0, None)
    inodes.touch_directory(session, directory, 100)  # a name added, the clock stepped back
    inodes.change(session, directory, mode=stat.S_IFDIR | 0o700, ctime_ns=100)  # chmod, same tick
    file = inodes.Node(8, "v", stat.S_IFREG | 0o644, 2, 0, 0, 0, 0, 0, 0, 500, 500, 0, None)
    inodes.drop_link(session, "v", file, 100)  # one of its two names removed
    assert [values["ctime_ns"] for values in written] == [501, 502, 501]
    assert (directory.mtime_ns, directory.ctime_ns, file.ctime_ns) == (100, 502, 501)
