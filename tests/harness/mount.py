"""A real netvol FUSE mount for tests, made and removed through volctl."""

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fuse_client import mounts
from tests.harness.server import StorageServer


class Mount:
    def __init__(self, server: StorageServer, volume: str, path: Path, *args: str) -> None:
        self.server = server
        self.volume = volume
        self.path = path
        self.args = args
        self.log_file = path.parent / f"{path.name}.mount.log"

    def start(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        result = self.server.volctl(
            "mount", self.volume, str(self.path), "--log-file", str(self.log_file), *self.args
        )
        if result.code != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(f"mount failed ({result.code}): {result.err}\n{log}")

    @property
    def pid(self) -> int:
        record = mounts.load(str(self.path.resolve()))
        assert record is not None, "no record of the mount process"
        return record.pid

    def stop(self) -> None:
        """Unmount; if that fails, end the mount process so nothing is left behind."""
        mountpoint = str(self.path.resolve())
        if not mounts.mounted_fstype(mountpoint):
            return
        record = mounts.load(mountpoint)
        result = self.server.volctl("umount", mountpoint)
        if result.code == 0:
            return
        if record is not None and mounts.alive(record.pid):
            os.kill(record.pid, signal.SIGKILL)
            mounts.wait_for_exit(record.pid, 10)
        # Lazily: a descriptor the failed test left open must not keep the mount.
        subprocess.run(["fusermount3", "-u", "-z", mountpoint], check=False, capture_output=True)
        raise RuntimeError(f"umount failed: {result.err}")


@contextmanager
def private_mount(server_dir: Path, volume: str, size: str, *mount_args: str) -> Iterator[Mount]:
    """A server and a mount of one volume, both the caller's own: free to be
    restarted or filled; everything is stopped and removed afterwards.
    `mount_args` go to volctl mount."""
    server = StorageServer(server_dir)
    # Not under pytest's 0700 temp root: other users must reach the mount.
    base = Path(tempfile.mkdtemp(prefix="netvol-mnt-"))
    base.chmod(0o755)
    mount = Mount(server, volume, base / volume, *mount_args)
    try:
        server.start()
        created = server.volctl("create", volume, "--size", size)
        assert created.code == 0, created.err
        mount.start()
        yield mount
    finally:
        try:
            mount.stop()
        finally:
            server.stop()
            shutil.rmtree(base, ignore_errors=True)
