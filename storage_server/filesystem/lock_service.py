"""The Locks gRPC service: lock sessions (storage_server.sessions) and the locks
they hold (storage_server.filesystem.locks), one transaction per call."""

from collections.abc import Callable

import grpc
from sqlalchemy.orm import Session

from proto.netvol.v1 import filesystem_pb2 as pb
from proto.netvol.v1 import filesystem_pb2_grpc
from storage_server import sessions
from storage_server.db import Database
from storage_server.errors import Abandoned, InvalidArgument
from storage_server.filesystem import locks
from storage_server.filesystem.locks import END, Holder, Kind, Span
from storage_server.models import FileLock

LockRequest = pb.AcquireLockRequest | pb.TestLockRequest
# Looks, in a transaction, for a lock in the way of the holder's span (and may take it).
Finder = Callable[[Session, Holder, Span], FileLock | None]


def _holder(session_id: str, owner: int, kind: int) -> Holder:
    try:
        return Holder(session_id, owner, Kind(kind))
    except ValueError:
        raise InvalidArgument(f"lock kind {kind} is neither a record lock nor a flock") from None


def _end(start: int, length: int) -> int:
    if start >= END:
        raise InvalidArgument(f"a lock cannot start at {start}, beyond the largest file")
    return END if length == 0 else min(start + length, END)


def _span(lock: pb.Lock) -> Span:
    return Span(lock.start, _end(lock.start, lock.length), lock.exclusive)


def _unless_abandoned(context: grpc.ServicerContext) -> None:
    """Last in a lock change's transaction, which holds the file's inode: a call
    its client gave up on (killed, or past its deadline and tried again) rolls
    back, unless it got here before the cancel did. The client's next call for
    that owner (an unlock, a retry) comes after the cancel on the same
    connection, and waits for the inode, so an abandoned call never lands after
    it; one that commits first is the client's to undo (fuse_client.locks)."""
    if not context.is_active():
        raise Abandoned("the client gave up on this call")


def _message(found: FileLock, session_id: str) -> pb.Lock:
    return pb.Lock(
        kind=found.kind,  # type: ignore[arg-type]
        exclusive=found.exclusive,
        start=found.range_start,
        length=0 if found.range_end == END else found.range_end - found.range_start,
        owner=locks.kernel_owner(found.owner),
        pid=found.pid if found.session_id == session_id else 0,
    )


class LockService(filesystem_pb2_grpc.LocksServicer):
    def __init__(self, db: Database, lease_seconds: float, orphan_grace_seconds: float) -> None:
        self._db = db
        self._lease = lease_seconds
        self._orphan_grace = orphan_grace_seconds

    def OpenLockSession(
        self, request: pb.OpenLockSessionRequest, context: grpc.ServicerContext
    ) -> pb.OpenLockSessionResponse:
        session_id = sessions.open_session(self._db, request.volume_id, request.client, self._lease)
        return pb.OpenLockSessionResponse(session_id=session_id, lease_seconds=self._lease)

    def RenewLockSession(
        self, request: pb.RenewLockSessionRequest, context: grpc.ServicerContext
    ) -> pb.RenewLockSessionResponse:
        renewed = sessions.renew(self._db, request.volume_id, request.session_id, self._lease)
        return pb.RenewLockSessionResponse(renewed=renewed)

    def CloseLockSession(
        self, request: pb.CloseLockSessionRequest, context: grpc.ServicerContext
    ) -> pb.CloseLockSessionResponse:
        sessions.close(self._db, request.volume_id, request.session_id)
        return pb.CloseLockSessionResponse()

    def LiveLockSessions(
        self, request: pb.LiveLockSessionsRequest, context: grpc.ServicerContext
    ) -> pb.LiveLockSessionsResponse:
        live, lapsed = sessions.claims(
            self._db, request.volume_id, request.session_ids, self._orphan_grace
        )
        return pb.LiveLockSessionsResponse(live=live, lapsed=lapsed)

    def _conflict(self, request: LockRequest, find: Finder) -> pb.Lock | None:
        """The lock in the way that `find` finds (in one transaction), as a message."""
        holder = _holder(request.session_id, request.lock.owner, request.lock.kind)
        with self._db.write() as session:
            found = find(session, holder, _span(request.lock))
            return None if found is None else _message(found, request.session_id)

    def AcquireLock(
        self, request: pb.AcquireLockRequest, context: grpc.ServicerContext
    ) -> pb.AcquireLockResponse:

        def take(session: Session, holder: Holder, span: Span) -> FileLock | None:
            found = locks.acquire(
                session, request.volume_id, request.ino, holder, span, pid=request.lock.pid
            )
            _unless_abandoned(context)
            return found

        conflict = self._conflict(request, take)
        return pb.AcquireLockResponse(granted=conflict is None, conflict=conflict)

    def ReleaseLock(
        self, request: pb.ReleaseLockRequest, context: grpc.ServicerContext
    ) -> pb.ReleaseLockResponse:
        holder = _holder(request.session_id, request.owner, request.kind)
        end = _end(request.start, request.length)
        with self._db.write() as session:
            more = locks.release(
                session, request.volume_id, request.ino, holder, start=request.start, end=end
            )
            _unless_abandoned(context)
        return pb.ReleaseLockResponse(owner_holds_more=more)

    def TestLock(
        self, request: pb.TestLockRequest, context: grpc.ServicerContext
    ) -> pb.TestLockResponse:
        conflict = self._conflict(
            request,
            lambda session, holder, span: locks.conflicting(
                session, request.volume_id, request.ino, holder, span
            ),
        )
        return pb.TestLockResponse(conflict=conflict)
