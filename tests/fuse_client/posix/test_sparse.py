"""Sparse files and truncate: holes read as zeros and take no space."""

import errno
import os
from pathlib import Path

from tests.fuse_client.posix.errors import fails_with

GIB = 1 << 30
MIB = 1 << 20


def test_write_far_past_eof_leaves_a_hole(fs_root: Path) -> None:
    f = fs_root / "sparse"
    fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        assert os.pwrite(fd, b"tail", GIB) == 4
        st = os.fstat(fd)
        assert st.st_size == GIB + 4
        assert os.pread(fd, 4096, 0) == bytes(4096)
        assert os.pread(fd, 64 * 1024, GIB // 2 + 12345) == bytes(64 * 1024)
        assert os.pread(fd, 100, GIB - 6) == bytes(6) + b"tail"
    finally:
        os.close(fd)
    assert os.stat(f).st_blocks * 512 <= 16 * MIB, "the hole takes space"


def test_holes_between_written_pieces_read_as_zeros(fs_root: Path) -> None:
    f = fs_root / "f"
    fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, b"A" * 10, 0)
        os.pwrite(fd, b"B" * 10, 100_000)
        os.pwrite(fd, b"C" * 10, 5 * MIB)
        data = os.pread(fd, 6 * MIB, 0)
    finally:
        os.close(fd)
    expected = bytearray(5 * MIB + 10)
    expected[0:10] = b"A" * 10
    expected[100_000:100_010] = b"B" * 10
    expected[5 * MIB :] = b"C" * 10
    assert data == bytes(expected)


def test_seek_data_and_hole_stay_within_the_file(fs_root: Path) -> None:
    # A file system may report no holes at all; what is fixed: data is found at or
    # before written data, a hole at or before EOF, and no data past EOF.
    f = fs_root / "f"
    fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, b"data", 8 * MIB)
        size = 8 * MIB + 4
        assert 0 <= os.lseek(fd, 0, os.SEEK_DATA) <= 8 * MIB
        assert 0 <= os.lseek(fd, 0, os.SEEK_HOLE) <= size
        assert os.lseek(fd, 8 * MIB, os.SEEK_HOLE) == size
        with fails_with(errno.ENXIO):
            os.lseek(fd, size, os.SEEK_DATA)
    finally:
        os.close(fd)


def test_truncate_shrinks(fs_root: Path) -> None:
    f = fs_root / "f"
    data = bytes(range(256)) * 40
    f.write_bytes(data)
    os.truncate(f, 100)
    assert os.stat(f).st_size == 100
    assert f.read_bytes() == data[:100]
    os.truncate(f, 0)
    assert f.read_bytes() == b""


def test_truncate_extends_with_zeros(fs_root: Path) -> None:
    f = fs_root / "f"
    f.write_bytes(b"0123456789")
    os.truncate(f, MIB)
    assert os.stat(f).st_size == MIB
    assert f.read_bytes() == b"0123456789" + bytes(MIB - 10)


def test_shrink_then_extend_does_not_bring_old_data_back(fs_root: Path) -> None:
    f = fs_root / "f"
    f.write_bytes(b"\xff" * (3 * MIB))
    os.truncate(f, 1000)
    os.truncate(f, 3 * MIB)
    assert f.read_bytes() == b"\xff" * 1000 + bytes(3 * MIB - 1000)
    os.truncate(f, 5)
    with open(f, "r+b") as fh:
        fh.seek(4096)
        fh.write(b"end")
    assert f.read_bytes() == b"\xff" * 5 + bytes(4091) + b"end"


def test_ftruncate_on_an_open_fd(fs_root: Path) -> None:
    f = fs_root / "f"
    fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"0123456789")
        os.ftruncate(fd, 3)
        assert os.fstat(fd).st_size == 3
        assert os.pread(fd, 100, 0) == b"012"
        # The offset stays at 10: the next write leaves a hole after the new EOF.
        os.write(fd, b"xy")
        assert os.fstat(fd).st_size == 12
        assert os.pread(fd, 100, 0) == b"012" + bytes(7) + b"xy"
        os.ftruncate(fd, 20)
        assert os.pread(fd, 100, 0) == b"012" + bytes(7) + b"xy" + bytes(8)
    finally:
        os.close(fd)
    assert f.read_bytes() == b"012" + bytes(7) + b"xy" + bytes(8)


def test_truncate_seen_by_another_open_fd(fs_root: Path) -> None:
    f = fs_root / "f"
    f.write_bytes(b"x" * 10_000)
    fd = os.open(f, os.O_RDONLY)
    try:
        assert os.pread(fd, 10, 0) == b"x" * 10
        os.truncate(f, 4)
        assert os.fstat(fd).st_size == 4
        assert os.pread(fd, 10_000, 0) == b"xxxx"
    finally:
        os.close(fd)


def test_truncate_errors(fs_root: Path) -> None:
    (fs_root / "f").write_bytes(b"abc")
    os.mkdir(fs_root / "d")
    with fails_with(errno.EINVAL):
        os.truncate(fs_root / "f", -1)
    with fails_with(errno.EISDIR):
        os.truncate(fs_root / "d", 0)
    with fails_with(errno.ENOENT):
        os.truncate(fs_root / "missing", 0)
    fd = os.open(fs_root / "f", os.O_RDONLY)
    try:
        with fails_with(errno.EINVAL, errno.EBADF):
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)
    assert (fs_root / "f").read_bytes() == b"abc"
