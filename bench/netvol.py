"""netvol itself: a private storage server, one volume, mounted through volctl.

`volctl mount VOLUME MOUNTPOINT` returns once the mount is ready and `volctl umount
MOUNTPOINT` takes it down; dropping caches is an unmount and a fresh mount.
"""

import os
import subprocess
from pathlib import Path

from bench import procs
from bench.targets import Target, TargetUnavailable

VOLUME = "bench"
START_TIMEOUT = 30.0
MOUNT_TIMEOUT = 60.0


class NetvolTarget(Target):
    name = "netvol"

    def __init__(self, workdir: Path, volume_size: int) -> None:
        super().__init__(workdir)
        self._volume_size = volume_size

    def setup(self) -> Path:
        server, volctl = procs.executable("netvol-server"), procs.executable("volctl")
        if server is None or volctl is None:
            raise TargetUnavailable("netvol-server or volctl not installed (scripts/bootstrap.sh)")
        self._volctl_bin = volctl

        self._dir = self._tempdir()
        data_dir = self._dir / "data"
        self._mountpoint = self._dir / "mnt"
        self._mountpoint.mkdir()
        port = procs.free_port()
        self._env = {
            **os.environ,
            "NETVOL_SERVER": f"127.0.0.1:{port}",
            "NETVOL_TOKEN_FILE": str(data_dir / "token"),
        }
        server_log = self._dir / "server.log"
        with server_log.open("wb") as log_out:
            proc = subprocess.Popen(
                [server, "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{port}"],
                stdin=subprocess.DEVNULL,
                stdout=log_out,
                stderr=log_out,
            )
        self._cleanup.callback(procs.stop, proc)
        # The server writes its token before it listens; wait for both anyway.
        procs.wait_until(
            lambda: procs.port_open(port) and (data_dir / "token").exists(),
            "netvol-server",
            START_TIMEOUT,
            proc,
            server_log,
        )
        self._volctl("create", VOLUME, "--size", f"{-(-self._volume_size // 2**30)}Gi")
        self._cleanup.callback(self._unmount)
        self._mount()
        return self._mountpoint

    def _volctl(self, *args: str, timeout: float = START_TIMEOUT) -> None:
        done = subprocess.run(
            [self._volctl_bin, *args],
            env=self._env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"volctl {' '.join(args)}: {done.stderr.strip()}")

    def _mount(self) -> None:
        self._volctl("mount", VOLUME, str(self._mountpoint), timeout=MOUNT_TIMEOUT)
        if not procs.is_mounted(self._mountpoint):
            raise RuntimeError(f"volctl mount returned but {self._mountpoint} is not mounted")

    def _unmount(self) -> None:
        if not procs.is_mounted(self._mountpoint):
            return
        try:
            self._volctl("umount", str(self._mountpoint), timeout=MOUNT_TIMEOUT)
        finally:
            # Whatever volctl did, the mount must not outlive the run.
            procs.unmount(self._mountpoint)

    def drop_caches(self) -> None:
        self._unmount()
        self._mount()

    def describe(self) -> str:
        return f"netvol FUSE mount of volume {VOLUME!r}, netvol-server on 127.0.0.1"
