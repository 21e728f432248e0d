"""Mode bits and ownership: chmod, chown, umask, set-id bits and setgid directories.

What happens to set-id bits is Linux's rule (setattr_should_drop_suidgid), checked
against the local file system; a user other than root is played by nobody.
"""

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuse_client.posix.users import NOBODY_GID, NOBODY_UID, as_nobody, nobody_outcome


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _owner(path: Path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid


@pytest.fixture
def umask_027() -> Iterator[None]:
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def test_chmod_changes_permission_bits_and_keeps_the_type(fs_root: Path) -> None:
    (fs_root / "f").write_bytes(b"")
    os.mkdir(fs_root / "d")
    for mode in (0o600, 0o755, 0o000, 0o4755, 0o2750, 0o1777, 0o7777):
        os.chmod(fs_root / "f", mode)
        os.chmod(fs_root / "d", mode)
        assert stat.S_ISREG(os.stat(fs_root / "f").st_mode)
        assert stat.S_ISDIR(os.stat(fs_root / "d").st_mode)
        assert _mode(fs_root / "f") == mode
        assert _mode(fs_root / "d") == mode


def test_chmod_through_symlink_changes_the_target(fs_root: Path) -> None:
    (fs_root / "f").write_bytes(b"")
    os.chmod(fs_root / "f", 0o644)
    os.symlink("f", fs_root / "link")
    os.chmod(fs_root / "link", 0o600)
    assert _mode(fs_root / "f") == 0o600
    assert _mode(fs_root / "link") == 0o777


def test_fchmod_on_an_open_file(fs_root: Path) -> None:
    fd = os.open(fs_root / "f", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.fchmod(fd, 0o400)
        os.write(fd, b"still writable through the fd")
    finally:
        os.close(fd)
    assert _mode(fs_root / "f") == 0o400
    assert (fs_root / "f").read_bytes() == b"still writable through the fd"


def test_new_entries_are_owned_by_root(fs_root: Path) -> None:
    (fs_root / "f").write_bytes(b"")
    os.mkdir(fs_root / "d")
    os.symlink("f", fs_root / "l")
    for name in ("f", "d", "l"):
        assert _owner(fs_root / name) == (0, 0), name


def test_chown_by_root(fs_root: Path) -> None:
    (fs_root / "f").write_bytes(b"")
    os.chown(fs_root / "f", 1234, 5678)
    assert _owner(fs_root / "f") == (1234, 5678)
    os.chown(fs_root / "f", -1, 42)
    assert _owner(fs_root / "f") == (1234, 42)
    os.chown(fs_root / "f", 7, -1)
    assert _owner(fs_root / "f") == (7, 42)
    os.mkdir(fs_root / "d")
    os.chown(fs_root / "d", NOBODY_UID, NOBODY_GID)
    assert _owner(fs_root / "d") == (NOBODY_UID, NOBODY_GID)


def test_umask_applies_at_creation(fs_root: Path, umask_027: None) -> None:
    fd = os.open(fs_root / "f", os.O_WRONLY | os.O_CREAT, 0o666)
    os.close(fd)
    os.mkdir(fs_root / "d", 0o777)
    os.mkfifo(fs_root / "p", 0o666)
    assert _mode(fs_root / "f") == 0o640
    assert _mode(fs_root / "d") == 0o750
    assert _mode(fs_root / "p") == 0o640
    os.chmod(fs_root / "f", 0o666)
    assert _mode(fs_root / "f") == 0o666


def test_write_by_other_user_clears_setuid_and_setgid(fs_root: Path) -> None:
    for name, mode in (("both", 0o6777), ("sgid-no-gx", 0o2767)):
        (fs_root / name).write_bytes(b"")
        os.chmod(fs_root / name, mode)
        assert nobody_outcome(f"open({name!r}, 'ab').write(b'x')", fs_root) == "ok"
    assert _mode(fs_root / "both") == 0o777
    assert (fs_root / "both").read_bytes() == b"x"
    # S_ISGID without group-execute marks mandatory locking, not a set-group-ID
    # program. Linux's FUSE layer keeps it on write (fs/fuse clears S_ISGID only
    # with S_IXGRP), where ext4 on recent kernels drops it for non-members.
    assert _mode(fs_root / "sgid-no-gx") == 0o2767


def test_truncate_by_other_user_clears_setuid(fs_root: Path) -> None:
    (fs_root / "f").write_bytes(b"data")
    os.chmod(fs_root / "f", 0o4777)
    assert nobody_outcome("os.truncate('f', 0)", fs_root) == "ok"
    assert _mode(fs_root / "f") == 0o777
    assert os.stat(fs_root / "f").st_size == 0


def test_write_by_root_keeps_setuid_and_setgid(fs_root: Path) -> None:
    (fs_root / "f").write_bytes(b"")
    os.chmod(fs_root / "f", 0o6777)
    with open(fs_root / "f", "ab") as f:
        f.write(b"root")
    assert _mode(fs_root / "f") == 0o6777


def test_chown_clears_setuid_and_group_exec_setgid_of_files(fs_root: Path) -> None:
    # chown(2): since Linux 2.2.13 root is treated like other users, even when
    # the owner does not change.
    cases = {"suid": 0o4755, "sgid-gx": 0o2755, "sgid-no-gx": 0o2745, "same-owner": 0o6755}
    for name, mode in cases.items():
        (fs_root / name).write_bytes(b"")
        os.chmod(fs_root / name, mode)
    for name in ("suid", "sgid-gx", "sgid-no-gx"):
        os.chown(fs_root / name, 1, 1)
    os.chown(fs_root / "same-owner", 0, 0)
    assert _mode(fs_root / "suid") == 0o755
    assert _mode(fs_root / "sgid-gx") == 0o755
    assert _mode(fs_root / "sgid-no-gx") == 0o2745
    assert _mode(fs_root / "same-owner") == 0o755


def test_chown_keeps_set_id_bits_of_directories(fs_root: Path) -> None:
    os.mkdir(fs_root / "d")
    os.chmod(fs_root / "d", 0o6755)
    os.chown(fs_root / "d", 1, 1)
    assert _mode(fs_root / "d") == 0o6755


def test_chmod_by_non_member_drops_setgid(fs_root: Path) -> None:
    (fs_root / "f").write_bytes(b"")
    os.chown(fs_root / "f", NOBODY_UID, 0)
    assert nobody_outcome("os.chmod('f', 0o2755)", fs_root) == "ok"
    assert _mode(fs_root / "f") == 0o755
    assert nobody_outcome("os.chmod('f', 0o4755)", fs_root) == "ok"
    assert _mode(fs_root / "f") == 0o4755


def test_setgid_directory_passes_its_group_on(fs_root: Path) -> None:
    d = fs_root / "shared"
    os.mkdir(d)
    os.chown(d, 0, 5678)
    os.chmod(d, 0o2777)
    (d / "by-root").write_bytes(b"")
    os.mkdir(d / "subdir")
    as_nobody("open('shared/by-nobody', 'wb').close()", fs_root)
    assert _owner(d / "by-root") == (0, 5678)
    assert _owner(d / "by-nobody") == (NOBODY_UID, 5678)
    assert _owner(d / "subdir") == (0, 5678)
    assert os.stat(d / "subdir").st_mode & stat.S_ISGID
    assert not os.stat(d / "by-root").st_mode & stat.S_ISGID


def test_sticky_directory_protects_other_users_entries(fs_root: Path) -> None:
    d = fs_root / "tmp"
    os.mkdir(d)
    os.chmod(d, 0o1777)
    (d / "roots").write_bytes(b"mine")
    os.chmod(d / "roots", 0o666)
    as_nobody("open('tmp/nobodys', 'wb').close()", fs_root)
    assert nobody_outcome("os.unlink('tmp/roots')", fs_root) == "EPERM"
    assert nobody_outcome("os.rename('tmp/roots', 'tmp/moved')", fs_root) == "EPERM"
    assert nobody_outcome("os.rename('tmp/nobodys', 'tmp/roots')", fs_root) == "EPERM"
    assert nobody_outcome("open('tmp/roots', 'ab').write(b'!')", fs_root) == "ok"
    assert nobody_outcome("os.rename('tmp/nobodys', 'tmp/renamed')", fs_root) == "ok"
    assert nobody_outcome("os.unlink('tmp/renamed')", fs_root) == "ok"
    assert os.listdir(d) == ["roots"]
    assert (d / "roots").read_bytes() == b"mine!"


def test_without_sticky_bit_others_may_delete(fs_root: Path) -> None:
    d = fs_root / "open"
    os.mkdir(d)
    os.chmod(d, 0o777)
    (d / "roots").write_bytes(b"")
    os.chmod(d / "roots", 0o600)
    assert nobody_outcome("os.unlink('open/roots')", fs_root) == "ok"
    assert os.listdir(d) == []
