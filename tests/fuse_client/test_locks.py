"""Advisory locks through one mount: more processes waiting at once than libfuse
has worker threads by default, and POSIX's rule that closing any descriptor of
a file drops the process's record locks on it. (Locks between nodes are the
subject of tests/multinode.)"""

import fcntl
import subprocess
import sys
import time
from pathlib import Path

# libfuse serves requests with at most 10 threads unless told otherwise, and each
# waiting lock holds one.
WAITERS = 24

WAIT_FOR_FLOCK = """
import fcntl, sys
with open(sys.argv[1], "r+b") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    print("got", flush=True)
"""

TRY_LOCKF = """
import fcntl, sys
with open(sys.argv[1], "r+b") as f:
    try:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("busy")
    else:
        print("locked")
"""


def _python(script: str, path: Path) -> "subprocess.Popen[str]":
    return subprocess.Popen(
        [sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True
    )


def test_more_waiters_than_fuse_threads_all_get_the_lock(fs_root: Path) -> None:
    path = fs_root / "contended"
    path.write_bytes(b"")
    with path.open("r+b") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        waiters = [_python(WAIT_FOR_FLOCK, path) for _ in range(WAITERS)]
        time.sleep(1.5)
        assert all(waiter.poll() is None for waiter in waiters)
    # The holder's close needed a FUSE thread too; then the lock passes along.
    outputs = [waiter.communicate(timeout=60)[0] for waiter in waiters]
    assert outputs == ["got\n"] * WAITERS


def test_closing_any_descriptor_drops_the_process_record_locks(fs_root: Path) -> None:
    path = fs_root / "posix"
    path.write_bytes(b"x" * 10)

    def other_process_gets_it() -> str:
        return _python(TRY_LOCKF, path).communicate(timeout=60)[0].strip()

    with path.open("r+b") as first:
        second = path.open("rb")
        fcntl.lockf(first, fcntl.LOCK_EX)
        assert other_process_gets_it() == "busy"
        second.close()  # not the descriptor locked through, yet POSIX drops the lock
        assert other_process_gets_it() == "locked"
