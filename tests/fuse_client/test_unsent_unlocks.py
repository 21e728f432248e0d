"""Unlocks sent from threads of their own: a process killed while the server is
away stops waiting for its unlock, which lands once the server is back, in
order, and before anything else the same lock owner asks for."""

import contextlib
import errno
import fcntl
import threading
import time
from collections.abc import Callable, Iterator
from typing import cast

import pytest

from fuse_client import locks
from fuse_client.locks import LockRemote, Locks, LockSession, Record
from proto.netvol.v1 import filesystem_pb2 as pb

INO = 7
OWNER = 42


class AwayServer(LockRemote):
    """Lock calls as the mount makes them; while `away`, a call waits as for an
    unreachable server, until its caller is killed (see `dying`) or gives up."""

    def __init__(self, io_timeout: float = 0) -> None:  # no channel: nothing is sent
        self._waits = threading.local()
        self._io_timeout = io_timeout
        self._killed = lambda: getattr(self._waits, "dying", False)
        self.away = threading.Event()
        self.calls: list[tuple[str, int, int, int]] = []

    @contextlib.contextmanager
    def dying(self) -> Iterator[None]:
        """This thread's calls meanwhile are those of a process being killed."""
        self._waits.dying = True
        try:
            yield
        finally:
            self._waits.dying = False

    def _reach(self) -> None:
        while self.away.is_set():
            self.stop_if_killed()
            time.sleep(0.01)

    def acquire(self, session_id: str, ino: int, lock: pb.Lock) -> pb.AcquireLockResponse:
        self._reach()
        self.calls.append(("acquire", ino, lock.start, lock.length))
        return pb.AcquireLockResponse(granted=True)

    def release(self, session_id: str, ino: int, lock: pb.Lock) -> bool:
        self._reach()
        self.calls.append(("release", ino, lock.start, lock.length))
        return False


class Session:
    known = "s1"

    def current(self) -> str:
        return self.known

    def when_lost(self, hook: Callable[[], None]) -> None:
        pass


@pytest.fixture
def server() -> AwayServer:
    return AwayServer()


def _locks(server: AwayServer) -> Locks:
    return Locks(
        server, cast(LockSession, Session()), ino_of=lambda fh: INO, interrupted=lambda: False
    )


@pytest.fixture
def mount_locks(server: AwayServer) -> Iterator[Locks]:
    made = _locks(server)
    yield made
    made.close()


def _set(mount_locks: Locks, kind: int, start: int, length: int) -> None:
    mount_locks.fcntl(1, OWNER, fcntl.F_SETLK, Record(kind, start, length, pid=1))


def _wait_for_calls(server: AwayServer, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(server.calls) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_killed_holders_unlock_returns_and_lands_once_the_server_is_back(
    server: AwayServer, mount_locks: Locks
) -> None:
    _set(mount_locks, fcntl.F_WRLCK, 0, 10)
    server.away.set()
    with server.dying():
        _set(mount_locks, fcntl.F_UNLCK, 0, 0)  # returns
    time.sleep(0.2)
    assert server.calls == [("acquire", INO, 0, 10)]  # not sent while away
    server.away.clear()
    _wait_for_calls(server, 2)
    assert server.calls == [("acquire", INO, 0, 10), ("release", INO, 0, 0)]


def test_the_owners_next_lock_waits_for_its_unlocks_under_way(
    server: AwayServer, mount_locks: Locks
) -> None:
    # The kernel may reuse a dead process's owner id: the old unlock must not
    # land after, and drop, the new process's lock.
    _set(mount_locks, fcntl.F_WRLCK, 0, 10)
    server.away.set()
    with server.dying():
        _set(mount_locks, fcntl.F_UNLCK, 0, 0)
        _set(mount_locks, fcntl.F_UNLCK, 20, 5)
    later = threading.Thread(target=_set, args=(mount_locks, fcntl.F_RDLCK, 0, 3))
    later.start()
    time.sleep(0.2)
    server.away.clear()
    later.join()
    assert server.calls == [
        ("acquire", INO, 0, 10),
        ("release", INO, 0, 0),
        ("release", INO, 20, 5),
        ("acquire", INO, 0, 3),
    ]


def test_an_unlock_killed_while_waiting_its_turn_still_lands(
    server: AwayServer, mount_locks: Locks
) -> None:
    taken, done = threading.Event(), threading.Event()

    def busy_owner() -> None:  # another call of the owner, under way
        with mount_locks._owner((locks.RECORD, OWNER)):
            taken.set()
            done.wait()

    _set(mount_locks, fcntl.F_WRLCK, 0, 10)
    busy = threading.Thread(target=busy_owner)
    busy.start()
    taken.wait()
    with server.dying():
        _set(mount_locks, fcntl.F_UNLCK, 0, 0)  # returns
    done.set()
    busy.join()
    _wait_for_calls(server, 2)
    assert server.calls == [("acquire", INO, 0, 10), ("release", INO, 0, 0)]


def test_an_unlock_past_the_io_timeout_fails_and_still_lands() -> None:
    server = AwayServer(io_timeout=0.3)
    mount_locks = _locks(server)
    try:
        _set(mount_locks, fcntl.F_WRLCK, 0, 10)
        server.away.set()
        with pytest.raises(OSError) as failed:
            _set(mount_locks, fcntl.F_UNLCK, 0, 0)
        assert failed.value.errno == errno.EIO
        server.away.clear()
        _wait_for_calls(server, 2)
        assert server.calls == [("acquire", INO, 0, 10), ("release", INO, 0, 0)]
    finally:
        mount_locks.close()


class AnswerLost(AwayServer):
    """Grants each lock, but a dying caller does not live to hear so."""

    def acquire(self, session_id: str, ino: int, lock: pb.Lock) -> pb.AcquireLockResponse:
        reply = super().acquire(session_id, ino, lock)
        self.stop_if_killed()
        return reply


def test_a_lock_granted_as_its_caller_was_killed_is_let_go() -> None:
    server = AnswerLost()
    mount_locks = _locks(server)
    try:
        with server.dying(), pytest.raises(InterruptedError):
            _set(mount_locks, fcntl.F_WRLCK, 0, 10)
        _wait_for_calls(server, 2)
        assert server.calls == [("acquire", INO, 0, 10), ("release", INO, 0, 10)]
    finally:
        mount_locks.close()


def test_an_owner_that_held_locks_keeps_them_when_a_further_lock_is_lost() -> None:
    # An unlock of the range could drop a lock the owner held there before.
    server = AnswerLost()
    mount_locks = _locks(server)
    try:
        _set(mount_locks, fcntl.F_RDLCK, 0, 30)
        with server.dying(), pytest.raises(InterruptedError):
            _set(mount_locks, fcntl.F_WRLCK, 0, 10)
        time.sleep(0.2)
        assert server.calls == [("acquire", INO, 0, 30), ("acquire", INO, 0, 10)]
    finally:
        mount_locks.close()


class AnswerLostLater(AnswerLost):
    """As AnswerLost, and a dying caller's lock waits for `go` first."""

    def __init__(self) -> None:
        super().__init__()
        self.go = threading.Event()

    def acquire(self, session_id: str, ino: int, lock: pb.Lock) -> pb.AcquireLockResponse:
        if self._killed():
            self.go.wait(5)
        return super().acquire(session_id, ino, lock)


def test_the_let_go_lands_before_a_lock_of_the_owner_that_waited_its_turn() -> None:
    # Two threads of one process (one lock owner): the unlock that lets the
    # first one's lock go must not land after, and cut into, the second's.
    server = AnswerLostLater()
    mount_locks = _locks(server)

    def dying_lock() -> None:
        with server.dying(), pytest.raises(InterruptedError):
            _set(mount_locks, fcntl.F_WRLCK, 0, 10)

    try:
        first = threading.Thread(target=dying_lock)
        first.start()
        time.sleep(0.1)  # it holds the owner's turn, waiting for its answer
        second = threading.Thread(target=_set, args=(mount_locks, fcntl.F_WRLCK, 5, 10))
        second.start()
        time.sleep(0.2)  # it waits for the owner's turn
        server.go.set()
        first.join(5)
        second.join(5)
        assert server.calls == [
            ("acquire", INO, 0, 10),
            ("release", INO, 0, 10),
            ("acquire", INO, 5, 10),
        ]
    finally:
        mount_locks.close()


class SessionsAway(AwayServer):
    """Opens sessions, while not `away`."""

    def open_session(self, client: str) -> pb.OpenLockSessionResponse:
        self._reach()
        return pb.OpenLockSessionResponse(session_id="s2", lease_seconds=3600)

    def close_session(self, session_id: str, timeout: float) -> None:
        pass


def test_a_killed_caller_does_not_wait_for_a_session_being_opened() -> None:
    server = SessionsAway()
    session = LockSession(server, "test:/mnt")
    server.away.set()
    opening = threading.Thread(target=session.current)  # holds the session's mutex
    opening.start()
    interrupted: list[bool] = []

    def told_its_session_is_gone() -> None:  # as a locker is
        with server.dying(), pytest.raises(InterruptedError):
            session.lost("s1")
        interrupted.append(True)

    try:
        time.sleep(0.1)
        locker = threading.Thread(target=told_its_session_is_gone, daemon=True)
        locker.start()
        locker.join(5)
        assert interrupted, "a killed caller still waits for the session's mutex"
    finally:
        server.away.clear()
        opening.join(5)
        session.close()
