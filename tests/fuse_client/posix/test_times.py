"""Timestamps: which operations move mtime and ctime, and exact utime round trips.

atime is only set explicitly here: under relatime a read need not move it.
Before an operation whose ctime change is checked, the test sleeps a little so the
clock has moved past the previous ctime even on a coarse timestamp granularity.
"""

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fuse_client.run import MountOptions

OLD_NS = 1_000_000_000_123_456_789  # 2001-09-09, with nanoseconds
TICK = 0.05
SLACK_NS = 2_000_000_000


def _age(path: Path) -> os.stat_result:
    """Put mtime and atime far in the past, wait a tick, and return the stat."""
    os.utime(path, ns=(OLD_NS, OLD_NS), follow_symlinks=False)
    time.sleep(TICK)
    return os.lstat(path)


def _assert_recent(ns: int, since: int) -> None:
    assert since - SLACK_NS <= ns <= time.time_ns() + SLACK_NS, (ns, since)


def test_new_file_has_current_equal_times(fs_root: Path) -> None:
    since = time.time_ns()
    (fs_root / "f").write_bytes(b"")
    st = os.stat(fs_root / "f")
    _assert_recent(st.st_mtime_ns, since)
    assert st.st_mtime_ns == st.st_ctime_ns


def test_write_moves_mtime_and_ctime(fs_root: Path) -> None:
    f = fs_root / "f"
    f.write_bytes(b"before")
    before = _age(f)
    since = time.time_ns()
    with open(f, "r+b") as fh:
        fh.write(b"after")
    after = os.stat(f)
    _assert_recent(after.st_mtime_ns, since)
    assert after.st_ctime_ns > before.st_ctime_ns


@pytest.mark.parametrize("how", ["truncate", "ftruncate", "o_trunc"])
def test_truncate_moves_mtime_and_ctime(fs_root: Path, how: str) -> None:
    f = fs_root / "f"
    f.write_bytes(b"0123456789")
    before = _age(f)
    since = time.time_ns()
    if how == "truncate":
        os.truncate(f, 3)
    elif how == "ftruncate":
        fd = os.open(f, os.O_WRONLY)
        os.ftruncate(fd, 3)
        os.close(fd)
    else:
        os.close(os.open(f, os.O_WRONLY | os.O_TRUNC))
    after = os.stat(f)
    _assert_recent(after.st_mtime_ns, since)
    assert after.st_ctime_ns > before.st_ctime_ns


def _chmod(f: Path) -> None:
    os.chmod(f, 0o600)


def _chown(f: Path) -> None:
    os.chown(f, 1234, 5678)


def _link(f: Path) -> None:
    os.link(f, f.with_name("second-name"))


def _rename(f: Path) -> None:
    os.rename(f, f.with_name("renamed"))


def _setxattr(f: Path) -> None:
    os.setxattr(f, "user.k", b"v")


INODE_CHANGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "chmod": (_chmod, "f"),
    "chown": (_chown, "f"),
    "link": (_link, "f"),
    "rename": (_rename, "renamed"),
    "setxattr": (_setxattr, "f"),
}


@pytest.mark.parametrize("op", sorted(INODE_CHANGES))
def test_metadata_change_moves_ctime_only(fs_root: Path, op: str) -> None:
    change, name_after = INODE_CHANGES[op]
    f = fs_root / "f"
    f.write_bytes(b"data")
    before = _age(f)
    change(f)
    after = os.stat(fs_root / name_after)
    assert after.st_ctime_ns > before.st_ctime_ns
    assert after.st_mtime_ns == OLD_NS


def test_unlink_of_one_name_moves_ctime_of_the_other(fs_root: Path) -> None:
    (fs_root / "a").write_bytes(b"")
    os.link(fs_root / "a", fs_root / "b")
    before = _age(fs_root / "b")
    os.unlink(fs_root / "a")
    after = os.stat(fs_root / "b")
    assert after.st_ctime_ns > before.st_ctime_ns
    assert after.st_mtime_ns == OLD_NS


def _create(d: Path) -> None:
    (d / "new").write_bytes(b"")


def _mkdir(d: Path) -> None:
    os.mkdir(d / "newdir")


def _symlink(d: Path) -> None:
    os.symlink("x", d / "newlink")


def _hardlink(d: Path) -> None:
    os.link(d / "existing", d / "newlink")


def _unlink(d: Path) -> None:
    os.unlink(d / "existing")


def _rmdir(d: Path) -> None:
    os.rmdir(d / "subdir")


def _rename_within(d: Path) -> None:
    os.rename(d / "existing", d / "renamed")


DIRECTORY_CHANGES: dict[str, Callable[[Path], None]] = {
    "create": _create,
    "mkdir": _mkdir,
    "symlink": _symlink,
    "link": _hardlink,
    "unlink": _unlink,
    "rmdir": _rmdir,
    "rename": _rename_within,
}


@pytest.mark.parametrize("op", sorted(DIRECTORY_CHANGES))
def test_entry_change_moves_parent_mtime_and_ctime(fs_root: Path, op: str) -> None:
    d = fs_root / "parent"
    os.mkdir(d)
    (d / "existing").write_bytes(b"")
    os.mkdir(d / "subdir")
    before = _age(d)
    since = time.time_ns()
    DIRECTORY_CHANGES[op](d)
    after = os.stat(d)
    _assert_recent(after.st_mtime_ns, since)
    assert after.st_ctime_ns > before.st_ctime_ns


def test_rename_across_directories_moves_both_parents_times(fs_root: Path) -> None:
    src, dst = fs_root / "src", fs_root / "dst"
    os.mkdir(src)
    os.mkdir(dst)
    (src / "f").write_bytes(b"")
    before = {src: _age(src), dst: _age(dst)}
    since = time.time_ns()
    os.rename(src / "f", dst / "f")
    for parent, old in before.items():
        after = os.stat(parent)
        _assert_recent(after.st_mtime_ns, since)
        assert after.st_ctime_ns > old.st_ctime_ns, parent.name


def test_rename_keeps_the_moved_files_mtime(fs_root: Path) -> None:
    (fs_root / "a").write_bytes(b"")
    os.utime(fs_root / "a", ns=(OLD_NS, OLD_NS))
    os.rename(fs_root / "a", fs_root / "b")
    assert os.stat(fs_root / "b").st_mtime_ns == OLD_NS


@pytest.mark.parametrize(
    ("atime_ns", "mtime_ns"),
    [
        (1_234_567_890_123_456_789, 1_111_111_111_987_654_321),
        (0, 1),
        (4_102_444_800_999_999_999, 2_147_483_648_000_000_001),  # past 2038
    ],
)
@pytest.mark.parametrize("kind", ["file", "dir", "symlink"])
def test_utime_round_trips_nanoseconds(
    fs_root: Path, kind: str, atime_ns: int, mtime_ns: int
) -> None:
    p = fs_root / "x"
    if kind == "file":
        p.write_bytes(b"")
    elif kind == "dir":
        os.mkdir(p)
    else:
        os.symlink("nowhere", p)
    os.utime(p, ns=(atime_ns, mtime_ns), follow_symlinks=False)
    st = os.lstat(p)
    assert (st.st_atime_ns, st.st_mtime_ns) == (atime_ns, mtime_ns)


def test_futimens_on_an_open_file(fs_root: Path) -> None:
    fd = os.open(fs_root / "f", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"x")
        os.utime(fd, ns=(OLD_NS, OLD_NS + 1))
        st = os.fstat(fd)
    finally:
        os.close(fd)
    assert (st.st_atime_ns, st.st_mtime_ns) == (OLD_NS, OLD_NS + 1)
    # Past the attribute bound the kernel asks the mount: the write stored at
    # close must not have moved the mtime set after it (cp -p, tar).
    time.sleep(MountOptions.attr_ttl + TICK)
    assert os.stat(fs_root / "f").st_mtime_ns == OLD_NS + 1


def test_utime_none_sets_now(fs_root: Path) -> None:
    f = fs_root / "f"
    f.write_bytes(b"")
    before = _age(f)
    since = time.time_ns()
    os.utime(f, None)
    st = os.stat(f)
    _assert_recent(st.st_atime_ns, since)
    _assert_recent(st.st_mtime_ns, since)
    assert st.st_ctime_ns > before.st_ctime_ns
