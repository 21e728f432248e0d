"""A volume never holds more than its size: ENOSPC at capacity, and room again
after volctl resize, on a mounted volume."""

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.mount import Mount, private_mount

MiB = 2**20


@pytest.fixture
def small_mount(tmp_path: Path) -> Iterator[Mount]:
    with private_mount(tmp_path / "server", "small", "20Mi") as mount:
        yield mount


def _fill(path: Path, total: int) -> int:
    """Write up to `total` bytes; the bytes written before ENOSPC, which must come."""
    written = 0
    chunk = os.urandom(MiB)
    # The error may come from a write or from close: both are inside the block.
    with pytest.raises(OSError) as info, path.open("wb") as f:
        while written < total:
            f.write(chunk)
            written += len(chunk)
    assert info.value.errno == errno.ENOSPC
    return written


def test_enospc_at_capacity_then_resize(small_mount: Mount) -> None:
    root = small_mount.path
    first = os.urandom(12 * MiB)
    (root / "first").write_bytes(first)

    _fill(root / "second", 30 * MiB)

    # The file system is consistent: the first file is intact, usage within size.
    assert (root / "first").read_bytes() == first
    second_size = (root / "second").stat().st_size
    assert second_size <= 8 * MiB
    held = len(first) + second_size
    stats = os.statvfs(root)
    used = (stats.f_blocks - stats.f_bfree) * stats.f_frsize
    assert held <= used <= 20 * MiB
    info = small_mount.server.volctl("-o", "json", "info", "small").json()
    assert held <= info["used_bytes"] <= info["size_bytes"] == 20 * MiB

    # Deleting makes room again.
    (root / "second").unlink()
    (root / "third").write_bytes(os.urandom(6 * MiB))

    assert small_mount.server.volctl("resize", "small", "--size", "64Mi").code == 0
    bigger = os.urandom(30 * MiB)
    (root / "after-resize").write_bytes(bigger)
    assert (root / "after-resize").read_bytes() == bigger
    assert os.statvfs(root).f_blocks * os.statvfs(root).f_frsize == 64 * MiB
