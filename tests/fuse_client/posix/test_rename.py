"""rename(2) and renameat2(2): what may replace what, and the flags."""

import errno
import os
import stat
from pathlib import Path

from tests.fuse_client.posix.errors import fails_with
from tests.fuse_client.posix.syscalls import RENAME_EXCHANGE, RENAME_NOREPLACE, renameat2


def test_file_over_file_replaces_it(fs_root: Path) -> None:
    src, dst = fs_root / "src", fs_root / "dst"
    src.write_bytes(b"new")
    dst.write_bytes(b"old contents")
    ino = os.stat(src).st_ino
    os.rename(src, dst)
    assert os.listdir(fs_root) == ["dst"]
    assert dst.read_bytes() == b"new"
    assert os.stat(dst).st_ino == ino
    assert os.stat(dst).st_nlink == 1


def test_file_to_new_name(fs_root: Path) -> None:
    (fs_root / "a").write_bytes(b"data")
    os.rename(fs_root / "a", fs_root / "b")
    assert os.listdir(fs_root) == ["b"]
    assert (fs_root / "b").read_bytes() == b"data"


def test_missing_source_is_enoent(fs_root: Path) -> None:
    with fails_with(errno.ENOENT):
        os.rename(fs_root / "missing", fs_root / "b")
    (fs_root / "a").write_bytes(b"")
    with fails_with(errno.ENOENT):
        os.rename(fs_root / "a", fs_root / "no-dir" / "b")
    assert os.listdir(fs_root) == ["a"]


def test_dir_over_empty_dir_replaces_it(fs_root: Path) -> None:
    os.mkdir(fs_root / "src")
    (fs_root / "src" / "inside").write_bytes(b"x")
    os.mkdir(fs_root / "dst")
    os.rename(fs_root / "src", fs_root / "dst")
    assert os.listdir(fs_root) == ["dst"]
    assert os.listdir(fs_root / "dst") == ["inside"]
    assert os.stat(fs_root).st_nlink == 3


def test_dir_over_non_empty_dir_fails(fs_root: Path) -> None:
    # POSIX allows EEXIST too; Linux answers ENOTEMPTY.
    os.mkdir(fs_root / "src")
    os.mkdir(fs_root / "dst")
    (fs_root / "dst" / "f").write_bytes(b"")
    with fails_with(errno.ENOTEMPTY, errno.EEXIST):
        os.rename(fs_root / "src", fs_root / "dst")
    assert sorted(os.listdir(fs_root)) == ["dst", "src"]
    assert os.listdir(fs_root / "dst") == ["f"]


def test_file_over_dir_is_eisdir(fs_root: Path) -> None:
    (fs_root / "f").write_bytes(b"")
    os.mkdir(fs_root / "d")
    with fails_with(errno.EISDIR):
        os.rename(fs_root / "f", fs_root / "d")
    assert stat.S_ISDIR(os.stat(fs_root / "d").st_mode)
    assert stat.S_ISREG(os.stat(fs_root / "f").st_mode)


def test_dir_over_file_is_enotdir(fs_root: Path) -> None:
    (fs_root / "f").write_bytes(b"")
    os.mkdir(fs_root / "d")
    with fails_with(errno.ENOTDIR):
        os.rename(fs_root / "d", fs_root / "f")
    assert stat.S_ISDIR(os.stat(fs_root / "d").st_mode)
    assert stat.S_ISREG(os.stat(fs_root / "f").st_mode)


def test_dir_into_its_own_subdirectory_is_einval(fs_root: Path) -> None:
    os.makedirs(fs_root / "a" / "b")
    with fails_with(errno.EINVAL):
        os.rename(fs_root / "a", fs_root / "a" / "b" / "c")
    with fails_with(errno.EINVAL):
        os.rename(fs_root / "a", fs_root / "a" / "c")
    assert os.listdir(fs_root) == ["a"]
    assert os.listdir(fs_root / "a") == ["b"]


def test_rename_to_itself_changes_nothing(fs_root: Path) -> None:
    (fs_root / "f").write_bytes(b"same")
    os.mkdir(fs_root / "d")
    os.rename(fs_root / "f", fs_root / "f")
    os.rename(fs_root / "d", fs_root / "d")
    assert sorted(os.listdir(fs_root)) == ["d", "f"]
    assert (fs_root / "f").read_bytes() == b"same"


def test_rename_between_hard_links_of_one_file_does_nothing(fs_root: Path) -> None:
    # POSIX: when old and new name the same file, rename succeeds and keeps both.
    (fs_root / "a").write_bytes(b"shared")
    os.link(fs_root / "a", fs_root / "b")
    os.rename(fs_root / "a", fs_root / "b")
    assert sorted(os.listdir(fs_root)) == ["a", "b"]
    assert os.stat(fs_root / "a").st_nlink == 2


def test_file_across_directories(fs_root: Path) -> None:
    os.mkdir(fs_root / "d1")
    os.mkdir(fs_root / "d2")
    (fs_root / "d1" / "f").write_bytes(b"moved")
    os.rename(fs_root / "d1" / "f", fs_root / "d2" / "g")
    assert os.listdir(fs_root / "d1") == []
    assert os.listdir(fs_root / "d2") == ["g"]
    assert (fs_root / "d2" / "g").read_bytes() == b"moved"
    assert os.stat(fs_root / "d1").st_nlink == 2
    assert os.stat(fs_root / "d2").st_nlink == 2


def test_dir_across_directories_moves_its_dotdot(fs_root: Path) -> None:
    os.makedirs(fs_root / "d1" / "sub")
    os.mkdir(fs_root / "d2")
    (fs_root / "d1" / "sub" / "f").write_bytes(b"x")
    assert os.stat(fs_root / "d1").st_nlink == 3
    os.rename(fs_root / "d1" / "sub", fs_root / "d2" / "sub")
    assert os.stat(fs_root / "d1").st_nlink == 2
    assert os.stat(fs_root / "d2").st_nlink == 3
    moved = fs_root / "d2" / "sub"
    assert os.stat(moved / "..").st_ino == os.stat(fs_root / "d2").st_ino
    assert (moved / "f").read_bytes() == b"x"
    assert os.listdir(fs_root / "d1") == []


def test_rename_of_symlink_moves_the_link(fs_root: Path) -> None:
    (fs_root / "target").write_bytes(b"t")
    os.symlink("target", fs_root / "link")
    os.rename(fs_root / "link", fs_root / "moved")
    assert os.readlink(fs_root / "moved") == "target"
    assert sorted(os.listdir(fs_root)) == ["moved", "target"]


def test_noreplace_to_free_name_renames(fs_root: Path) -> None:
    (fs_root / "a").write_bytes(b"a")
    renameat2(fs_root / "a", fs_root / "b", RENAME_NOREPLACE)
    assert os.listdir(fs_root) == ["b"]
    assert (fs_root / "b").read_bytes() == b"a"


def test_noreplace_over_existing_name_is_eexist(fs_root: Path) -> None:
    (fs_root / "a").write_bytes(b"a")
    (fs_root / "b").write_bytes(b"b")
    with fails_with(errno.EEXIST):
        renameat2(fs_root / "a", fs_root / "b", RENAME_NOREPLACE)
    os.mkdir(fs_root / "d")
    with fails_with(errno.EEXIST):
        renameat2(fs_root / "a", fs_root / "d", RENAME_NOREPLACE)
    assert (fs_root / "a").read_bytes() == b"a"
    assert (fs_root / "b").read_bytes() == b"b"


def test_exchange_swaps_two_files(fs_root: Path) -> None:
    (fs_root / "a").write_bytes(b"first")
    (fs_root / "b").write_bytes(b"second")
    ino_a, ino_b = os.stat(fs_root / "a").st_ino, os.stat(fs_root / "b").st_ino
    renameat2(fs_root / "a", fs_root / "b", RENAME_EXCHANGE)
    assert (fs_root / "a").read_bytes() == b"second"
    assert (fs_root / "b").read_bytes() == b"first"
    assert os.stat(fs_root / "a").st_ino == ino_b
    assert os.stat(fs_root / "b").st_ino == ino_a


def test_exchange_swaps_a_file_and_a_directory_across_parents(fs_root: Path) -> None:
    os.mkdir(fs_root / "p1")
    os.mkdir(fs_root / "p2")
    (fs_root / "p1" / "x").write_bytes(b"file")
    os.mkdir(fs_root / "p2" / "y")
    (fs_root / "p2" / "y" / "inside").write_bytes(b"")
    renameat2(fs_root / "p1" / "x", fs_root / "p2" / "y", RENAME_EXCHANGE)
    assert (fs_root / "p2" / "y").read_bytes() == b"file"
    assert os.listdir(fs_root / "p1" / "x") == ["inside"]
    assert os.stat(fs_root / "p1" / "x" / "..").st_ino == os.stat(fs_root / "p1").st_ino
    assert os.stat(fs_root / "p1").st_nlink == 3
    assert os.stat(fs_root / "p2").st_nlink == 2


def test_exchange_with_missing_name_is_enoent(fs_root: Path) -> None:
    (fs_root / "a").write_bytes(b"a")
    with fails_with(errno.ENOENT):
        renameat2(fs_root / "a", fs_root / "missing", RENAME_EXCHANGE)
    assert os.listdir(fs_root) == ["a"]
