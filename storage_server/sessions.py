"""Lock sessions: a mount's claim to its advisory locks, kept by renewing a lease.

A mount opens a session before its first lock and renews it well within the
lease. A session whose lease ran out is gone with its locks: its mount died or
was cut off, and the other nodes must not wait for it for ever. Expired
sessions are deleted by the lock call that finds them (before it looks for
conflicts, in the same transaction) and by a background job, and never come
back: a lock granted over an expired session's lock means that session was
deleted first.

The server's clock decides. When a server starts, every session left gets at
least one more lease, since no mount could renew while the server was down.
"""

import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from storage_server.db import Database
from storage_server.errors import InvalidArgument
from storage_server.filesystem.inodes import require_volume
from storage_server.models import LOCK_CLIENT_MAX_CHARS, LockSession


def _now() -> datetime:
    return datetime.now(UTC)


def open_session(db: Database, volume_id: str, client: str, lease_seconds: float) -> str:
    """A new session of the volume; returns its id."""
    if len(client) > LOCK_CLIENT_MAX_CHARS:
        raise InvalidArgument(f"client names are at most {LOCK_CLIENT_MAX_CHARS} characters")
    with db.write() as session:
        require_volume(session, volume_id)
        now = _now()
        row = LockSession(
            id=uuid.uuid4().hex,
            volume_id=volume_id,
            client=client,
            created_at=now,
            expires_at=now + timedelta(seconds=lease_seconds),
        )
        session.add(row)
        return row.id


def prune(session: Session, volume_id: str) -> None:
    """Delete the volume's expired sessions; their locks go by ON DELETE CASCADE."""
    session.execute(
        delete(LockSession).where(
            LockSession.volume_id == volume_id, LockSession.expires_at < _now()
        )
    )


def live(session: Session, volume_id: str, session_id: str) -> LockSession | None:
    """The session, unless it is gone or expired (an expired one is deleted now)."""
    prune(session, volume_id)
    row = session.get(LockSession, session_id)
    return row if row is not None and row.volume_id == volume_id else None


# The most session ids one liveness question may name: a bounded statement.
LIVE_QUERY_MAX = 1000


def live_among(db: Database, volume_id: str, session_ids: Collection[str]) -> list[str]:
    """The ids among `session_ids` of the volume's sessions whose lease has not run out."""
    if len(session_ids) > LIVE_QUERY_MAX:
        raise InvalidArgument(f"ask about at most {LIVE_QUERY_MAX} sessions at a time")
    with db.read() as session:
        return list(
            session.scalars(
                select(LockSession.id).where(
                    LockSession.volume_id == volume_id,
                    LockSession.id.in_(set(session_ids)),
                    LockSession.expires_at >= _now(),
                )
            )
        )


def renew(db: Database, volume_id: str, session_id: str, lease_seconds: float) -> bool:
    """Extend the lease by `lease_seconds` from now; False if the session is gone."""
    with db.write() as session:
        row = live(session, volume_id, session_id)
        if row is None:
            return False
        row.expires_at = _now() + timedelta(seconds=lease_seconds)
        return True


def close(db: Database, volume_id: str, session_id: str) -> None:
    with db.write() as session:
        session.execute(
            delete(LockSession).where(
                LockSession.id == session_id, LockSession.volume_id == volume_id
            )
        )


def expire(db: Database) -> int:
    """Delete every expired session, of all volumes; return how many."""
    with db.write() as session:
        result = session.execute(delete(LockSession).where(LockSession.expires_at < _now()))
        return cast(CursorResult[Any], result).rowcount


def grace(db: Database, lease_seconds: float) -> None:
    """Give every session at least one lease from now (the server just started)."""
    floor = _now() + timedelta(seconds=lease_seconds)
    with db.write() as session:
        session.execute(
            update(LockSession).where(LockSession.expires_at < floor).values(expires_at=floor)
        )
