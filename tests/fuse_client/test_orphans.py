"""Files unlinked while open (orphans) across mounts: a mount that starts removes
the orphans of mounts that are gone, and never those of a mount that still
lives, however old they are, nor those of one that was cut off for a while."""

import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fuse_client import mounts
from fuse_client.orphans import SESSION_NAME
from proto.netvol.v1 import filesystem_pb2 as pb
from proto.netvol.v1 import filesystem_pb2_grpc
from storage_server.client import connect
from tests.harness.mount import Mount
from tests.harness.server import StorageServer, short_sessions
from tests.harness.volume import orphan_names

LEASE = 1.0
# Long enough for a mount to start and sweep after a lease has run out.
ORPHAN_GRACE = 8.0
VOLUME = "orphans"
# Far more than a heartbeat's round takes here.
SETTLE_SECONDS = 10.0


class Mounts:
    """A server with a short lock lease and any number of mounts of one volume."""

    def __init__(self, server: StorageServer) -> None:
        self.server = server
        # Not under pytest's 0700 temp root: other users must reach the mounts.
        self.base = Path(tempfile.mkdtemp(prefix="netvol-mnt-"))
        self.base.chmod(0o755)
        self.made: list[Mount] = []

    def mount(self, name: str) -> Mount:
        made = Mount(self.server, VOLUME, self.base / name)
        self.made.append(made)
        made.start()
        return made

    def orphans(self) -> list[str]:
        return orphan_names(self.server, VOLUME)

    def stop(self) -> None:
        for made in reversed(self.made):
            made.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Mounts]:
    server = StorageServer(tmp_path / "server", extra_args=short_sessions(LEASE, ORPHAN_GRACE))
    made = Mounts(server)
    try:
        server.start()
        created = server.volctl("create", VOLUME, "--size", "1G")
        assert created.code == 0, created.err
        yield made
    finally:
        try:
            made.stop()
        finally:
            server.stop()


def _open_unlinked(mount: Mount, name: str, data: bytes) -> int:
    """A descriptor of a file whose only name is gone."""
    path = mount.path / name
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    os.unlink(path)
    return fd


def _kill(mount: Mount) -> None:
    pid = mount.pid
    os.kill(pid, signal.SIGKILL)
    assert mounts.wait_for_exit(pid, 10)
    subprocess.run(["umount", "-l", str(mount.path)], check=False, capture_output=True)


def _session_of(orphan: str) -> str:
    found = SESSION_NAME.fullmatch(orphan)
    assert found, f"orphan {orphan} names no session"
    return found.group(1)


def test_a_starting_mount_removes_the_orphans_of_dead_mounts_only(cluster: Mounts) -> None:
    living, dying = cluster.mount("living"), cluster.mount("dying")
    kept = _open_unlinked(living, "kept", b"still needed")
    try:
        left = _open_unlinked(dying, "left", b"nobody reads this")
        assert len(cluster.orphans()) == 2
        _kill(dying)
        with pytest.raises(OSError) as closing:
            os.close(left)  # the descriptor goes, but its mount is dead
        assert closing.value.errno == errno.ENOTCONN
        # The dead mount's session runs out and its grace is over; the living renews.
        time.sleep(LEASE + ORPHAN_GRACE + 1.0)
        (ours,) = [o for o in cluster.orphans() if o.startswith(f"{os.fstat(kept).st_ino}-")]
        cluster.mount("starting")
        assert cluster.orphans() == [ours]
        assert os.pread(kept, 100, 0) == b"still needed"
    finally:
        os.close(kept)
    deadline = time.monotonic() + SETTLE_SECONDS
    while cluster.orphans() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cluster.orphans() == []


def test_a_mount_whose_session_was_lost_keeps_its_orphans(cluster: Mounts) -> None:
    living = cluster.mount("living")
    fd = _open_unlinked(living, "kept", b"still needed")
    try:
        (before,) = cluster.orphans()
        # As if the mount had been cut off for longer than the lease.
        volume = cluster.server.filesystem().OpenVolume(pb.OpenVolumeRequest(name=VOLUME))
        locks = filesystem_pb2_grpc.LocksStub(connect(cluster.server.client_settings()))
        locks.CloseLockSession(
            pb.CloseLockSessionRequest(volume_id=volume.volume_id, session_id=_session_of(before))
        )
        deadline = time.monotonic() + SETTLE_SECONDS
        while cluster.orphans() == [before] and time.monotonic() < deadline:
            time.sleep(0.05)
        (after,) = cluster.orphans()
        assert _session_of(after) != _session_of(before)
        cluster.mount("starting")
        assert cluster.orphans() == [after]
        assert os.pread(fd, 100, 0) == b"still needed"
    finally:
        os.close(fd)


# Writes a file, keeps it open as its name goes, and reads it when told to.
_HOLDER = """
import os, sys
with open(sys.argv[1], "wb") as f:
    f.write(b"still needed")
fd = os.open(sys.argv[1], os.O_RDONLY)
os.unlink(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
sys.stdout.buffer.write(os.pread(fd, 100, 0))
"""


def test_a_mount_cut_off_for_less_than_the_grace_keeps_its_orphans(cluster: Mounts) -> None:
    cut_off = cluster.mount("cut-off")
    # Held by a process of its own: this one starts processes while the mount
    # is stopped, and a child closing an inherited descriptor of it would wait.
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, cut_off.path / "kept"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"ready\n"
        (before,) = cluster.orphans()
        pid = cut_off.pid  # (finding it looks at the mount point)
        os.kill(pid, signal.SIGSTOP)  # silent: its lease runs out
        try:
            time.sleep(2.5 * LEASE)
            cluster.mount("starting")
            assert cluster.orphans() == [before]
        finally:
            os.kill(pid, signal.SIGCONT)
        deadline = time.monotonic() + SETTLE_SECONDS
        while cluster.orphans() == [before] and time.monotonic() < deadline:
            time.sleep(0.05)
        (after,) = cluster.orphans()  # moved to the mount's new session
        assert _session_of(after) != _session_of(before)
        assert holder.communicate(b"read\n", timeout=30)[0] == b"still needed"
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=30)
