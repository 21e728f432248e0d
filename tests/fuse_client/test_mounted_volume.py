"""A mounted volume is not deleted: each mount keeps a lock session open while
it runs (a new one if its lease ran out while it was cut off), and the server
refuses to delete a volume with a live session."""

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage_server import sessions
from storage_server.db import Database, make_engine
from storage_server.volumes import VolumeKey, VolumeStore
from tests.harness.mount import Mount, private_mount
from tests.harness.processes import wait_until
from tests.harness.server import short_sessions

LEASE = 1.0
SETTLE_SECONDS = 10.0


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Mount]:
    args = short_sessions(LEASE, 60)
    with private_mount(tmp_path / "server", "data", "1G", server_args=args) as made:
        yield made


def _client(mount: Mount) -> str:
    return f"{socket.gethostname()}:{mount.path.resolve()}"


def test_a_mounted_volume_is_not_removed(mount: Mount) -> None:
    (mount.path / "f").write_bytes(b"kept")
    refused = mount.server.volctl("rm", "data")
    assert refused.code == 2
    assert "is mounted" in refused.err and _client(mount) in refused.err
    assert (mount.path / "f").read_bytes() == b"kept"

    mount.stop()
    assert mount.server.volctl("rm", "data").code == 0
    assert mount.server.volctl("info", "data").code == 3


def test_a_mount_back_from_a_lapse_shows_as_mounted_again(mount: Mount) -> None:
    db = Database(make_engine(mount.server.resolved_database_url))
    try:
        volume_id = VolumeStore(db, mount.server.blob_dir, 1 << 40).get(VolumeKey(name="data")).id

        def mounted() -> list[str]:
            with db.read() as session:
                return sessions.mounted_by(session, volume_id)

        assert mounted() == [_client(mount)]
        pid = mount.pid  # not while it is stopped: that resolves the mount's path
        os.kill(pid, signal.SIGSTOP)
        try:
            wait_until(lambda: not mounted(), SETTLE_SECONDS, "the stopped mount's lease to end")
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_until(lambda: mounted() == [_client(mount)], SETTLE_SECONDS, "a new session")
        assert mount.server.volctl("rm", "data").code == 2
    finally:
        db.close()
