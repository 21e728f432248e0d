"""Mount processes on this host: starting one, finding it again, ending it.

Each mount is its own process (the kernel's FUSE connection lives as long as it
does), recorded in a small state file so that volctl umount, and a restarted
CSI node plugin, can find its PID again.
"""

import contextlib
import json
import os
import subprocess
import time
from dataclasses import asdict, dataclass
from hashlib import sha256
from pathlib import Path

FSTYPE = "fuse.netvol"


def state_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/run/netvol/mounts")
    runtime = os.environ.get("XDG_RUNTIME_DIR") or str(Path.home() / ".local" / "state")
    return Path(runtime) / "netvol" / "mounts"


@dataclass(frozen=True)
class MountRecord:
    mountpoint: str
    volume: str
    pid: int
    log_file: str


def _record_path(mountpoint: str) -> Path:
    return state_dir() / (sha256(mountpoint.encode()).hexdigest()[:16] + ".json")


def save(record: MountRecord) -> None:
    path = _record_path(record.mountpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record)))
    tmp.replace(path)


def load(mountpoint: str) -> MountRecord | None:
    try:
        return MountRecord(**json.loads(_record_path(mountpoint).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def forget(mountpoint: str) -> None:
    _record_path(mountpoint).unlink(missing_ok=True)


def _unescape(field: str) -> str:
    # /proc/self/mountinfo escapes space, tab, newline and backslash as octal.
    return field.encode().decode("unicode_escape").encode("latin-1").decode()


def mounted_fstype(mountpoint: str) -> str | None:
    """The file system type mounted exactly at `mountpoint`, if any."""
    found = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            separator = fields.index("-")
            if _unescape(fields[4]) == mountpoint:
                found = fields[separator + 1]  # the last mount there is the visible one
    return found


def is_netvol_mount(mountpoint: str) -> bool:
    return mounted_fstype(mountpoint) == FSTYPE


def alive(pid: int) -> bool:
    """Whether `pid` still runs. A zombie does not: it has exited and let go of
    everything, and only waits for its parent, for a detached mount whatever
    adopted it (init, or a container's first process that may never reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # reaped since
    # The state follows the command name, which may hold spaces and parentheses.
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_until_mounted(proc: subprocess.Popen[bytes], mountpoint: str, timeout: float) -> bool:
    """True once `mountpoint` is a netvol mount; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if is_netvol_mount(mountpoint):
            return True
        time.sleep(0.05)
    return False


def unmount(mountpoint: str) -> None:
    """Detach the mount (which makes its process flush and exit); OSError says why not."""
    proc = subprocess.run(
        ["fusermount3", "-u", mountpoint], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        message = proc.stderr.strip().removeprefix("fusermount3: ") or "unmount failed"
        raise OSError(message)


def wait_for_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            _reap(pid)
            return True
        time.sleep(0.05)
    return False


def _reap(pid: int) -> None:
    """A detached mount process that this process adopted (as a container's
    first process does) stays a zombie until reaped here."""
    with contextlib.suppress(ChildProcessError):  # not ours: its parent reaps it
        os.waitpid(pid, os.WNOHANG)
