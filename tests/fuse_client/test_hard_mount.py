"""--io-timeout bounds how long I/O waits for a server that does not answer,
and the mount works again once the server is back."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fuse_client.remote import ATTEMPT_SECONDS
from tests.harness.mount import private_mount


def test_io_timeout_bounds_the_wait_and_the_mount_recovers(tmp_path: Path) -> None:
    with private_mount(tmp_path / "server", "data", "1Gi", "--io-timeout", "3") as mount:
        (mount.path / "f").write_bytes(b"kept")
        mount.server.stop()
        started = time.monotonic()
        with pytest.raises(OSError) as failed:
            os.stat(mount.path / "never-looked-up")
        waited = time.monotonic() - started
        assert failed.value.errno == errno.EIO
        # Not one whole attempt's deadline: the bound holds while nothing answers.
        assert waited < ATTEMPT_SECONDS / 2
        mount.server.start()
        assert (mount.path / "f").read_bytes() == b"kept"


def _stat_in_background(path: Path) -> "subprocess.Popen[bytes]":
    return subprocess.Popen([sys.executable, "-c", "import os, sys; os.stat(sys.argv[1])", path])


def test_a_process_waiting_for_the_server_can_be_killed(tmp_path: Path) -> None:
    """Waits have no bound (a hard mount), yet kill -9 ends a process in one, as
    on NFS; other processes go on waiting, and the mount works once the server
    is back."""
    with private_mount(tmp_path / "server", "data", "1Gi") as mount:
        (mount.path / "f").write_bytes(b"kept")
        mount.server.stop()
        killed = _stat_in_background(mount.path / "never-looked-up")
        time.sleep(1.0)
        # Started second: the kernel may hold it back until the first one's
        # lookup in the same directory is over, and that wait cannot be killed.
        waiting = _stat_in_background(mount.path / "nor-this")
        try:
            time.sleep(1.0)
            assert killed.poll() is None and waiting.poll() is None  # both wait
            killed.kill()
            assert killed.wait(timeout=10) == -signal.SIGKILL
            waiting.send_signal(signal.SIGSTOP)  # not fatal: the wait goes on
            waiting.send_signal(signal.SIGCONT)
            time.sleep(1.0)
            assert waiting.poll() is None
        finally:
            mount.server.start()
            # The survivor's stat fails as a stat of a missing name does.
            assert waiting.wait(timeout=60) == 1
            killed.wait(timeout=60)
        assert (mount.path / "f").read_bytes() == b"kept"
