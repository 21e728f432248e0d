"""Calls from many threads at once keep every counter right (row locks on
PostgreSQL, the write lock on SQLite)."""

import stat
from concurrent.futures import ThreadPoolExecutor

from tests.harness.volume import Volume

THREADS = 8
EACH = 10
PIECE = 4096


def test_concurrent_writes_and_directories(vol: Volume) -> None:
    file = vol.mknod("f")
    shared = vol.mkdir("shared")

    def work(thread: int) -> None:
        for i in range(EACH):
            n = thread * EACH + i
            vol.write(file.ino, n * PIECE, bytes([thread]) * PIECE)
            vol.mkdir(f"d{n}", parent=shared.ino)
            vol.link(file.ino, f"l{n}", parent=shared.ino)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(work, range(THREADS)))

    total = THREADS * EACH
    attr = vol.getattr(file.ino)
    assert (attr.size, attr.allocated, attr.data_version) == (total * PIECE, total * PIECE, total)
    assert attr.nlink == total + 1
    assert vol.used() == total * PIECE
    assert vol.getattr(shared.ino).nlink == 2 + total
    data = vol.read(file.ino)
    assert all(data[n * PIECE] == n // EACH for n in range(total))

    def undo(thread: int) -> None:
        for i in range(EACH):
            n = thread * EACH + i
            vol.unlink(f"d{n}", parent=shared.ino, directory=True)
            vol.unlink(f"l{n}", parent=shared.ino)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(undo, range(THREADS)))
    assert vol.getattr(shared.ino).nlink == 2
    assert vol.getattr(file.ino).nlink == 1
    assert stat.S_ISREG(vol.getattr(file.ino).mode)
