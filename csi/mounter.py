"""Mounts on this host: a volume's FUSE mount at its staging path, and bind mounts
of that into target paths.

The FUSE mount is started exactly as `volctl mount NAME DIR` starts one (the
same command, run with the plugin's client settings in its environment): a
process in a session of its own, recorded by fuse_client.mounts, which
outlives the plugin. Everything that touches a mount has a time bound, so a
hung FUSE mount cannot hang the plugin; and nothing here unmounts lazily, which
would let writes go to the node's own disk.
"""

import enum
import errno
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc

from csi.errors import CsiError, precondition
from fuse_client import mounts
from storage_server.client import ClientSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

COMMAND_SECONDS = 30.0
# volctl mount itself gives up after 30 s without a mount.
MOUNT_SECONDS = 60.0
PROBE_SECONDS = 10.0
# After an unmount the process flushes what it buffers, then exits.
EXIT_SECONDS = 60.0
# A bind stacked on a dead one that could not be unmounted adds a layer.
MAX_STACK = 8
DEAD_ERRNOS = (errno.ENOTCONN, errno.ECONNABORTED)
# volctl's exit codes (volctl.main) for the failures a mount can meet.
MOUNT_EXIT_STATUS = {
    2: grpc.StatusCode.FAILED_PRECONDITION,
    3: grpc.StatusCode.NOT_FOUND,
    5: grpc.StatusCode.UNAUTHENTICATED,
    6: grpc.StatusCode.UNAVAILABLE,
}


class Health(enum.Enum):
    LIVE = "live"
    ABSENT = "not mounted"
    DEAD = "dead"
    HUNG = "not answering"


@dataclass(frozen=True)
class Probe:
    health: Health
    detail: str = ""
    stats: os.statvfs_result | None = None


def bounded(call: Callable[[], T], seconds: float, what: str) -> T:
    """call() with a time bound. A thread stuck in a hung FUSE call cannot be
    stopped, so the call runs in a daemon thread that is left behind if it hangs."""
    outcome: Future[T] = Future()

    def run() -> None:
        try:
            outcome.set_result(call())
        except BaseException as exc:
            outcome.set_exception(exc)

    threading.Thread(target=run, name=f"bounded {what}", daemon=True).start()
    try:
        return outcome.result(timeout=seconds)
    except FutureTimeout:
        raise TimeoutError(f"{what} did not finish within {seconds:.0f}s") from None


def probe(path: str) -> Probe:
    """Whether the netvol mount at `path` answers. statfs always reaches the
    mount process (the kernel caches no answer to it), so a dead one shows."""
    if not mounts.is_netvol_mount(path):
        return Probe(Health.ABSENT, f"nothing is mounted at {path}")
    try:
        stats = bounded(lambda: os.statvfs(path), PROBE_SECONDS, f"statfs of {path}")
    except TimeoutError as exc:
        return Probe(Health.HUNG, f"the mount at {path} does not answer: {exc}")
    except OSError as exc:
        if exc.errno not in DEAD_ERRNOS:
            raise
        record = mounts.load(path)
        if record is not None and not mounts.alive(record.pid):
            return Probe(Health.DEAD, f"the mount process {record.pid} for {path} has ended")
        return Probe(Health.DEAD, f"the mount at {path} is dead: {exc.strerror}")
    return Probe(Health.LIVE, stats=stats)


def _run(
    argv: Sequence[str], seconds: float = COMMAND_SECONDS, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=seconds, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise TimeoutError(f"{' '.join(argv)} did not finish in {seconds:.0f}s") from exc


def _command(argv: Sequence[str], code: grpc.StatusCode = grpc.StatusCode.INTERNAL) -> None:
    result = _run(argv)
    if result.returncode != 0:
        raise CsiError(code, f"{' '.join(argv)}: {result.stderr.strip() or 'failed'}")


def _client_env(client: ClientSettings) -> dict[str, str]:
    """The environment that gives the mount process the plugin's client settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETVOL_")}
    env.update(
        NETVOL_SERVER=client.server,
        NETVOL_TOKEN=client.resolved_token(),
        NETVOL_TIMEOUT=str(client.timeout),
    )
    if client.tls_ca:
        env["NETVOL_TLS_CA"] = str(client.tls_ca)
    return env


def mount_volume(
    name: str, staging: str, read_only: bool, client: ClientSettings, log_file: Path
) -> None:
    os.makedirs(staging, exist_ok=True)
    argv = [sys.executable, "-m", "volctl", "mount", name, staging, "--log-file", str(log_file)]
    if read_only:
        argv.append("--read-only")
    result = _run(argv, MOUNT_SECONDS, _client_env(client))
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["the mount process ended"]
        code = MOUNT_EXIT_STATUS.get(result.returncode, grpc.StatusCode.INTERNAL)
        raise CsiError(code, f"mounting volume {name}: {lines[-1].removeprefix('volctl: ')}")
    log.info("mounted volume %s at %s", name, staging)


def unmount_volume(staging: str) -> None:
    """Unmount the FUSE mount at `staging` and let its process finish flushing."""
    record = mounts.load(staging)
    try:
        bounded(lambda: mounts.unmount(staging), COMMAND_SECONDS, f"unmount of {staging}")
    except OSError as exc:
        raise precondition(f"cannot unmount {staging}: {exc}") from exc
    if record is not None and not mounts.wait_for_exit(record.pid, EXIT_SECONDS):
        log.warning("mount process %d of %s has not exited", record.pid, staging)


def bind(staging: str, target: str, read_only: bool, flags: Sequence[str]) -> None:
    """Bind the staging mount at `target` with the given per-mount flags."""
    if mounts.mounted_fstype(target) is None:
        os.makedirs(target, mode=0o750, exist_ok=True)
    _command(["mount", "--bind", staging, target])
    options = ["ro"] if read_only else []
    options += [f for f in flags if f != "ro"]
    if not options:
        return
    try:
        _command(["mount", "-o", ",".join(["remount", "bind", *options]), target])
    except CsiError:
        # Never leave a read-write bind where a read-only one was asked for.
        _command(["umount", target])
        raise


def unbind(target: str) -> None:
    _command(["umount", target], grpc.StatusCode.FAILED_PRECONDITION)


def unpublish(target: str) -> None:
    """Unmount every netvol bind at `target`, then remove the directory."""
    for _ in range(MAX_STACK):
        if mounts.mounted_fstype(target) != mounts.FSTYPE:
            break
        unbind(target)
    fstype = mounts.mounted_fstype(target)
    if fstype is not None:
        raise precondition(f"{target} has a {fstype} mount, not netvol's")
    try:
        os.rmdir(target)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise precondition(f"cannot remove {target}: {exc.strerror}") from exc
