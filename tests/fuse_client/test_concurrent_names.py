"""Threads of one mount creating and renaming in one directory at once: the
mount's kept listing follows each change only when the server's times place it
right after the listing (replies can come back in any order), so what it lists
and answers by name is exactly what the threads left, within the bound and past it."""

import os
import threading
import time
from pathlib import Path

from fuse_client.run import MountOptions

THREADS = 4
FILES = 60
# The mount's attribute-cache bound: past it, the kept listing is checked with the server.
ATTR_TTL = MountOptions.attr_ttl


def _work(directory: Path, thread: int, errors: list[BaseException]) -> None:
    try:
        for i in range(FILES):
            name = directory / f"t{thread}-{i:03d}"
            name.write_bytes(b"x")
            if i % 3 == 1:
                name.rename(directory / f"t{thread}-{i:03d}-moved")
            elif i % 3 == 2:
                # Replace the file before, as a save through a temporary file does.
                temporary = directory / f".t{thread}-{i:03d}.tmp"
                temporary.write_bytes(b"y")
                temporary.rename(directory / f"t{thread}-{i - 2:03d}")
    except BaseException as exc:  # reported by the test, not lost with the thread
        errors.append(exc)


def _left(thread: int) -> set[str]:
    names = set()
    for i in range(FILES):
        if i % 3 == 1:
            names.add(f"t{thread}-{i:03d}-moved")
        else:
            names.add(f"t{thread}-{i:03d}")
    return names


def test_concurrent_creates_and_renames_list_exactly(fs_root: Path) -> None:
    directory = fs_root / "d"
    directory.mkdir()
    assert os.listdir(directory) == []  # a kept listing for the threads to change
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_work, args=(directory, k, errors)) for k in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    expected = set().union(*(_left(k) for k in range(THREADS)))
    for _ in range(2):
        assert sorted(os.listdir(directory)) == sorted(expected)
        assert all((directory / name).exists() for name in expected)
        assert not (directory / "t0-001").exists() and not (directory / ".t0-002.tmp").exists()
        time.sleep(ATTR_TTL + 0.2)
