"""A real CSI plugin process (`volctl csi` on a unix socket) for tests, its
clients, and a sweep that leaves no mount behind."""

import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc

from fuse_client import mounts
from proto.csi.v1 import csi_pb2 as csi
from proto.csi.v1 import csi_pb2_grpc
from tests.harness.processes import command, stop_process, wait_until
from tests.harness.server import StorageServer

AccessMode = csi.VolumeCapability.AccessMode


def mount_capability(
    mode: int = AccessMode.SINGLE_NODE_WRITER, flags: Sequence[str] = (), fs_type: str = ""
) -> csi.VolumeCapability:
    return csi.VolumeCapability(
        mount=csi.VolumeCapability.MountVolume(fs_type=fs_type, mount_flags=flags),
        access_mode=AccessMode(mode=mode),  # type: ignore[arg-type]
    )


def block_capability() -> csi.VolumeCapability:
    return csi.VolumeCapability(
        block=csi.VolumeCapability.BlockVolume(),
        access_mode=AccessMode(mode=AccessMode.SINGLE_NODE_WRITER),
    )


def code_of(call: Callable[..., object], *args: object) -> grpc.StatusCode:
    """The status call(*args) ends with (OK when it succeeds)."""
    try:
        call(*args)
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    return grpc.StatusCode.OK


class CsiPlugin:
    """One `volctl csi` process; `root` should be short, as unix socket paths are."""

    def __init__(
        self,
        server: StorageServer,
        root: Path,
        mode: str = "all",
        node_id: str = "node-1",
        prefix: Sequence[str] = (),
    ) -> None:
        self.server = server
        # Runs the plugin elsewhere, e.g. nsenter into a host's namespaces.
        self.prefix = tuple(prefix)
        self.root = root
        self.mode = mode
        self.node_id = node_id
        self.socket = root / "csi.sock"
        self.state_dir = root / "state"
        self.log_path = root / "plugin.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._channel: grpc.Channel | None = None

    def start(self, *extra: str) -> None:
        args = [
            *self.prefix,
            command("volctl"),
            "csi",
            f"--endpoint=unix://{self.socket}",
            f"--mode={self.mode}",
            f"--node-id={self.node_id}",
            f"--state-dir={self.state_dir}",
            *extra,
        ]
        self.root.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(args, env=self.server.env(), stdout=log, stderr=log)
        self._channel = grpc.insecure_channel(f"unix://{self.socket}")
        wait_until(self._serving, 30, f"CSI plugin on {self.socket}")

    def _serving(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"CSI plugin exited early:\n{self.log_path.read_text()}")
        try:
            self.identity.GetPluginInfo(csi.GetPluginInfoRequest(), timeout=1)
        except grpc.RpcError:
            return False
        return True

    def _live_channel(self) -> grpc.Channel:
        assert self._channel is not None, "the plugin is not started"
        return self._channel

    @property
    def identity(self) -> csi_pb2_grpc.IdentityStub:
        return csi_pb2_grpc.IdentityStub(self._live_channel())

    @property
    def controller(self) -> csi_pb2_grpc.ControllerStub:
        return csi_pb2_grpc.ControllerStub(self._live_channel())

    @property
    def node(self) -> csi_pb2_grpc.NodeStub:
        return csi_pb2_grpc.NodeStub(self._live_channel())

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc, sig)
        return None if proc is None else proc.returncode


def sweep_mounts(root: Path) -> None:
    """Remove every netvol mount below `root` and end its process, whatever a
    failed test left: binds first (newest first), then the FUSE mounts."""
    for _ in range(16):
        found = [p for p in _mountpoints_below(root) if mounts.mounted_fstype(p) == mounts.FSTYPE]
        if not found:
            return
        path = found[-1]
        record = mounts.load(path)
        result = subprocess.run(["umount", path], capture_output=True, check=False)
        if result.returncode != 0 and record is not None and mounts.alive(record.pid):
            os.kill(record.pid, signal.SIGKILL)
            mounts.wait_for_exit(record.pid, 10)
            subprocess.run(["umount", path], capture_output=True, check=False)
    raise RuntimeError(f"mounts left below {root}: {_mountpoints_below(root)}")


def _mountpoints_below(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p.startswith(prefix)]
