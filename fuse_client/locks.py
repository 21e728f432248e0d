"""Advisory locks of a mount: fcntl record locks and flock, held on the storage
server so that they exclude processes on every node that mounts the volume.

The kernel names each lock's owner (lock_owner: the process's file table for
record locks, the open file for flock) and says when an owner's locks go:
libfuse turns every close into an unlock of the owner's record locks on that
file, and the last close of an open file that used flock comes with
flock_release. So that a close costs no round trip, the mount remembers which
owners may hold locks and asks the server about those only.

The server never waits. A lock that must wait (F_SETLKW, flock without
LOCK_NB) is asked for again with backoff until it is granted or its process
gets a signal (EINTR), also while a call waits for an unreachable server.
Locks live in the mount's lock session, opened by the first lock (or the
first orphan, see fuse_client.orphans) and renewed by a heartbeat; if the
lease runs out all the same (the mount was cut off for longer), the server
has dropped the locks: that is logged, and the next lock opens a new session.

Unlocks are sent from threads of their own, so that an unlock does not keep a
killed process from dying while the server is away: the process stops waiting,
and its unlock lands once the server is back. An owner's unlocks land in order
and before its next lock (the kernel may give a dead process's owner id to a
new one), and are never cancelled, lest one land after that lock. A lock call
its caller gave up on (killed, interrupted) is cancelled: the server then
lets it take no effect, and if it was granted all the same (the answer came
too late), an owner that held nothing lets the range go again.
"""

import concurrent.futures
import contextlib
import errno
import fcntl
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc

from fuse_client.remote import Remote
from proto.netvol.v1 import filesystem_pb2 as pb
from proto.netvol.v1 import filesystem_pb2_grpc
from storage_server.periodic import Periodic

log = logging.getLogger(__name__)

RECORD = pb.LOCK_KIND_RECORD
FLOCK = pb.LOCK_KIND_FLOCK
FIRST_POLL_SECONDS = 0.01
MAX_POLL_SECONDS = 0.5
# Session ids per liveness question (the server takes up to a thousand).
LIVE_BATCH = 500
# How often a waiting lock looks whether its process got a signal.
INTERRUPT_CHECK_SECONDS = 0.05
CLOSE_SECONDS = 5.0
# Threads sending unlocks; how soon one tries again after --io-timeout gave up.
UNLOCKERS = 8
UNLOCK_RETRY_SECONDS = 1.0
# Lock calls of one owner run one at a time; owners share this many mutexes.
STRIPES = 64
# A waiting lock holds one of libfuse's worker threads. The mount keeps threads
# for everything else, the unlock that ends a wait among it; a waiter beyond
# this many gets ENOLCK rather than hang the mount.
MAX_WAITERS = 192
FUSE_THREADS = MAX_WAITERS + 64


@dataclass(frozen=True)
class Record:
    """A struct flock as libfuse hands it over (l_whence is always SEEK_SET)."""

    type: int  # F_RDLCK, F_WRLCK or F_UNLCK
    start: int
    length: int  # 0: to the end of the file
    pid: int


class LockRemote(Remote):
    """The Locks calls of one volume; lock calls wait out an unreachable server
    as every call of a hard mount does, and those of a lock that waits also stop
    at a signal (giving_up_when)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waits = threading.local()

    @contextlib.contextmanager
    def giving_up_when(self, interrupted: Callable[[], bool]) -> Iterator[None]:
        """Calls this thread makes meanwhile stop waiting (EINTR) once `interrupted()`."""
        self._waits.interrupted = interrupted
        try:
            yield
        finally:
            self._waits.interrupted = None

    def stop_if_killed(self) -> None:
        super().stop_if_killed()
        interrupted = getattr(self._waits, "interrupted", None)
        if interrupted is not None and interrupted():
            raise OSError(errno.EINTR, "interrupted while waiting for a lock")

    @functools.cached_property
    def _locks(self) -> filesystem_pb2_grpc.LocksStub:
        return filesystem_pb2_grpc.LocksStub(self.channel)

    def open_session(self, client: str) -> pb.OpenLockSessionResponse:
        request = pb.OpenLockSessionRequest(volume_id=self.volume_id, client=client)
        return self._unary(self._locks.OpenLockSession, request)

    def renew_session(self, session_id: str, timeout: float) -> bool:
        """One try (grpc.RpcError if it fails): the heartbeat tries again anyway."""
        request = pb.RenewLockSessionRequest(volume_id=self.volume_id, session_id=session_id)
        return self._locks.RenewLockSession(request, timeout=timeout).renewed

    def claiming_sessions(self, session_ids: list[str]) -> set[str]:
        """Those of the sessions that are live or lapsed within the orphan grace."""
        claiming: set[str] = set()
        for at in range(0, len(session_ids), LIVE_BATCH):
            request = pb.LiveLockSessionsRequest(
                volume_id=self.volume_id, session_ids=session_ids[at : at + LIVE_BATCH]
            )
            reply = self._unary(self._locks.LiveLockSessions, request)
            claiming.update(reply.live, reply.lapsed)
        return claiming

    def close_session(self, session_id: str, timeout: float) -> None:
        request = pb.CloseLockSessionRequest(volume_id=self.volume_id, session_id=session_id)
        self._locks.CloseLockSession(request, timeout=timeout)

    def acquire(self, session_id: str, ino: int, lock: pb.Lock) -> pb.AcquireLockResponse:
        request = pb.AcquireLockRequest(
            volume_id=self.volume_id, session_id=session_id, ino=ino, lock=lock
        )
        return self._unary(self._locks.AcquireLock, request)

    def release(self, session_id: str, ino: int, lock: pb.Lock) -> bool:
        """Unlock the range of `lock` (its type aside); say whether the owner holds more."""
        request = pb.ReleaseLockRequest(
            volume_id=self.volume_id,
            session_id=session_id,
            ino=ino,
            kind=lock.kind,
            owner=lock.owner,
            start=lock.start,
            length=lock.length,
        )
        return self._unary(self._locks.ReleaseLock, request).owner_holds_more

    def test(self, session_id: str, ino: int, lock: pb.Lock) -> pb.Lock | None:
        request = pb.TestLockRequest(
            volume_id=self.volume_id, session_id=session_id, ino=ino, lock=lock
        )
        reply = self._unary(self._locks.TestLock, request)
        return reply.conflict if reply.HasField("conflict") else None


class LockSession:
    """The mount's lock session, its claim to its locks and its orphans: opened
    on first use, renewed by a heartbeat."""

    def __init__(self, remote: LockRemote, client: str) -> None:
        self._remote = remote
        self._client = client
        self._on_lost: list[Callable[[], None]] = []
        self._mutex = threading.Lock()
        self._id = ""
        self._heartbeat: Periodic | None = None
        self._interval = 0.0

    def when_lost(self, hook: Callable[[], None]) -> None:
        """Call `hook` whenever the server has dropped the session."""
        self._on_lost.append(hook)

    def claiming(self, session_ids: list[str]) -> set[str]:
        """Which of these sessions of the volume (this mount's or others') still
        claim their orphans: live ones, and ones that lapsed within the grace."""
        return self._remote.claiming_sessions(session_ids)

    @property
    def known(self) -> str:
        """The session's id, or "" while there is none (and so no lock either)."""
        return self._id

    def current(self) -> str:
        """The session's id, opening a session if there is none; a killed caller
        stops waiting for another's open (EINTR)."""
        with self._remote.hold(self._mutex):
            if not self._id:
                reply = self._remote.open_session(self._client)
                self._id = reply.session_id
                if self._heartbeat is None:
                    self._interval = reply.lease_seconds / 4
                    self._heartbeat = Periodic("lock-heartbeat", self._interval, self._renew)
                    self._heartbeat.start()
            return self._id

    def lost(self, session_id: str) -> None:
        """The server no longer knows `session_id`: its locks are gone."""
        with self._remote.hold(self._mutex):
            if self._id != session_id:
                return  # another thread found out first
            self._id = ""
        log.error(
            "lock session %s expired (the mount was cut off or stalled): the locks held "
            "through this mount were dropped",
            session_id,
        )
        for hook in self._on_lost:
            hook()

    def _renew(self) -> None:
        session_id = self._id
        if not session_id:
            return
        try:
            renewed = self._remote.renew_session(session_id, self._interval)
        except grpc.RpcError as exc:
            log.warning("cannot renew lock session %s: %s", session_id, exc.code().name)
            return
        if not renewed:
            self.lost(session_id)

    def close(self) -> None:
        """Drop the session and its locks now, rather than when its lease runs out."""
        if self._heartbeat is not None:
            self._heartbeat.stop()
        with self._mutex:
            session_id, self._id = self._id, ""
        if not session_id:
            return
        try:
            self._remote.close_session(session_id, CLOSE_SECONDS)
        except grpc.RpcError as exc:
            log.warning(
                "cannot close lock session %s (%s); its locks go when its lease runs out",
                session_id,
                exc.code().name,
            )


def _record_lock(owner: int, record: Record) -> pb.Lock:
    return pb.Lock(
        kind=RECORD,
        exclusive=record.type == fcntl.F_WRLCK,
        start=record.start,
        length=record.length,
        owner=owner,
        pid=record.pid,
    )


class Locks:
    """The lock calls of a mount; `ino_of` maps an open file handle to its inode,
    `interrupted` says whether the process of the request being served got a signal."""

    def __init__(
        self,
        remote: LockRemote,
        session: LockSession,
        ino_of: Callable[[int], int],
        interrupted: Callable[[], bool],
    ) -> None:
        self._remote = remote
        self._session = session
        session.when_lost(self._forget_all)
        self._ino_of = ino_of
        self._interrupted = interrupted
        # (kind, owner) pairs that may hold locks on the server.
        self._held: set[tuple[int, int]] = set()
        # Per owner, its latest unlock under way (each waits for the one before).
        self._unlocking: dict[tuple[int, int], Future[None]] = {}
        self._unlocking_mutex = threading.Lock()
        self._unlockers = ThreadPoolExecutor(UNLOCKERS, thread_name_prefix="unlock")
        self._closing = threading.Event()
        self._stripes = [threading.Lock() for _ in range(STRIPES)]
        self._waiters = threading.BoundedSemaphore(MAX_WAITERS)

    def close(self) -> None:
        """Give up the unlocks still waiting for the server: the session's end drops
        their locks (or its lease running out, if the server is still away)."""
        self._closing.set()
        self._unlockers.shutdown(wait=True, cancel_futures=True)

    def fcntl(self, fh: int, owner: int, cmd: int, record: Record) -> Record | None:
        """F_SETLK, F_SETLKW or F_GETLK; F_GETLK answers with a Record."""
        lock = _record_lock(owner, record)
        if cmd == fcntl.F_GETLK:
            return self._test(fh, lock)
        if record.type == fcntl.F_UNLCK:
            self._release(fh, lock)
        else:
            self._take(fh, lock, wait=cmd == fcntl.F_SETLKW)
        return None

    def flock(self, fh: int, owner: int, operation: int) -> None:
        lock = pb.Lock(kind=FLOCK, exclusive=bool(operation & fcntl.LOCK_EX), owner=owner)
        if operation & fcntl.LOCK_UN:
            self._release(fh, lock)
        else:
            self._take(fh, lock, wait=not operation & fcntl.LOCK_NB)

    def release_flock(self, fh: int, owner: int) -> None:
        """The last close of an open file that used flock."""
        self._release(fh, pb.Lock(kind=FLOCK, owner=owner))

    def _owner(self, key: tuple[int, int]) -> contextlib.AbstractContextManager[None]:
        """The owner's calls run one at a time; a killed caller stops waiting its turn."""
        return self._remote.hold(self._stripes[hash(key) % STRIPES])

    def _forget_all(self) -> None:
        self._held.clear()

    def _take(self, fh: int, lock: pb.Lock, wait: bool) -> None:
        ino = self._ino_of(fh)
        if not wait:
            if not self._try(ino, lock):
                raise OSError(errno.EAGAIN, "locked by another owner")
            return
        # A signal ends the wait (flock -w, alarm()), for a holder or for the
        # server alike.
        with self._remote.giving_up_when(self._interrupted):
            self._wait_for(ino, lock)

    def _wait_for(self, ino: int, lock: pb.Lock) -> None:
        if self._try(ino, lock):
            return
        if not self._waiters.acquire(blocking=False):
            raise OSError(errno.ENOLCK, f"{MAX_WAITERS} processes already wait for locks here")
        try:
            delay = FIRST_POLL_SECONDS
            while True:
                self._pause(delay)
                if self._try(ino, lock):
                    return
                delay = min(delay * 2, MAX_POLL_SECONDS)
        finally:
            self._waiters.release()

    def _unlocking_now(self, key: tuple[int, int]) -> "Future[None] | None":
        with self._unlocking_mutex:
            unlocking = self._unlocking.get(key)
        return unlocking if unlocking is not None and not unlocking.done() else None

    def _try(self, ino: int, lock: pb.Lock) -> bool:
        key = (lock.kind, lock.owner)
        while True:
            unlocking = self._unlocking_now(key)
            if unlocking is not None:
                self._remote.wait(unlocking, bounded=True)
            with self._owner(key):
                # A call of the owner we waited behind may have queued an unlock
                # (see below), which must land first: it needs the owner's turn.
                if self._unlocking_now(key) is None:
                    return self._try_turn(key, ino, lock)

    def _try_turn(self, key: tuple[int, int], ino: int, lock: pb.Lock) -> bool:
        """Ask for the lock, in the owner's turn."""
        held_before = key in self._held
        # Before asking: if the answer is lost, the lock may be granted all the same.
        self._held.add(key)
        try:
            reply = self._acquire(key, ino, lock)
        except InterruptedError:
            if not held_before:
                # The server may have granted it as the caller gave up. The
                # owner held nothing, so letting the range go drops only
                # that (as NFS does); an owner that held locks keeps them.
                self._queue_unlock(key, ino, lock)
            raise
        if not reply.granted and not held_before:
            self._held.discard(key)
        return reply.granted

    def _acquire(self, key: tuple[int, int], ino: int, lock: pb.Lock) -> pb.AcquireLockResponse:
        session_id = self._session.current()
        try:
            return self._remote.acquire(session_id, ino, lock)
        except OSError as exc:
            if exc.errno != errno.ENOLCK:
                raise
            self._session.lost(session_id)  # which forgot every holder
            self._held.add(key)
            return self._remote.acquire(self._session.current(), ino, lock)

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            if self._interrupted():
                raise OSError(errno.EINTR, "interrupted while waiting for a lock")
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, INTERRUPT_CHECK_SECONDS))

    def _release(self, fh: int, lock: pb.Lock) -> None:
        key = (lock.kind, lock.owner)
        if key not in self._held or not self._session.known:
            return  # the common close: this owner never locked anything
        unlock = self._queue_unlock(key, self._ino_of(fh), lock)
        try:
            self._remote.wait(unlock, bounded=True)
        except InterruptedError:
            return  # the process dies now; its unlock lands once the server is back
        unlock.result()

    def _queue_unlock(self, key: tuple[int, int], ino: int, lock: pb.Lock) -> "Future[None]":
        """Send the unlock from an unlock thread, after the owner's ones under way."""
        with self._unlocking_mutex:
            before = self._unlocking.get(key)
            unlock = self._unlockers.submit(self._unlock, key, ino, lock, before)
            self._unlocking[key] = unlock
        unlock.add_done_callback(functools.partial(self._unlocked, key))
        return unlock

    def _unlocked(self, key: tuple[int, int], unlock: "Future[None]") -> None:
        with self._unlocking_mutex:
            if self._unlocking.get(key) is unlock:
                del self._unlocking[key]

    def _unlock(
        self, key: tuple[int, int], ino: int, lock: pb.Lock, before: "Future[None] | None"
    ) -> None:
        """Send one unlock until it lands, after the owner's one `before`."""
        if before is not None:
            concurrent.futures.wait([before])
        with self._remote.giving_up_when(self._closing.is_set):
            while True:
                try:
                    with self._owner(key):
                        self._send_unlock(key, ino, lock)
                    return
                except InterruptedError:
                    return  # unmounting
                except OSError as exc:
                    if exc.errno != errno.EIO:
                        log.error("the server refused an unlock: %s", exc)
                        raise
                # --io-timeout gave up on the server: nobody else will send it.
                if self._closing.wait(UNLOCK_RETRY_SECONDS):
                    return

    def _send_unlock(self, key: tuple[int, int], ino: int, lock: pb.Lock) -> None:
        session_id = self._session.known
        try:
            # No session: the server dropped its locks already.
            more = bool(session_id) and self._remote.release(session_id, ino, lock)
        except FileNotFoundError:
            more = True  # that file's locks went with it; others may be held
        if not more:
            self._held.discard(key)

    def _test(self, fh: int, lock: pb.Lock) -> Record:
        found = self._remote.test(self._session.known, self._ino_of(fh), lock)
        if found is None:
            return Record(fcntl.F_UNLCK, lock.start, lock.length, 0)
        kind = fcntl.F_WRLCK if found.exclusive else fcntl.F_RDLCK
        return Record(kind, found.start, found.length, found.pid)
