"""Lock sessions: a mount's claim to its advisory locks, kept by renewing a lease.

A mount opens a session before its first lock and renews it well within the
lease. A session whose lease ran out is gone with its locks: its mount died or
was cut off, and the other nodes must not wait for it for ever. Expired
sessions are moved to the lapsed ones by the lock call that finds them (before
it looks for conflicts, in the same transaction) and by a background job, and
never come back: a lock granted over an expired session's lock means that
session lapsed first.

A lapsed session keeps one claim for the orphan grace: to the files its mount
had open when their last name went (fuse_client.orphans). A mount that was only
cut off finds them still there when it is back, and moves them to a new
session; a dead mount's go once the grace is over.

The server's clock decides. When a server starts, every session left gets at
least one more lease, since no mount could renew while the server was down.
"""

import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, delete, insert, select, update
from sqlalchemy.orm import Session

from storage_server.db import Database
from storage_server.errors import InvalidArgument
from storage_server.filesystem.inodes import require_volume
from storage_server.models import LOCK_CLIENT_MAX_CHARS, LapsedSession, LockSession


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


def _lapse(session: Session, *where: ColumnElement[bool]) -> int:
    """Move the sessions (those `where` picks) whose lease ran out to the lapsed
    ones; their locks go by ON DELETE CASCADE. Returns how many."""
    rows = session.execute(
        select(LockSession.id, LockSession.volume_id, LockSession.client, LockSession.expires_at)
        .where(LockSession.expires_at < _now(), *where)
        .with_for_update()
    ).all()
    if rows:
        session.execute(
            insert(LapsedSession),
            [
                {"id": id_, "volume_id": volume, "client": client, "lapsed_at": expired}
                for id_, volume, client, expired in rows
            ],
        )
        session.execute(delete(LockSession).where(LockSession.id.in_([row.id for row in rows])))
    return len(rows)


def prune(session: Session, volume_id: str) -> None:
    """Lapse the volume's expired sessions."""
    _lapse(session, LockSession.volume_id == volume_id)


def live(session: Session, volume_id: str, session_id: str) -> LockSession | None:
    """The session, unless it is gone or expired (an expired one lapses now)."""
    prune(session, volume_id)
    row = session.get(LockSession, session_id)
    return row if row is not None and row.volume_id == volume_id else None


# The most session ids one liveness question may name: a bounded statement.
LIVE_QUERY_MAX = 1000


def claims(
    db: Database, volume_id: str, session_ids: Collection[str], orphan_grace: float
) -> tuple[list[str], list[str]]:
    """Of `session_ids`, the volume's live sessions, and those that lapsed less
    than `orphan_grace` seconds ago."""
    if len(session_ids) > LIVE_QUERY_MAX:
        raise InvalidArgument(f"ask about at most {LIVE_QUERY_MAX} sessions at a time")
    now = _now()
    since = now - timedelta(seconds=orphan_grace)
    asked = set(session_ids)
    mine = (LockSession.volume_id == volume_id, LockSession.id.in_(asked))
    with db.read() as session:
        live = session.scalars(select(LockSession.id).where(*mine, LockSession.expires_at >= now))
        # Expired, but no lock call nor the background job has lapsed them yet.
        expired = session.scalars(
            select(LockSession.id).where(
                *mine, LockSession.expires_at < now, LockSession.expires_at >= since
            )
        )
        lapsed = session.scalars(
            select(LapsedSession.id).where(
                LapsedSession.volume_id == volume_id,
                LapsedSession.id.in_(asked),
                LapsedSession.lapsed_at >= since,
            )
        )
        return list(live), [*expired, *lapsed]


def renew(db: Database, volume_id: str, session_id: str, lease_seconds: float) -> bool:
    """Extend the lease by `lease_seconds` from now; False if the session is gone."""
    with db.write() as session:
        row = live(session, volume_id, session_id)
        if row is None:
            return False
        row.expires_at = _now() + timedelta(seconds=lease_seconds)
        return True


def close(db: Database, volume_id: str, session_id: str) -> None:
    """End the session (live or lapsed): its mount is done with its locks and orphans."""
    with db.write() as session:
        for table in (LockSession, LapsedSession):
            session.execute(
                delete(table).where(table.id == session_id, table.volume_id == volume_id)
            )


def expire(db: Database, orphan_grace: float) -> int:
    """Lapse every expired session, of all volumes, and forget those that lapsed
    more than `orphan_grace` seconds ago; return how many lapsed now."""
    since = _now() - timedelta(seconds=orphan_grace)
    with db.write() as session:
        count = _lapse(session)
        session.execute(delete(LapsedSession).where(LapsedSession.lapsed_at < since))
        return count


def grace(db: Database, lease_seconds: float) -> None:
    """Give every session at least one lease from now (the server just started)."""
    floor = _now() + timedelta(seconds=lease_seconds)
    with db.write() as session:
        session.execute(
            update(LockSession).where(LockSession.expires_at < floor).values(expires_at=floor)
        )
