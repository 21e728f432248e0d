"""Exactly-once mutations: a retried call gets the answer its first attempt got.

A mutating call that carries a request id runs in one write transaction that
first looks for the answer stored under that id. Without one it does the work
and stores its answer (the response message, or the errno it failed with) in
the same transaction, so the work and the record commit together or not at all.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from google.protobuf.message import Message
from sqlalchemy import CursorResult, delete
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from storage_server.db import Database
from storage_server.errors import FsError, InvalidArgument
from storage_server.models import REQUEST_ID_MAX_CHARS, Request

M = TypeVar("M", bound=Message)

# PostgreSQL breaks a lock cycle by failing one transaction; it is safe to run again.
_DEADLOCK = "40P01"
_ATTEMPTS = 5


def _answer(stored: Request, reply: type[M]) -> M:
    if stored.errno is not None:
        raise FsError(stored.errno)
    return reply.FromString(stored.response or b"")


def _attempt(
    db: Database,
    volume_id: str,
    request_id: str,
    reply: type[M],
    work: Callable[[Session], M],
    *,
    durable: bool,
) -> M:
    with db.write(durable) as session:
        if not request_id:
            return work(session)
        stored = session.get(Request, (volume_id, request_id))
        if stored is not None:
            return _answer(stored, reply)
        record = Request(volume_id=volume_id, request_id=request_id, created_at=datetime.now(UTC))
        try:
            # A savepoint, so that a failure undoes the work but keeps the record.
            with session.begin_nested():
                response = work(session)
        except FsError as exc:
            failure = exc
            record.errno = exc.errno
            session.add(record)
        else:
            record.response = response.SerializeToString()
            session.add(record)
            return response
    raise failure


def run_once(
    db: Database,
    volume_id: str,
    request_id: str,
    reply: type[M],
    work: Callable[[Session], M],
    *,
    durable: bool = True,
) -> M:
    """Run `work` in a write transaction, once per request id; return its response.
    `durable` says whether the commit waits for stable storage (see Database)."""
    if len(request_id) > REQUEST_ID_MAX_CHARS:
        raise InvalidArgument(f"request ids are at most {REQUEST_ID_MAX_CHARS} characters")
    attempts_left = _ATTEMPTS
    while True:
        attempts_left -= 1
        try:
            return _attempt(db, volume_id, request_id, reply, work, durable=durable)
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != _DEADLOCK or not attempts_left:
                raise
        except IntegrityError:
            # Another attempt of the same request committed first: answer as it did.
            with db.read() as session:
                stored = session.get(Request, (volume_id, request_id)) if request_id else None
                if stored is None:
                    raise
                return _answer(stored, reply)


def expire(db: Database, ttl_seconds: float) -> int:
    """Forget answers older than the TTL; return how many were forgotten."""
    cutoff = datetime.now(UTC) - timedelta(seconds=ttl_seconds)
    with db.write() as session:
        result = session.execute(delete(Request).where(Request.created_at < cutoff))
        return cast(CursorResult[Any], result).rowcount
