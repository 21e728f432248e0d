"""--io-timeout bounds how long I/O waits for a server that does not answer,
and the mount works again once the server is back."""

import errno
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fuse_client.remote import ATTEMPT_SECONDS
from tests.harness.mount import Mount, private_mount


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


def _stat_in_background(path: Path) -> "subprocess.Popen[bytes]":
    return subprocess.Popen([sys.executable, "-c", "import os, sys; os.stat(sys.argv[1])", path])


def test_a_process_waiting_for_the_server_can_be_killed(tmp_path: Path) -> None:
    """Waits have no bound (a hard mount), yet kill -9 ends a process in one, as
    on NFS; other processes go on waiting, and the mount works once the server
    is back."""
    with private_mount(tmp_path / "server", "data", "1Gi") as mount:
        (mount.path / "f").write_bytes(b"kept")
        mount.server.stop()
        killed = _stat_in_background(mount.path / "never-looked-up")
        time.sleep(1.0)
        # Started second: the kernel may hold it back until the first one's
        # lookup in the same directory is over, and that wait cannot be killed.
        waiting = _stat_in_background(mount.path / "nor-this")
        try:
            time.sleep(1.0)
            assert killed.poll() is None and waiting.poll() is None  # both wait
            killed.kill()
            assert killed.wait(timeout=10) == -signal.SIGKILL
            waiting.send_signal(signal.SIGSTOP)  # not fatal: the wait goes on
            waiting.send_signal(signal.SIGCONT)
            time.sleep(1.0)
            assert waiting.poll() is None
        finally:
            mount.server.start()
            # The survivor's stat fails as a stat of a missing name does.
            assert waiting.wait(timeout=60) == 1
            killed.wait(timeout=60)
        assert (mount.path / "f").read_bytes() == b"kept"


# Opens what it will use while the server is there, then, told to go, waits for
# the server in one call: a close or fsync of a file with buffered writes, or a
# read of a file nothing has cached (the written file stays open, so that dying
# closes it, with its buffered writes, on the way out).
_WAITER = """
import mmap, os, sys
how = sys.argv[3]
written = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT)
os.write(written, b"w" * 100_000)
cold = os.open(sys.argv[2], os.O_RDONLY | (os.O_DIRECT if how == "direct-read" else 0))
print("ready", flush=True)
sys.stdin.readline()
if how == "close":
    os.close(written)
elif how == "fsync":
    os.fsync(written)
else:
    os.preadv(cold, [mmap.mmap(-1, 1 << 20)], 0)
"""
# What each waiter waits in, and the signal that ends it. A direct read waits
# for the mount's answer itself; a buffered one waits for the page, which a
# signal ends in the kernel, and then for the close on the way out, which the
# kernel interrupts while a SIGKILL is pending but not after a SIGTERM.
_WAITS = [
    ("close", signal.SIGKILL),
    ("fsync", signal.SIGKILL),
    ("direct-read", signal.SIGKILL),
    ("read", signal.SIGTERM),
]


def test_a_process_killed_in_a_read_close_or_fsync_dies_and_its_writes_are_kept(
    tmp_path: Path,
) -> None:
    """A kill ends data waits too, and the close a dying process makes of its
    files on the way out does not wait either; what it wrote is still stored."""
    with private_mount(tmp_path / "server", "data", "1Gi") as mount:
        cold = mount.path / "cold"
        cold.write_bytes(os.urandom(3 << 20))
        mount.stop()
        mount.start()  # nothing of `cold` is cached now
        waiters = {
            (how, sig): subprocess.Popen(
                [sys.executable, "-c", _WAITER, mount.path / f"{how}-{sig.name}", cold, how],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            for how, sig in _WAITS
        }
        try:
            for waiter in waiters.values():
                assert waiter.stdout is not None and waiter.stdout.readline() == b"ready\n"
            mount.server.stop()
            for waiter in waiters.values():
                assert waiter.stdin is not None
                waiter.stdin.write(b"go\n")
                waiter.stdin.flush()
            time.sleep(1.0)
            assert all(waiter.poll() is None for waiter in waiters.values())  # all wait
            for (_, sig), waiter in waiters.items():
                waiter.send_signal(sig)
            for (how, sig), waiter in waiters.items():
                try:
                    assert waiter.wait(timeout=10) == -sig
                except subprocess.TimeoutExpired:
                    pytest.fail(f"a process ended by {sig.name} in {how} still waits")
        finally:
            mount.server.start()
            for waiter in waiters.values():
                waiter.wait(timeout=60)
        mount.stop()
        mount.start()
        for how, sig in _WAITS:
            assert (mount.path / f"{how}-{sig.name}").read_bytes() == b"w" * 100_000


# Takes a lock that waits, as `flock -w` does: an alarm ends the wait.
_LOCKER = """
import fcntl, os, signal, sys
fd = os.open(sys.argv[1], os.O_RDWR)
print("ready", flush=True)
sys.stdin.readline()
def give_up(signum, frame):
    sys.exit(3)
signal.signal(signal.SIGALRM, give_up)
signal.alarm(2)
if sys.argv[2] == "flock":
    fcntl.flock(fd, fcntl.LOCK_EX)
else:
    fcntl.lockf(fd, fcntl.LOCK_EX)
"""


def test_a_signal_ends_a_lock_wait_while_the_server_is_away(tmp_path: Path) -> None:
    """As with a lock another process holds, any signal ends an F_SETLKW or a
    blocking flock that waits for the server; nothing is left locked."""
    with private_mount(tmp_path / "server", "data", "1Gi") as mount:
        target = mount.path / "f"
        target.write_bytes(b"")
        lockers = [
            subprocess.Popen(
                [sys.executable, "-c", _LOCKER, target, kind],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            for kind in ("flock", "fcntl")
        ]
        try:
            for locker in lockers:
                assert locker.stdout is not None and locker.stdout.readline() == b"ready\n"
            mount.server.stop()
            for locker in lockers:
                assert locker.stdin is not None
                locker.stdin.write(b"go\n")
                locker.stdin.flush()
            for locker in lockers:
                try:
                    assert locker.wait(timeout=15) == 3
                except subprocess.TimeoutExpired:
                    pytest.fail("the alarm did not end a lock wait")
        finally:
            mount.server.start()
            for locker in lockers:
                if locker.poll() is None:
                    locker.kill()
                locker.wait(timeout=60)
        with open(target, "rb+") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)


# Holds a record lock and a flock on its file until it is killed.
_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
fcntl.flock(os.open(sys.argv[1], os.O_RDWR), fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(3600)
"""


def test_a_lock_holder_killed_while_the_server_is_away_dies_and_its_locks_go(
    tmp_path: Path,
) -> None:
    """The unlock a dying holder's files send as they close does not keep it
    from dying; the mount sends it once the server is back."""
    with private_mount(tmp_path / "server", "data", "1Gi") as mount:
        target = mount.path / "f"
        target.write_bytes(b"")
        holder = subprocess.Popen([sys.executable, "-c", _HOLDER, target], stdout=subprocess.PIPE)
        try:
            assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
            mount.server.stop()
            holder.kill()
            try:
                assert holder.wait(timeout=10) == -signal.SIGKILL
            except subprocess.TimeoutExpired:
                pytest.fail("a lock holder killed while the server is away still waits")
        finally:
            mount.server.start()
            holder.wait(timeout=60)
        with open(target, "rb+") as f:
            deadline = time.monotonic() + 15
            while True:
                try:
                    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    assert time.monotonic() < deadline, "the dead holder's locks stay"
                    time.sleep(0.2)


def _started(script: str, *args: object) -> "subprocess.Popen[bytes]":
    """A process running `script` that has said it is ready."""
    process = subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    return process


def _killed_behind(
    mount: Mount, first: "subprocess.Popen[bytes]", second: "subprocess.Popen[bytes]", what: str
) -> None:
    """With the server away, `first` is told to go and waits for it, then
    `second`, which waits behind it: killed, `second` dies. Then the server is
    back, and `first` is done."""
    try:
        mount.server.stop()
        for process in (first, second):
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            process.stdin.flush()
            time.sleep(1.0)
        assert first.poll() is None and second.poll() is None  # both wait
        second.kill()
        try:
            assert second.wait(timeout=10) == -signal.SIGKILL
        except subprocess.TimeoutExpired:
            pytest.fail(f"{what} killed while it waited still waits")
    finally:
        mount.server.start()
        for process in (first, second):
            process.wait(timeout=60)
    assert first.returncode == 0


# Opens the file, for direct reads that go to the mount whatever the kernel
# has cached, while the server is there; told to go, reads it.
_READER = """
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
print("ready", flush=True)
sys.stdin.readline()
os.preadv(fd, [mmap.mmap(-1, 4096)], 0)
"""


def test_a_reader_of_a_file_whose_close_waits_for_the_server_can_be_killed(
    tmp_path: Path,
) -> None:
    """A read first stores what the file has buffered, so it waits behind
    another process's close that waits for the server: a kill ends that wait
    too, and the closed file's bytes are kept."""
    with private_mount(tmp_path / "server", "data", "1Gi") as mount:
        target = mount.path / "f"
        target.write_bytes(b"")
        reader = _started(_READER, target)
        closer = _started(_WAITER, target, target, "close")
        _killed_behind(mount, closer, reader, "a reader behind a close")
        mount.stop()
        mount.start()
        assert target.read_bytes() == b"w" * 100_000


# Told to go, takes a record lock on its file.
_TAKER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
print("ready", flush=True)
sys.stdin.readline()
fcntl.lockf(fd, fcntl.LOCK_EX)
"""


def test_a_locker_waiting_behind_the_opening_of_the_lock_session_can_be_killed(
    tmp_path: Path,
) -> None:
    """The first lock of a mount opens its lock session, and other lockers wait
    for that while the server is away: a kill ends their wait too."""
    with private_mount(tmp_path / "server", "data", "1Gi") as mount:
        for name in ("first", "second"):
            (mount.path / name).write_bytes(b"")
        first = _started(_TAKER, mount.path / "first")
        second = _started(_TAKER, mount.path / "second")
        _killed_behind(mount, first, second, "a locker behind the session's opening")
        with open(mount.path / "second", "rb+") as f:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
