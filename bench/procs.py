"""Helpers the targets share: finding tools, waiting for servers, stopping and unmounting."""

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def executable(name: str) -> str | None:
    """The venv's own script first (netvol-server, volctl), then PATH, then sbin."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    # sshd lives in /usr/sbin, which a non-login root shell may not have on PATH.
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_until(
    ready: Callable[[], bool],
    what: str,
    timeout: float,
    proc: "subprocess.Popen[bytes] | None" = None,
    log_file: Path | None = None,
) -> None:
    """Poll `ready`; fail early, with the process's log, when `proc` has died."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.returncode}{_tail(log_file)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready after {timeout:.0f} s{_tail(log_file)}")
        time.sleep(0.05)


def _tail(log_file: Path | None) -> str:
    if log_file is None or not log_file.exists():
        return ""
    lines = log_file.read_text(errors="replace").strip().splitlines()
    return f": {' | '.join(lines[-3:])}" if lines else ""


def stop(proc: "subprocess.Popen[bytes]", timeout: float = 10) -> None:
    """Terminate one process we started, by its PID; kill it if it does not go."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("pid %d ignored SIGTERM; killing it", proc.pid)
        proc.kill()
        proc.wait(timeout)


def children(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # it exited while we looked
        # The command name may hold spaces and parentheses; the parent PID follows it.
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _mount_points() -> list[str]:
    with open("/proc/self/mounts") as table:
        return [line.split()[1].replace("\\040", " ") for line in table]


def is_mounted(path: Path) -> bool:
    """From the kernel's table: os.path.ismount misses bind mounts and dead FUSE mounts."""
    return os.path.realpath(path) in _mount_points()


def mounts_under(path: Path) -> list[str]:
    prefix = os.path.realpath(path)
    return [p for p in _mount_points() if p == prefix or p.startswith(prefix + "/")]


def unmount(path: Path, attempts: int = 10) -> None:
    """Unmount, retrying while the mount is busy; never lazily.

    A lazy unmount would hide a leaked mount instead of reporting it. fusermount3
    serves FUSE mounts without privilege; umount, as root, also serves other kinds.
    """
    fuse = executable("fusermount3") or executable("fusermount")
    commands = ([[fuse, "-u", str(path)]] if fuse else []) + [["umount", str(path)]]
    error = ""
    for _ in range(attempts):
        for command in commands:
            if not is_mounted(path):
                return
            done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
            error = done.stderr.strip() or error
        time.sleep(0.2)
    if is_mounted(path):
        raise RuntimeError(f"cannot unmount {path}: {error or 'still mounted'}")


def remove_tree(path: Path) -> None:
    """Delete a temp dir, but never walk into a mount that is still there."""
    left = mounts_under(path)
    if left:
        raise RuntimeError(f"not deleting {path}: still mounted at {', '.join(left)}")
    shutil.rmtree(path, ignore_errors=True)
