"""--io-timeout bounds how long I/O waits for a server that does not answer,
and the mount works again once the server is back."""

import errno
import os
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
