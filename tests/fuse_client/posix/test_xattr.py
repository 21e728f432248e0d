"""Extended attributes in the user namespace."""

import errno
import os
from pathlib import Path

from tests.fuse_client.posix.errors import fails_with
from tests.fuse_client.posix.users import as_nobody, nobody_outcome


def _user_attrs(path: Path) -> list[str]:
    return sorted(n for n in os.listxattr(path) if n.startswith("user."))


def _file(fs_root: Path) -> Path:
    f = fs_root / "f"
    f.write_bytes(b"data")
    return f


def test_set_get_list_remove(fs_root: Path) -> None:
    f = _file(fs_root)
    assert _user_attrs(f) == []
    os.setxattr(f, "user.colour", b"blue")
    os.setxattr(f, "user.size", b"large")
    assert os.getxattr(f, "user.colour") == b"blue"
    assert _user_attrs(f) == ["user.colour", "user.size"]
    os.setxattr(f, "user.colour", b"green")
    assert os.getxattr(f, "user.colour") == b"green"
    os.removexattr(f, "user.colour")
    assert _user_attrs(f) == ["user.size"]
    with fails_with(errno.ENODATA):
        os.getxattr(f, "user.colour")
    assert f.read_bytes() == b"data"


def test_missing_attribute_is_enodata(fs_root: Path) -> None:
    f = _file(fs_root)
    with fails_with(errno.ENODATA):
        os.getxattr(f, "user.missing")
    with fails_with(errno.ENODATA):
        os.removexattr(f, "user.missing")


def test_xattr_create_on_existing_is_eexist(fs_root: Path) -> None:
    f = _file(fs_root)
    os.setxattr(f, "user.k", b"first", os.XATTR_CREATE)
    with fails_with(errno.EEXIST):
        os.setxattr(f, "user.k", b"second", os.XATTR_CREATE)
    assert os.getxattr(f, "user.k") == b"first"


def test_xattr_replace_on_missing_is_enodata(fs_root: Path) -> None:
    f = _file(fs_root)
    with fails_with(errno.ENODATA):
        os.setxattr(f, "user.k", b"v", os.XATTR_REPLACE)
    assert _user_attrs(f) == []
    os.setxattr(f, "user.k", b"v")
    os.setxattr(f, "user.k", b"w", os.XATTR_REPLACE)
    assert os.getxattr(f, "user.k") == b"w"


def test_binary_and_empty_values(fs_root: Path) -> None:
    f = _file(fs_root)
    binary = bytes(range(256))
    os.setxattr(f, "user.binary", binary)
    os.setxattr(f, "user.empty", b"")
    assert os.getxattr(f, "user.binary") == binary
    assert os.getxattr(f, "user.empty") == b""
    assert _user_attrs(f) == ["user.binary", "user.empty"]


def test_large_value(fs_root: Path) -> None:
    # Alone on its file: ext4 keeps all of a file's attributes in one block, so
    # 4000 bytes next to other values fails there with ENOSPC.
    f = _file(fs_root)
    large = bytes((i * 7) % 251 for i in range(4000))
    os.setxattr(f, "user.large", large)
    assert os.getxattr(f, "user.large") == large
    assert len(os.getxattr(f, "user.large")) == 4000


def test_attributes_on_a_directory(fs_root: Path) -> None:
    d = fs_root / "d"
    os.mkdir(d)
    os.setxattr(d, "user.k", b"on a dir")
    assert os.getxattr(d, "user.k") == b"on a dir"
    (d / "child").write_bytes(b"")
    assert _user_attrs(d / "child") == []


def test_attributes_belong_to_the_inode(fs_root: Path) -> None:
    f = _file(fs_root)
    os.setxattr(f, "user.k", b"v")
    os.link(f, fs_root / "hard")
    os.rename(f, fs_root / "renamed")
    assert os.getxattr(fs_root / "hard", "user.k") == b"v"
    assert os.getxattr(fs_root / "renamed", "user.k") == b"v"
    os.symlink("renamed", fs_root / "sym")
    assert os.getxattr(fs_root / "sym", "user.k") == b"v"


def test_attributes_through_an_open_fd(fs_root: Path) -> None:
    fd = os.open(fs_root / "f", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.setxattr(fd, "user.k", b"by fd")
        assert os.getxattr(fd, "user.k") == b"by fd"
        assert "user.k" in os.listxattr(fd)
        os.removexattr(fd, "user.k")
        assert "user.k" not in os.listxattr(fd)
    finally:
        os.close(fd)


def test_user_attributes_on_a_symlink_itself_are_eperm(fs_root: Path) -> None:
    # Linux allows user.* only on regular files and directories.
    (fs_root / "t").write_bytes(b"")
    os.symlink("t", fs_root / "sym")
    with fails_with(errno.EPERM):
        os.setxattr(fs_root / "sym", "user.k", b"v", follow_symlinks=False)
    assert _user_attrs(fs_root / "t") == []


def test_attributes_need_write_permission_to_set(fs_root: Path) -> None:
    f = _file(fs_root)
    os.chmod(f, 0o644)
    os.setxattr(f, "user.k", b"readable")
    assert as_nobody("print(os.getxattr('f', 'user.k').decode())", fs_root) == "readable\n"
    assert nobody_outcome("os.setxattr('f', 'user.k', b'x')", fs_root) == "EACCES"
    assert nobody_outcome("os.removexattr('f', 'user.k')", fs_root) == "EACCES"
    os.chmod(f, 0o600)
    assert nobody_outcome("os.getxattr('f', 'user.k')", fs_root) == "EACCES"
    assert os.getxattr(f, "user.k") == b"readable"
