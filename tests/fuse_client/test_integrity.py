"""Data written through a mount comes back bit-exact: after remounting, after the
server is killed with -9, and while the server restarts under a writer."""

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.mount import Mount, private_mount

SIZES = [0, 1, 4095, 4096, 4097, 65_537, 1_048_577, 9 * 2**20 + 3, 33 * 2**20]


@pytest.fixture
def own_mount(tmp_path: Path) -> Iterator[Mount]:
    """A server and a mount of this test's own, free to be restarted."""
    with private_mount(tmp_path / "server", "data", "10Gi") as mount:
        yield mount


def _write_files(root: Path) -> dict[str, str]:
    sums = {}
    for size in SIZES:
        data = os.urandom(size)
        path = root / f"file-{size}"
        path.write_bytes(data)
        sums[path.name] = hashlib.sha256(data).hexdigest()
    return sums


def _checksums(root: Path, names: list[str]) -> dict[str, str]:
    return {name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in names}


def test_files_survive_remount_and_server_kill_9(own_mount: Mount) -> None:
    sums = _write_files(own_mount.path)
    assert _checksums(own_mount.path, list(sums)) == sums

    own_mount.stop()
    own_mount.start()
    assert _checksums(own_mount.path, list(sums)) == sums

    own_mount.server.kill9()
    own_mount.server.start()
    # The same mount carries on against the restarted server...
    assert _checksums(own_mount.path, list(sums)) == sums
    # ...and a fresh mount sees the same bytes.
    own_mount.stop()
    own_mount.start()
    assert _checksums(own_mount.path, list(sums)) == sums
    assert sorted(os.listdir(own_mount.path)) == sorted(sums)


# Runs in its own process: a process holding files open on the mount must not
# be the one that forks the server (a forked child's close of an inherited fd
# is a FUSE flush, which waits for that very server).
WRITER = """
import hashlib, os, signal, sys
stop = False
def halt(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, halt)
index = 0
while not stop:
    data = os.urandom(256 * 1024 + index)
    name = f"w-{index:05d}"
    with open(os.path.join(sys.argv[1], name), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    # fsync and close both returned: these bytes are promised.
    print(name, hashlib.sha256(data).hexdigest(), flush=True)
    index += 1
"""


def test_writes_through_a_server_restart_lose_nothing_acknowledged(own_mount: Mount) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(own_mount.path)], stdout=subprocess.PIPE, text=True
    )
    acknowledged: dict[str, str] = {}

    def collect() -> None:
        assert writer.stdout is not None
        for line in writer.stdout:
            name, digest = line.split()
            acknowledged[name] = digest

    reader = threading.Thread(target=collect)
    reader.start()
    try:
        time.sleep(1.5)
        before_kill = len(acknowledged)
        own_mount.server.kill9()
        time.sleep(0.5)  # an fsync that returned before the kill prints its line
        while_down = len(acknowledged)
        time.sleep(1.5)
        # The writer waits in I/O meanwhile: it neither fails nor gets answers.
        assert len(acknowledged) == while_down
        assert writer.poll() is None
        own_mount.server.start()
        time.sleep(2)
    finally:
        writer.send_signal(signal.SIGTERM)
        code = writer.wait(120)
        reader.join(10)
    assert code == 0, "the writer saw an error"
    assert before_kill > 0
    assert len(acknowledged) > before_kill, "no write completed after the restart"
    assert _checksums(own_mount.path, list(acknowledged)) == acknowledged
    own_mount.stop()
    own_mount.start()
    assert _checksums(own_mount.path, list(acknowledged)) == acknowledged
