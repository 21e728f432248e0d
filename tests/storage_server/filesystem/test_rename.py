"""rename and renameat2 through the Filesystem API: replacement rules, link
counts of parents, subtree moves, and the NOREPLACE and EXCHANGE flags."""

import errno
import stat

from proto.netvol.v1 import filesystem_pb2 as pb
from tests.harness.volume import Volume, errno_of

NOREPLACE = 1
EXCHANGE = 2


def test_rename_in_one_directory(vol: Volume) -> None:
    file = vol.create("a", b"data")
    root = vol.getattr(vol.root)
    assert vol.rename("a", "b") == 0
    moved = vol.lookup("b")
    assert moved.ino == file.ino
    assert moved.ctime_ns > file.ctime_ns
    assert moved.mtime_ns == file.mtime_ns
    assert errno_of(lambda: vol.lookup("a")) == errno.ENOENT
    after = vol.getattr(vol.root)
    assert after.mtime_ns == after.ctime_ns > root.mtime_ns
    assert after.nlink == root.nlink
    assert vol.read(file.ino) == b"data"


def test_move_directory_between_parents(vol: Volume) -> None:
    one = vol.mkdir("one")
    two = vol.mkdir("two")
    moving = vol.mkdir("moving", parent=one.ino)
    vol.mknod("inside", parent=moving.ino)
    assert vol.getattr(one.ino).nlink == 3
    vol.rename("moving", "moved", parent=one.ino, new_parent=two.ino)
    assert vol.getattr(one.ino).nlink == 2
    assert vol.getattr(two.ino).nlink == 3
    assert vol.getattr(vol.root).nlink == 4
    assert vol.names(two.ino) == ["moved"]
    assert vol.names(moving.ino) == ["inside"]
    one_after, two_after = vol.getattr(one.ino), vol.getattr(two.ino)
    assert one_after.mtime_ns == two_after.mtime_ns == vol.getattr(moving.ino).ctime_ns


def test_replace_a_file(vol: Volume) -> None:
    source = vol.create("a", b"new")
    target = vol.create("b", b"old contents")
    assert vol.used() == 15
    assert vol.rename("a", "b") == target.ino
    assert vol.lookup("b").ino == source.ino
    assert errno_of(lambda: vol.getattr(target.ino)) == errno.ENOENT
    assert vol.used() == 3
    assert vol.names() == ["b"]


def test_replace_a_file_that_has_another_link(vol: Volume) -> None:
    vol.create("a", b"a")
    target = vol.create("b", b"b")
    vol.link(target.ino, "c")
    assert vol.rename("a", "b") == target.ino
    assert vol.getattr(target.ino).nlink == 1
    assert vol.read(vol.lookup("c").ino) == b"b"


def test_replace_directories(vol: Volume) -> None:
    source = vol.mkdir("src")
    vol.mkdir("empty")
    full = vol.mkdir("full")
    vol.mknod("x", parent=full.ino)
    vol.mknod("file")
    assert vol.getattr(vol.root).nlink == 5

    assert errno_of(lambda: vol.rename("src", "full")) == errno.ENOTEMPTY
    assert errno_of(lambda: vol.rename("src", "file")) == errno.ENOTDIR
    assert errno_of(lambda: vol.rename("file", "empty")) == errno.EISDIR
    empty = vol.lookup("empty")
    assert vol.rename("src", "empty") == empty.ino
    assert errno_of(lambda: vol.getattr(empty.ino)) == errno.ENOENT
    assert vol.lookup("empty").ino == source.ino
    assert vol.getattr(vol.root).nlink == 4
    assert sorted(vol.names()) == ["empty", "file", "full"]


def test_replace_an_empty_directory_in_another_parent(vol: Volume) -> None:
    one = vol.mkdir("one")
    two = vol.mkdir("two")
    vol.mkdir("d", parent=one.ino)
    vol.mkdir("d", parent=two.ino)
    vol.rename("d", "d", parent=one.ino, new_parent=two.ino)
    assert vol.getattr(one.ino).nlink == 2
    assert vol.getattr(two.ino).nlink == 3


def test_no_move_into_own_subtree(vol: Volume) -> None:
    a = vol.mkdir("a")
    b = vol.mkdir("b", parent=a.ino)
    c = vol.mkdir("c", parent=b.ino)
    assert errno_of(lambda: vol.rename("a", "x", new_parent=c.ino)) == errno.EINVAL
    assert errno_of(lambda: vol.rename("a", "x", new_parent=a.ino)) == errno.EINVAL
    assert errno_of(lambda: vol.rename("b", "x", parent=a.ino, new_parent=b.ino)) == errno.EINVAL
    # Moving up is fine.
    vol.rename("c", "c", parent=b.ino, new_parent=vol.root)
    assert sorted(vol.names()) == ["a", "c"]


def test_rename_to_itself_and_between_links_does_nothing(vol: Volume) -> None:
    file = vol.create("a", b"x")
    vol.link(file.ino, "b")
    before = vol.getattr(file.ino)
    assert vol.rename("a", "a") == 0
    assert vol.rename("a", "b") == 0
    assert sorted(vol.names()) == ["a", "b"]
    assert vol.getattr(file.ino) == before
    directory = vol.mkdir("d")
    assert vol.rename("d", "d") == 0
    assert vol.getattr(directory.ino) == directory


def test_rename_errors(vol: Volume) -> None:
    file = vol.mknod("f")
    assert errno_of(lambda: vol.rename("missing", "x")) == errno.ENOENT
    assert errno_of(lambda: vol.rename("f", "x", new_parent=file.ino)) == errno.ENOTDIR
    assert errno_of(lambda: vol.rename("f", "x", parent=file.ino)) == errno.ENOTDIR
    assert errno_of(lambda: vol.rename("f", "n" * 256)) == errno.ENAMETOOLONG
    assert errno_of(lambda: vol.rename("f", "..")) == errno.EINVAL
    assert errno_of(lambda: vol.rename("f", "x", flags=3)) == errno.EINVAL
    assert errno_of(lambda: vol.rename("f", "x", flags=4)) == errno.EINVAL
    assert vol.names() == ["f"]


def test_noreplace(vol: Volume) -> None:
    vol.create("a", b"a")
    vol.create("b", b"b")
    assert errno_of(lambda: vol.rename("a", "b", flags=NOREPLACE)) == errno.EEXIST
    assert errno_of(lambda: vol.rename("a", "a", flags=NOREPLACE)) == errno.EEXIST
    assert vol.read(vol.lookup("b").ino) == b"b"
    assert vol.rename("a", "c", flags=NOREPLACE) == 0
    assert sorted(vol.names()) == ["b", "c"]


def test_exchange(vol: Volume) -> None:
    one = vol.mkdir("one")
    file = vol.create("f", b"file", parent=one.ino)
    directory = vol.mkdir("d")
    vol.mknod("inside", parent=directory.ino)
    assert errno_of(lambda: vol.rename("f", "nothing", parent=one.ino, flags=EXCHANGE)) == (
        errno.ENOENT
    )
    root_links, one_links = vol.getattr(vol.root).nlink, vol.getattr(one.ino).nlink

    replaced = vol.rename("f", "d", parent=one.ino, new_parent=vol.root, flags=EXCHANGE)
    assert replaced == directory.ino
    assert vol.lookup("d").ino == file.ino
    assert vol.lookup("f", parent=one.ino).ino == directory.ino
    # The directory moved from the root to `one`, the file the other way.
    assert vol.getattr(vol.root).nlink == root_links - 1
    assert vol.getattr(one.ino).nlink == one_links + 1
    assert vol.names(directory.ino) == ["inside"]
    assert vol.getattr(file.ino).ctime_ns > file.ctime_ns
    assert vol.getattr(directory.ino).ctime_ns > directory.ctime_ns
    # A directory cannot be exchanged with something inside itself.
    assert (
        errno_of(lambda: vol.rename("one", "inside", new_parent=directory.ino, flags=EXCHANGE))
        == errno.EINVAL
    )
    assert vol.getattr(vol.root).nlink + vol.getattr(one.ino).nlink == root_links + one_links


def test_exchange_in_one_directory(vol: Volume) -> None:
    a = vol.mknod("a", stat.S_IFIFO | 0o600)
    b = vol.mkdir("b")
    assert vol.rename("a", "b", flags=EXCHANGE) == b.ino
    assert (vol.lookup("a").ino, vol.lookup("b").ino) == (b.ino, a.ino)
    assert vol.getattr(vol.root).nlink == 3


def _times(attr: pb.Attr) -> pb.DirectoryTimes:
    return pb.DirectoryTimes(mtime_ns=attr.mtime_ns, ctime_ns=attr.ctime_ns)


def _rename(
    vol: Volume, name: str, new_name: str, parent: int, new_parent: int
) -> pb.RenameResponse:
    return vol.fs.Rename(
        pb.RenameRequest(
            volume_id=vol.id, parent=parent, name=name, new_parent=new_parent, new_name=new_name
        )
    )


def test_renames_say_the_directories_times_before_the_change(vol: Volume) -> None:
    """A client places its own rename after listings it read at those times."""
    one, two = vol.mkdir("one"), vol.mkdir("two")
    vol.mknod("f", parent=one.ino)
    one = vol.getattr(one.ino)
    within = _rename(vol, "f", "g", one.ino, one.ino)
    assert within.parent_before == within.new_parent_before == _times(one)
    assert within.parent == within.new_parent == vol.getattr(one.ino)
    assert within.moved == vol.lookup("g", parent=one.ino)
    across = _rename(vol, "g", "h", one.ino, two.ino)
    assert across.parent_before == _times(within.parent)
    assert across.new_parent_before == _times(two)
    assert (across.parent, across.new_parent) == (vol.getattr(one.ino), vol.getattr(two.ino))
    assert across.moved == vol.lookup("h", parent=two.ino)
    # Two names of one inode: nothing changes, and the times say so.
    vol.link(vol.lookup("h", parent=two.ino).ino, "i", parent=two.ino)
    still = vol.getattr(two.ino)
    same = _rename(vol, "h", "i", two.ino, two.ino)
    assert same.parent_before == same.new_parent_before == _times(same.parent) == _times(still)
    assert not same.HasField("moved")
