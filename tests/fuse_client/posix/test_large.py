"""Large files: offsets past 2 GiB and 4 GiB (sparse, so they cost no space)."""

import os
import random
from pathlib import Path

import pytest

GIB = 1 << 30


@pytest.mark.parametrize("offset", [3 * GIB, 5 * GIB + 12345], ids=["3GiB", "5GiB+"])
def test_pwrite_and_pread_at_large_offset(fs_root: Path, offset: int) -> None:
    data = random.Random(offset).randbytes(100_000)
    f = fs_root / "big"
    fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        assert os.pwrite(fd, data, offset) == len(data)
        assert os.fstat(fd).st_size == offset + len(data)
        assert os.pread(fd, len(data), offset) == data
        assert os.pread(fd, 10, offset - 10) == bytes(10)
    finally:
        os.close(fd)
    size = os.stat(f).st_size
    assert size > 2**31
    assert size == offset + len(data)
    with open(f, "rb") as fh:
        fh.seek(offset + 50_000)
        assert fh.read(50_000) == data[50_000:]


def test_write_across_the_4gib_boundary(fs_root: Path) -> None:
    data = random.Random(4).randbytes(3 * 4096 + 5)
    start = 4 * GIB - 4096 - 1
    fd = os.open(fs_root / "f", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, data, start)
        assert os.pread(fd, len(data), start) == data
        assert os.pread(fd, 2, 4 * GIB - 1) == data[4096 : 4096 + 2]
        assert os.pread(fd, 4096, 0) == bytes(4096)
    finally:
        os.close(fd)


def test_lseek_on_a_large_file(fs_root: Path) -> None:
    fd = os.open(fs_root / "f", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        assert os.lseek(fd, 3 * GIB, os.SEEK_SET) == 3 * GIB
        os.write(fd, b"0123456789")
        end = 3 * GIB + 10
        assert os.lseek(fd, 0, os.SEEK_END) == end
        assert os.lseek(fd, -4, os.SEEK_END) == end - 4
        assert os.read(fd, 100) == b"6789"
        assert os.lseek(fd, -10, os.SEEK_CUR) == end - 10
        assert os.read(fd, 3) == b"012"
        assert os.lseek(fd, GIB, os.SEEK_END) == end + GIB
        assert os.read(fd, 10) == b""
    finally:
        os.close(fd)


def test_truncate_to_a_large_size_and_back(fs_root: Path) -> None:
    f = fs_root / "f"
    f.write_bytes(b"head")
    os.truncate(f, 6 * GIB)
    assert os.stat(f).st_size == 6 * GIB
    with open(f, "rb") as fh:
        fh.seek(6 * GIB - 8)
        assert fh.read() == bytes(8)
    os.truncate(f, 2)
    assert f.read_bytes() == b"he"
