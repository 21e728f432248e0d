"""File contents come back bit for bit, whatever the sizes and write patterns."""

import hashlib
import mmap
import os
import random
import shutil
from pathlib import Path

import pytest

KIB = 1024
MIB = 1024 * KIB
SIZES = [0, 1, 4095, 4096, 4097, 128 * KIB + 7, 5 * MIB + 3]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(path: Path, chunk: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while piece := f.read(chunk):
            h.update(piece)
    return h.hexdigest()


@pytest.mark.parametrize("size", SIZES)
def test_contents_round_trip(fs_root: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    f = fs_root / "f"
    f.write_bytes(data)
    assert os.stat(f).st_size == size
    assert _sha(f.read_bytes()) == _sha(data)
    assert _file_sha(f, 1000) == _sha(data)
    assert _file_sha(f, 65536 + 1) == _sha(data)


@pytest.mark.parametrize("size", [4097, 5 * MIB + 3])
def test_contents_written_in_odd_pieces(fs_root: Path, size: int) -> None:
    rng = random.Random(size)
    data = rng.randbytes(size)
    fd = os.open(fs_root / "f", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        pos = 0
        while pos < size:
            step = rng.choice([1, 7, 511, 4096, 4099, 70_000])
            pos += os.write(fd, data[pos : pos + step])
    finally:
        os.close(fd)
    assert _file_sha(fs_root / "f", 12345) == _sha(data)


def test_random_pwrites_match_a_model(fs_root: Path) -> None:
    rng = random.Random(2024)
    model = bytearray()
    f = fs_root / "f"
    fds = [os.open(f, os.O_RDWR | os.O_CREAT, 0o644), os.open(f, os.O_RDWR)]
    try:
        for step in range(400):
            fd = fds[step % 2]
            offset = rng.choice([0, 4095, 4096, 65535, 65536]) + rng.randrange(2 * MIB)
            piece = rng.randbytes(rng.choice([1, 100, 4096, 5000, 70_000]))
            assert os.pwrite(fd, piece, offset) == len(piece)
            if offset > len(model):
                model.extend(bytes(offset - len(model)))
            model[offset : offset + len(piece)] = piece
            if step % 25 == 0:
                at = rng.randrange(len(model))
                assert os.pread(fds[1 - step % 2], 9000, at) == bytes(model[at : at + 9000])
        assert os.fstat(fds[0]).st_size == len(model)
    finally:
        for fd in fds:
            os.close(fd)
    assert _file_sha(f, MIB) == _sha(bytes(model))


def test_shared_mmap_writes_reach_the_file(fs_root: Path) -> None:
    f = fs_root / "f"
    f.write_bytes(bytes(3 * 4096))
    with open(f, "r+b") as fh, mmap.mmap(fh.fileno(), 0) as m:
        m[4090:4100] = b"0123456789"
        m.flush()
        assert os.pread(fh.fileno(), 10, 4090) == b"0123456789"
    assert f.read_bytes()[4090:4100] == b"0123456789"
    with open(f, "rb") as ro, mmap.mmap(ro.fileno(), 0, access=mmap.ACCESS_READ) as view:
        assert view[4090:4100] == b"0123456789"
        assert len(view) == 3 * 4096


def test_copies_are_identical(fs_root: Path) -> None:
    data = random.Random(7).randbytes(3 * MIB + 11)
    (fs_root / "src").write_bytes(data)
    shutil.copyfile(fs_root / "src", fs_root / "copy")
    src = os.open(fs_root / "src", os.O_RDONLY)
    dst = os.open(fs_root / "copy2", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        copied = 0
        while copied < len(data):
            n = os.copy_file_range(src, dst, len(data) - copied)
            assert n > 0
            copied += n
    finally:
        os.close(src)
        os.close(dst)
    assert _file_sha(fs_root / "copy", MIB) == _sha(data)
    assert _file_sha(fs_root / "copy2", MIB) == _sha(data)
