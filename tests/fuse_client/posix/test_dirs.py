"""Directories: creation and removal, listings, link counts and path lookup."""

import errno
import os
import shutil
import stat
from pathlib import Path

from tests.fuse_client.posix.errors import fails_with


def test_mkdir_makes_an_empty_directory(fs_root: Path) -> None:
    d = fs_root / "d"
    os.mkdir(d, 0o755)
    st = os.stat(d)
    assert stat.S_ISDIR(st.st_mode)
    assert os.listdir(d) == []
    assert st.st_nlink == 2


def test_mkdir_over_existing_name_is_eexist(fs_root: Path) -> None:
    os.mkdir(fs_root / "d")
    (fs_root / "f").write_bytes(b"")
    with fails_with(errno.EEXIST):
        os.mkdir(fs_root / "d")
    with fails_with(errno.EEXIST):
        os.mkdir(fs_root / "f")
    assert stat.S_ISREG(os.stat(fs_root / "f").st_mode)


def test_rmdir_removes_an_empty_directory(fs_root: Path) -> None:
    os.mkdir(fs_root / "d")
    os.rmdir(fs_root / "d")
    assert os.listdir(fs_root) == []
    with fails_with(errno.ENOENT):
        os.rmdir(fs_root / "d")


def test_rmdir_of_non_empty_directory_is_enotempty(fs_root: Path) -> None:
    os.mkdir(fs_root / "d")
    (fs_root / "d" / "f").write_bytes(b"")
    with fails_with(errno.ENOTEMPTY):
        os.rmdir(fs_root / "d")
    os.mkdir(fs_root / "e")
    os.mkdir(fs_root / "e" / "sub")
    with fails_with(errno.ENOTEMPTY):
        os.rmdir(fs_root / "e")
    assert sorted(os.listdir(fs_root)) == ["d", "e"]


def test_rmdir_of_a_file_is_enotdir(fs_root: Path) -> None:
    (fs_root / "f").write_bytes(b"")
    with fails_with(errno.ENOTDIR):
        os.rmdir(fs_root / "f")
    assert os.listdir(fs_root) == ["f"]


def test_unlink_of_a_directory_is_eisdir(fs_root: Path) -> None:
    # POSIX allows EPERM; Linux answers EISDIR.
    os.mkdir(fs_root / "d")
    with fails_with(errno.EISDIR):
        os.unlink(fs_root / "d")
    assert os.listdir(fs_root) == ["d"]


def test_listing_shows_every_kind_of_entry(fs_root: Path) -> None:
    (fs_root / "file").write_bytes(b"x")
    os.mkdir(fs_root / "dir")
    os.symlink("file", fs_root / "link")
    os.mkfifo(fs_root / "fifo")
    assert sorted(os.listdir(fs_root)) == ["dir", "fifo", "file", "link"]
    kinds = {}
    with os.scandir(fs_root) as entries:
        for entry in entries:
            kinds[entry.name] = (
                entry.is_dir(follow_symlinks=False),
                entry.is_file(follow_symlinks=False),
                entry.is_symlink(),
            )
            assert entry.inode() == os.lstat(entry.path).st_ino, entry.name
    assert kinds == {
        "dir": (True, False, False),
        "fifo": (False, False, False),
        "file": (False, True, False),
        "link": (False, False, True),
    }


def test_listing_of_1500_entries_pages_through_all_of_them(fs_root: Path) -> None:
    d = fs_root / "big"
    os.mkdir(d)
    # Long names so a listing takes many readdir buffers.
    names = [f"entry-{i:04d}-" + "n" * 60 for i in range(1500)]
    for i, name in enumerate(names):
        if i % 10 == 0:
            os.mkdir(d / name)
        else:
            os.mknod(d / name)  # no open and close: one call, not two
    listed = os.listdir(d)
    assert len(listed) == len(set(listed)) == 1500
    assert sorted(listed) == sorted(names)
    with os.scandir(d) as entries:
        dirs = {e.name for e in entries if e.is_dir(follow_symlinks=False)}
    assert dirs == {n for i, n in enumerate(names) if i % 10 == 0}
    assert os.stat(d).st_nlink == 2 + 150

    for name in names[::2]:
        if (d / name).is_dir():
            os.rmdir(d / name)
        else:
            os.unlink(d / name)
    assert sorted(os.listdir(d)) == sorted(names[1::2])


def test_directory_link_count_is_two_plus_subdirectories(fs_root: Path) -> None:
    d = fs_root / "d"
    os.mkdir(d)
    assert os.stat(d).st_nlink == 2
    os.mkdir(d / "a")
    os.mkdir(d / "b")
    (d / "file").write_bytes(b"")
    os.symlink("a", d / "link")
    assert os.stat(d).st_nlink == 4
    os.rmdir(d / "a")
    assert os.stat(d).st_nlink == 3
    assert os.stat(d / "b").st_nlink == 2


def test_dot_and_dotdot_resolve(fs_root: Path) -> None:
    os.makedirs(fs_root / "a" / "b")
    assert os.stat(fs_root / "a" / "b" / "..").st_ino == os.stat(fs_root / "a").st_ino
    assert os.stat(fs_root / "a" / ".").st_ino == os.stat(fs_root / "a").st_ino
    assert "." not in os.listdir(fs_root / "a")
    assert ".." not in os.listdir(fs_root / "a")


def test_nested_tree(fs_root: Path) -> None:
    deep = fs_root.joinpath(*[f"level{i}" for i in range(20)])
    os.makedirs(deep)
    (deep / "leaf").write_bytes(b"bottom")
    for i in range(20):
        (deep.parents[19 - i] / f"file{i}").write_bytes(bytes([i]))
    assert (deep / "leaf").read_bytes() == b"bottom"
    walked = {
        Path(top).relative_to(fs_root): (sorted(dirs), sorted(files))
        for top, dirs, files in os.walk(fs_root)
    }
    assert len(walked) == 21
    assert walked[Path("level0")] == (["level1"], ["file1"])
    assert walked[deep.relative_to(fs_root)] == ([], ["leaf"])
    shutil.rmtree(fs_root / "level0")
    assert os.listdir(fs_root) == ["file0"]


def test_missing_parent_is_enoent(fs_root: Path) -> None:
    missing = fs_root / "missing"
    with fails_with(errno.ENOENT):
        os.open(missing / "f", os.O_WRONLY | os.O_CREAT, 0o644)
    with fails_with(errno.ENOENT):
        os.mkdir(missing / "d")
    with fails_with(errno.ENOENT):
        os.stat(missing / "f")
    with fails_with(errno.ENOENT):
        os.symlink("x", missing / "l")
    assert os.listdir(fs_root) == []


def test_file_as_path_component_is_enotdir(fs_root: Path) -> None:
    f = fs_root / "f"
    f.write_bytes(b"")
    with fails_with(errno.ENOTDIR):
        os.stat(f / "x")
    with fails_with(errno.ENOTDIR):
        os.open(f / "x", os.O_WRONLY | os.O_CREAT, 0o644)
    with fails_with(errno.ENOTDIR):
        os.mkdir(f / "d")
    with fails_with(errno.ENOTDIR):
        os.listdir(f)
    with fails_with(errno.ENOTDIR):
        os.stat(str(f) + "/")
    assert os.listdir(fs_root) == ["f"]


def test_name_length_limit(fs_root: Path) -> None:
    longest = "n" * 255
    (fs_root / longest).write_bytes(b"ok")
    os.mkdir(fs_root / ("d" * 255))
    assert sorted(os.listdir(fs_root)) == sorted([longest, "d" * 255])
    assert (fs_root / longest).read_bytes() == b"ok"
    with fails_with(errno.ENAMETOOLONG):
        os.open(fs_root / ("n" * 256), os.O_WRONLY | os.O_CREAT, 0o644)
    with fails_with(errno.ENAMETOOLONG):
        os.mkdir(fs_root / ("d" * 256))


def test_names_are_any_utf8(fs_root: Path) -> None:
    names = [b"caf\xc3\xa9", "\u65e5\u672c".encode(), b"space and\ttab", b"-dash", b"a\nnewline"]
    root = os.fsencode(fs_root)
    for name in names:
        fd = os.open(os.path.join(root, name), os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, name)
        os.close(fd)
    assert sorted(os.listdir(root)) == sorted(names)
    for name in names:
        with open(os.path.join(root, name), "rb") as f:
            assert f.read() == name


def test_names_that_are_not_utf8_are_refused(fs_root: Path) -> None:
    # netvol keeps names as UTF-8 text (portable across SQLite and PostgreSQL);
    # other bytes get a clear EILSEQ and nothing is created.
    root = os.fsencode(fs_root)
    with fails_with(errno.EILSEQ):
        os.open(os.path.join(root, b"\xff\xfe not utf-8"), os.O_WRONLY | os.O_CREAT, 0o644)
    with fails_with(errno.EILSEQ):
        os.mkdir(os.path.join(root, b"bad\xc3"))
    assert os.listdir(root) == []
