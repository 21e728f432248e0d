"""Hard links and symbolic links."""

import errno
import os
import stat
from pathlib import Path

from tests.fuse_client.posix.errors import fails_with


def test_hard_link_shares_inode_and_data(fs_root: Path) -> None:
    a, b = fs_root / "a", fs_root / "b"
    a.write_bytes(b"shared")
    os.link(a, b)
    sa, sb = os.stat(a), os.stat(b)
    assert sa.st_ino == sb.st_ino
    assert sa.st_nlink == sb.st_nlink == 2
    with open(b, "r+b") as f:
        f.seek(0, os.SEEK_END)
        f.write(b" and grown")
    assert a.read_bytes() == b"shared and grown"
    assert os.stat(a).st_size == len(b"shared and grown")


def test_a_file_open_under_one_name_sees_writes_through_another(fs_root: Path) -> None:
    a, b = fs_root / "a", fs_root / "b"
    a.write_bytes(b"old!" * 1024)
    os.link(a, b)
    os.stat(b)
    reader = os.open(b, os.O_RDONLY)
    try:
        assert os.pread(reader, 4, 0) == b"old!"
        writer = os.open(a, os.O_WRONLY)
        os.pwrite(writer, b"NEW!", 0)
        os.close(writer)
        assert os.pread(reader, 4, 0) == b"NEW!"
    finally:
        os.close(reader)
    with open(b, "rb") as again:
        assert again.read(4) == b"NEW!"


def test_link_count_follows_links_and_unlinks(fs_root: Path) -> None:
    names = [fs_root / f"n{i}" for i in range(4)]
    names[0].write_bytes(b"x")
    for i, name in enumerate(names[1:], start=2):
        os.link(names[0], name)
        assert os.stat(names[0]).st_nlink == i
    os.unlink(names[0])
    assert os.stat(names[3]).st_nlink == 3
    os.unlink(names[1])
    os.unlink(names[2])
    assert os.stat(names[3]).st_nlink == 1
    assert names[3].read_bytes() == b"x"
    assert os.listdir(fs_root) == ["n3"]


def test_unlinking_one_name_keeps_the_other(fs_root: Path) -> None:
    os.mkdir(fs_root / "d")
    a, b = fs_root / "a", fs_root / "d" / "b"
    a.write_bytes(b"survives")
    os.link(a, b)
    os.unlink(a)
    assert b.read_bytes() == b"survives"
    assert os.stat(b).st_nlink == 1
    assert os.listdir(fs_root) == ["d"]


def test_hard_link_to_a_directory_is_eperm(fs_root: Path) -> None:
    os.mkdir(fs_root / "d")
    with fails_with(errno.EPERM):
        os.link(fs_root / "d", fs_root / "d2")
    assert os.listdir(fs_root) == ["d"]
    assert os.stat(fs_root / "d").st_nlink == 2


def test_hard_link_over_existing_name_is_eexist(fs_root: Path) -> None:
    (fs_root / "a").write_bytes(b"a")
    (fs_root / "b").write_bytes(b"b")
    with fails_with(errno.EEXIST):
        os.link(fs_root / "a", fs_root / "b")
    assert (fs_root / "b").read_bytes() == b"b"
    assert os.stat(fs_root / "a").st_nlink == 1


def test_hard_link_from_missing_name_is_enoent(fs_root: Path) -> None:
    with fails_with(errno.ENOENT):
        os.link(fs_root / "missing", fs_root / "b")
    assert os.listdir(fs_root) == []


def test_hard_link_to_a_symlink_links_the_symlink(fs_root: Path) -> None:
    (fs_root / "target").write_bytes(b"t")
    os.symlink("target", fs_root / "sym")
    os.link(fs_root / "sym", fs_root / "hard", follow_symlinks=False)
    st = os.lstat(fs_root / "hard")
    assert stat.S_ISLNK(st.st_mode)
    assert st.st_nlink == 2
    assert st.st_ino == os.lstat(fs_root / "sym").st_ino
    assert os.readlink(fs_root / "hard") == "target"
    assert os.stat(fs_root / "target").st_nlink == 1


def test_symlink_and_readlink(fs_root: Path) -> None:
    (fs_root / "target").write_bytes(b"through the link")
    os.symlink("target", fs_root / "link")
    assert os.readlink(fs_root / "link") == "target"
    assert (fs_root / "link").read_bytes() == b"through the link"
    lst = os.lstat(fs_root / "link")
    assert stat.S_ISLNK(lst.st_mode)
    assert lst.st_size == len("target")
    assert stat.S_IMODE(lst.st_mode) == 0o777


def test_stat_follows_and_lstat_does_not(fs_root: Path) -> None:
    os.mkdir(fs_root / "dir")
    os.symlink("dir", fs_root / "link")
    st, lst = os.stat(fs_root / "link"), os.lstat(fs_root / "link")
    assert stat.S_ISDIR(st.st_mode)
    assert st.st_ino == os.stat(fs_root / "dir").st_ino
    assert stat.S_ISLNK(lst.st_mode)
    assert lst.st_ino != st.st_ino
    (fs_root / "link" / "f").write_bytes(b"")
    assert os.listdir(fs_root / "dir") == ["f"]


def test_dangling_symlink(fs_root: Path) -> None:
    link = fs_root / "link"
    os.symlink("nowhere", link)
    assert os.readlink(link) == "nowhere"
    assert stat.S_ISLNK(os.lstat(link).st_mode)
    assert not os.path.exists(link)
    with fails_with(errno.ENOENT):
        os.stat(link)
    with fails_with(errno.ENOENT):
        os.open(link, os.O_RDONLY)
    assert os.listdir(fs_root) == ["link"]


def test_create_through_a_dangling_symlink_creates_its_target(fs_root: Path) -> None:
    link = fs_root / "link"
    os.symlink("target", link)
    with fails_with(errno.EEXIST):
        os.open(link, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    fd = os.open(link, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"made")
    os.close(fd)
    assert (fs_root / "target").read_bytes() == b"made"
    assert stat.S_ISLNK(os.lstat(link).st_mode)


def test_relative_targets_resolve_from_the_links_directory(fs_root: Path) -> None:
    os.makedirs(fs_root / "a" / "b")
    (fs_root / "top").write_bytes(b"top")
    (fs_root / "a" / "b" / "deep").write_bytes(b"deep")
    os.symlink("../top", fs_root / "a" / "up")
    os.symlink("b/deep", fs_root / "a" / "down")
    os.symlink("a/b", fs_root / "dirlink")
    assert (fs_root / "a" / "up").read_bytes() == b"top"
    assert (fs_root / "a" / "down").read_bytes() == b"deep"
    assert (fs_root / "dirlink" / "deep").read_bytes() == b"deep"
    os.rename(fs_root / "a" / "up", fs_root / "a" / "b" / "up")
    with fails_with(errno.ENOENT):
        os.stat(fs_root / "a" / "b" / "up")


def test_absolute_and_long_targets_are_kept_verbatim(fs_root: Path) -> None:
    (fs_root / "t").write_bytes(b"abs")
    os.symlink(str(fs_root / "t"), fs_root / "abs")
    assert os.readlink(fs_root / "abs") == str(fs_root / "t")
    assert (fs_root / "abs").read_bytes() == b"abs"
    long_target = "/".join(["component"] * 300)
    os.symlink(long_target, fs_root / "long")
    assert os.readlink(fs_root / "long") == long_target
    assert os.lstat(fs_root / "long").st_size == len(long_target)


def test_o_nofollow_on_a_symlink_is_eloop(fs_root: Path) -> None:
    (fs_root / "target").write_bytes(b"")
    os.symlink("target", fs_root / "link")
    with fails_with(errno.ELOOP):
        os.open(fs_root / "link", os.O_RDONLY | os.O_NOFOLLOW)
    fd = os.open(fs_root / "target", os.O_RDONLY | os.O_NOFOLLOW)
    os.close(fd)


def test_symlink_loop_is_eloop(fs_root: Path) -> None:
    os.symlink("b", fs_root / "a")
    os.symlink("a", fs_root / "b")
    with fails_with(errno.ELOOP):
        os.stat(fs_root / "a")
    with fails_with(errno.ELOOP):
        os.open(fs_root / "a", os.O_RDONLY)


def test_symlink_over_existing_name_is_eexist(fs_root: Path) -> None:
    (fs_root / "f").write_bytes(b"keep")
    with fails_with(errno.EEXIST):
        os.symlink("x", fs_root / "f")
    assert (fs_root / "f").read_bytes() == b"keep"


def test_readlink_of_a_non_symlink_is_einval(fs_root: Path) -> None:
    (fs_root / "f").write_bytes(b"")
    os.mkdir(fs_root / "d")
    with fails_with(errno.EINVAL):
        os.readlink(fs_root / "f")
    with fails_with(errno.EINVAL):
        os.readlink(fs_root / "d")


def test_unlink_of_symlink_removes_the_link_only(fs_root: Path) -> None:
    (fs_root / "target").write_bytes(b"stays")
    os.symlink("target", fs_root / "link")
    os.unlink(fs_root / "link")
    assert os.listdir(fs_root) == ["target"]
    assert (fs_root / "target").read_bytes() == b"stays"


def test_lchown_changes_the_link_not_the_target(fs_root: Path) -> None:
    (fs_root / "target").write_bytes(b"")
    os.symlink("target", fs_root / "link")
    os.lchown(fs_root / "link", 1234, 5678)
    lst = os.lstat(fs_root / "link")
    assert (lst.st_uid, lst.st_gid) == (1234, 5678)
    st = os.stat(fs_root / "target")
    assert (st.st_uid, st.st_gid) == (0, 0)
