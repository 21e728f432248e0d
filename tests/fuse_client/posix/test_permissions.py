"""Permission checks, seen by nobody (65534:65534) on files and directories root made."""

import os
from pathlib import Path

from tests.fuse_client.posix.users import NOBODY_GID, NOBODY_UID, as_nobody, nobody_outcome


def _root_file(path: Path, mode: int, data: bytes = b"secret") -> None:
    path.write_bytes(data)
    os.chmod(path, mode)


def _root_dir(path: Path, mode: int) -> None:
    os.mkdir(path)
    os.chmod(path, mode)


def test_cannot_read_a_0600_root_file(fs_root: Path) -> None:
    _root_file(fs_root / "f", 0o600)
    assert nobody_outcome("open('f', 'rb')", fs_root) == "EACCES"


def test_can_read_a_0644_root_file(fs_root: Path) -> None:
    _root_file(fs_root / "f", 0o644, b"public")
    assert as_nobody("print(open('f', 'rb').read().decode())", fs_root) == "public\n"


def test_cannot_write_a_0644_root_file(fs_root: Path) -> None:
    _root_file(fs_root / "f", 0o644)
    assert nobody_outcome("open('f', 'r+b')", fs_root) == "EACCES"
    assert nobody_outcome("os.truncate('f', 0)", fs_root) == "EACCES"
    assert (fs_root / "f").read_bytes() == b"secret"


def test_group_bits_apply_to_group_members_before_other_bits(fs_root: Path) -> None:
    _root_file(fs_root / "group-reads", 0o640)
    os.chown(fs_root / "group-reads", 0, NOBODY_GID)
    _root_file(fs_root / "group-denied", 0o604)
    os.chown(fs_root / "group-denied", 0, NOBODY_GID)
    assert nobody_outcome("open('group-reads', 'rb')", fs_root) == "ok"
    assert nobody_outcome("open('group-denied', 'rb')", fs_root) == "EACCES"


def test_owner_bits_apply_to_the_owner_before_other_bits(fs_root: Path) -> None:
    _root_file(fs_root / "f", 0o077)
    os.chown(fs_root / "f", NOBODY_UID, 0)
    assert nobody_outcome("open('f', 'rb')", fs_root) == "EACCES"


def test_cannot_create_or_delete_in_a_0755_root_dir(fs_root: Path) -> None:
    _root_dir(fs_root / "d", 0o755)
    (fs_root / "d" / "existing").write_bytes(b"")
    assert nobody_outcome("open('d/new', 'wb')", fs_root) == "EACCES"
    assert nobody_outcome("os.mkdir('d/sub')", fs_root) == "EACCES"
    assert nobody_outcome("os.symlink('x', 'd/link')", fs_root) == "EACCES"
    assert nobody_outcome("os.unlink('d/existing')", fs_root) == "EACCES"
    assert nobody_outcome("os.rename('d/existing', 'd/renamed')", fs_root) == "EACCES"
    assert os.listdir(fs_root / "d") == ["existing"]


def test_creates_in_a_0777_dir_as_its_own(fs_root: Path) -> None:
    _root_dir(fs_root / "d", 0o777)
    as_nobody(
        """
        open('d/file', 'wb').write(b'mine')
        os.mkdir('d/dir')
        os.symlink('file', 'd/link')
        os.mkfifo('d/fifo')
        """,
        fs_root,
    )
    for name in ("file", "dir", "link", "fifo"):
        st = os.lstat(fs_root / "d" / name)
        assert (st.st_uid, st.st_gid) == (NOBODY_UID, NOBODY_GID), name
    assert (fs_root / "d" / "file").read_bytes() == b"mine"


def test_cannot_chmod_someone_elses_file(fs_root: Path) -> None:
    _root_file(fs_root / "f", 0o666)
    assert nobody_outcome("os.chmod('f', 0o777)", fs_root) == "EPERM"
    assert os.stat(fs_root / "f").st_mode & 0o777 == 0o666


def test_can_chmod_its_own_file(fs_root: Path) -> None:
    as_nobody("open('f', 'wb').close(); os.chmod('f', 0o600)", fs_root)
    assert os.stat(fs_root / "f").st_mode & 0o777 == 0o600


def test_cannot_chown(fs_root: Path) -> None:
    _root_file(fs_root / "roots", 0o666)
    as_nobody("open('own', 'wb').close()", fs_root)
    assert nobody_outcome("os.chown('roots', 65534, 65534)", fs_root) == "EPERM"
    assert nobody_outcome("os.chown('own', 0, -1)", fs_root) == "EPERM"
    assert nobody_outcome("os.chown('own', -1, 0)", fs_root) == "EPERM"
    assert os.stat(fs_root / "roots").st_uid == 0
    assert (os.stat(fs_root / "own").st_uid, os.stat(fs_root / "own").st_gid) == (
        NOBODY_UID,
        NOBODY_GID,
    )


def test_cannot_mknod_a_device(fs_root: Path) -> None:
    code = "os.mknod('dev', stat.S_IFCHR | 0o600, os.makedev(1, 3))"
    assert nobody_outcome(code, fs_root) == "EPERM"
    assert os.listdir(fs_root) == []


def test_directory_without_search_permission_hides_its_entries(fs_root: Path) -> None:
    _root_dir(fs_root / "closed", 0o700)
    (fs_root / "closed" / "f").write_bytes(b"")
    os.chmod(fs_root / "closed" / "f", 0o644)
    assert nobody_outcome("os.stat('closed/f')", fs_root) == "EACCES"
    assert nobody_outcome("open('closed/f', 'rb')", fs_root) == "EACCES"
    assert nobody_outcome("os.listdir('closed')", fs_root) == "EACCES"
    assert nobody_outcome("os.stat('closed')", fs_root) == "ok"


def test_search_without_read_permission(fs_root: Path) -> None:
    _root_dir(fs_root / "d", 0o711)
    _root_file(fs_root / "d" / "f", 0o644, b"reachable")
    assert nobody_outcome("os.listdir('d')", fs_root) == "EACCES"
    assert as_nobody("print(open('d/f', 'rb').read().decode())", fs_root) == "reachable\n"


def test_read_without_search_permission(fs_root: Path) -> None:
    _root_dir(fs_root / "d", 0o744)
    _root_file(fs_root / "d" / "f", 0o644)
    assert as_nobody("print(os.listdir('d'))", fs_root) == "['f']\n"
    assert nobody_outcome("os.stat('d/f')", fs_root) == "EACCES"


def test_utime_needs_ownership_for_explicit_times(fs_root: Path) -> None:
    _root_file(fs_root / "writable", 0o666)
    _root_file(fs_root / "readonly", 0o644)
    assert nobody_outcome("os.utime('writable', ns=(0, 0))", fs_root) == "EPERM"
    assert nobody_outcome("os.utime('writable', None)", fs_root) == "ok"
    assert nobody_outcome("os.utime('readonly', None)", fs_root) == "EACCES"
    assert os.stat(fs_root / "writable").st_mtime_ns != 0
