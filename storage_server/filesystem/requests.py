"""Exactly-once mutations: a retried call gets the answer its first attempt got.

A mutating call that carries a request id stores its answer (the response
message) under that id in the transaction that does the work, so the two commit
together or not at all. A failed call is undone and its errno stored in a
transaction of its own. The stored answer's key is unique: when a retry's work
is done again, or fails because it was done, storing its answer fails instead,
the retry's transaction is rolled back and the first answer is given.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from google.protobuf.message import Message
from sqlalchemy import CursorResult, delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage_server.db import Database, retry_conflicts
from storage_server.errors import FsError, InvalidArgument
from storage_server.models import REQUEST_ID_MAX_CHARS, Request, table_of

M = TypeVar("M", bound=Message)

# Runs of a mutation that PostgreSQL undid for a conflict (see db.retry_conflicts).
_ATTEMPTS = 5


def _answer(stored: Request, reply: type[M]) -> M:
    if stored.errno is not None:
        raise FsError(stored.errno)
    return reply.FromString(stored.response or b"")


def _record(session: Session, volume_id: str, request_id: str, **answer: Any) -> None:
    # On the connection: the ORM's bulk-insert path costs more than the insert.
    session.connection().execute(
        insert(table_of(Request)),
        {
            "volume_id": volume_id,
            "request_id": request_id,
            "created_at": datetime.now(UTC),
            **answer,
        },
    )


def _attempt(
    db: Database,
    volume_id: str,
    request_id: str,
    work: Callable[[Session], M],
    *,
    durable: bool,
) -> M:
    try:
        with db.write(durable) as session:
            response = work(session)
            if request_id:
                _record(session, volume_id, request_id, response=response.SerializeToString())
            return response
    except FsError as exc:
        if not request_id:
            raise
        failure = exc
    with db.write(durable) as session:
        _record(session, volume_id, request_id, errno=failure.errno)
    raise failure


def run_once(
    db: Database,
    volume_id: str,
    request_id: str,
    reply: type[M],
    work: Callable[[Session], M],
    *,
    durable: bool,
) -> M:
    """Run `work` in a write transaction, once per request id; return its response.
    `durable` says whether the commit waits for stable storage (see Database)."""
    if len(request_id) > REQUEST_ID_MAX_CHARS:
        raise InvalidArgument(f"request ids are at most {REQUEST_ID_MAX_CHARS} characters")
    try:
        return retry_conflicts(
            lambda: _attempt(db, volume_id, request_id, work, durable=durable), _ATTEMPTS
        )
    except IntegrityError:
        # An earlier attempt of this request stored its answer: answer as it did.
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
