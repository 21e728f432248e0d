"""The unlocks of processes killed while the server is away: sent once it is
back, and before anything else the same lock owner asks for."""

import fcntl
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from fuse_client import locks
from fuse_client.locks import LockRemote, Locks, LockSession, Record
from proto.netvol.v1 import filesystem_pb2 as pb

INO = 7
OWNER = 42


class AwayServer(LockRemote):
    """Lock calls as the mount makes them; while `away`, a call waits as for an
    unreachable server, and ends as it would: at once for a caller being killed
    (any but one giving up otherwise), else when it gives up."""

    def __init__(self) -> None:  # no channel: nothing is sent
        self._waits = threading.local()
        self._killed = lambda: getattr(self._waits, "interrupted", None) is None
        self.away = threading.Event()
        self.calls: list[tuple[str, int, int, int]] = []

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


def _locks(server: AwayServer) -> Locks:
    return Locks(
        server,
        cast(LockSession, Session()),
        ino_of=lambda fh: INO,
        interrupted=lambda: False,
    )


def _wait_for_calls(server: AwayServer, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(server.calls) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def _record(kind: int, start: int, length: int) -> Record:
    return Record(kind, start, length, pid=1)


def test_a_killed_holders_unlock_returns_and_is_sent_once_the_server_is_back(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(locks, "FINISH_SECONDS", 0.05)
    server = AwayServer()
    mount_locks = _locks(server)
    try:
        mount_locks.fcntl(1, OWNER, fcntl.F_SETLK, _record(fcntl.F_WRLCK, 0, 10))
        server.away.set()
        mount_locks.fcntl(1, OWNER, fcntl.F_SETLK, _record(fcntl.F_UNLCK, 0, 0))  # returns
        time.sleep(0.2)
        assert server.calls == [("acquire", INO, 0, 10)]  # not sent while away
        server.away.clear()
        _wait_for_calls(server, 2)
        assert server.calls == [("acquire", INO, 0, 10), ("release", INO, 0, 0)]
    finally:
        mount_locks.close()


def test_the_owners_next_lock_waits_for_its_unsent_unlocks() -> None:
    # The kernel may reuse a dead process's owner id: the old unlock must not
    # land after, and drop, the new process's lock.
    server = AwayServer()
    mount_locks = _locks(server)
    try:
        mount_locks.fcntl(1, OWNER, fcntl.F_SETLK, _record(fcntl.F_WRLCK, 0, 10))
        server.away.set()
        mount_locks.fcntl(1, OWNER, fcntl.F_SETLK, _record(fcntl.F_UNLCK, 0, 0))
        mount_locks.fcntl(1, OWNER, fcntl.F_SETLK, _record(fcntl.F_UNLCK, 20, 5))
        server.away.clear()
        mount_locks.fcntl(1, OWNER, fcntl.F_SETLK, _record(fcntl.F_RDLCK, 0, 3))
        assert server.calls == [
            ("acquire", INO, 0, 10),
            ("release", INO, 0, 0),
            ("release", INO, 20, 5),
            ("acquire", INO, 0, 3),
        ]
    finally:
        mount_locks.close()


def test_an_unlock_killed_while_waiting_its_turn_is_still_sent(monkeypatch: Any) -> None:
    monkeypatch.setattr(locks, "FINISH_SECONDS", 0.05)
    server = AwayServer()
    mount_locks = _locks(server)
    taken, done = threading.Event(), threading.Event()

    def busy_owner() -> None:  # another call of the owner, under way
        with mount_locks._owner((locks.RECORD, OWNER)):
            taken.set()
            done.wait()

    try:
        mount_locks.fcntl(1, OWNER, fcntl.F_SETLK, _record(fcntl.F_WRLCK, 0, 10))
        busy = threading.Thread(target=busy_owner)
        busy.start()
        taken.wait()
        mount_locks.fcntl(1, OWNER, fcntl.F_SETLK, _record(fcntl.F_UNLCK, 0, 0))  # returns
        done.set()
        busy.join()
        _wait_for_calls(server, 2)
        assert server.calls == [("acquire", INO, 0, 10), ("release", INO, 0, 0)]
    finally:
        mount_locks.close()
