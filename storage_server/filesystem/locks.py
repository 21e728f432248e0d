"""Advisory locks on files: fcntl record locks and flock, each held by one owner
(the kernel's lock owner) through a lock session (storage_server.sessions).

A lock covers [start, end) of a file; END stands for "to the end of the file,
however far it grows". An owner's locks of one kind on one file never overlap:
taking or releasing a range first cuts the owner's locks out of it, as POSIX
says, and touching locks of one type are merged. Record locks and flock locks
never conflict with each other, as on Linux; a flock is a record lock over the
whole file whose owner is an open file.

Each function is one operation inside the caller's write transaction. Taking a
lock first locks the file's inode row, so that on PostgreSQL two calls on one
file queue instead of both finding no conflict (SQLite's write transaction
already excludes the other). The volume's expired sessions are deleted before
any conflict is looked for.
"""

import enum
import errno
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, exists, select
from sqlalchemy.orm import Session

from storage_server import sessions
from storage_server.errors import FsError
from storage_server.filesystem import inodes
from storage_server.models import FileLock

END = 2**63 - 1
_U64 = 2**64


class Kind(enum.IntEnum):
    RECORD = 1
    FLOCK = 2


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    exclusive: bool


@dataclass(frozen=True)
class Holder:
    """Who holds locks of a kind: an owner as the kernel names it (unsigned 64
    bits) within a session."""

    session_id: str
    owner: int
    kind: Kind

    @property
    def stored_owner(self) -> int:
        """The owner as a signed BIGINT, which both SQLite and PostgreSQL keep."""
        return self.owner - _U64 if self.owner >= _U64 // 2 else self.owner


def kernel_owner(stored: int) -> int:
    return stored + _U64 if stored < 0 else stored


def without(spans: list[Span], start: int, end: int) -> list[Span]:
    """The spans with [start, end) cut out of them (a span across it splits in two)."""
    kept = []
    for span in spans:
        if span.end <= start or span.start >= end:
            kept.append(span)
            continue
        if span.start < start:
            kept.append(Span(span.start, start, span.exclusive))
        if span.end > end:
            kept.append(Span(end, span.end, span.exclusive))
    return kept


def merged(spans: list[Span]) -> list[Span]:
    """Non-overlapping spans with each run of touching same-type spans joined."""
    out: list[Span] = []
    for span in sorted(spans, key=lambda s: s.start):
        last = out[-1] if out else None
        if last is not None and last.exclusive == span.exclusive and last.end == span.start:
            out[-1] = Span(last.start, span.end, span.exclusive)
        else:
            out.append(span)
    return out


def _mine(holder: Holder) -> tuple[ColumnElement[bool], ...]:
    return (
        FileLock.kind == holder.kind,
        FileLock.session_id == holder.session_id,
        FileLock.owner == holder.stored_owner,
    )


def _own(session: Session, ino: int, holder: Holder) -> tuple[list[Span], int]:
    """The holder's locks on the file, and the process that took them."""
    rows = list(session.scalars(select(FileLock).where(FileLock.ino == ino, *_mine(holder))))
    return [Span(row.range_start, row.range_end, row.exclusive) for row in rows], (
        rows[0].pid if rows else 0
    )


def _store(session: Session, ino: int, holder: Holder, spans: list[Span], pid: int) -> None:
    """Make `spans` the holder's locks on the file."""
    session.execute(delete(FileLock).where(FileLock.ino == ino, *_mine(holder)))
    session.add_all(
        FileLock(
            ino=ino,
            kind=holder.kind,
            session_id=holder.session_id,
            owner=holder.stored_owner,
            range_start=span.start,
            range_end=span.end,
            exclusive=span.exclusive,
            pid=pid,
        )
        for span in spans
    )


def _conflict(session: Session, ino: int, holder: Holder, span: Span) -> FileLock | None:
    query = select(FileLock).where(
        FileLock.ino == ino,
        FileLock.kind == holder.kind,
        FileLock.range_start < span.end,
        FileLock.range_end > span.start,
        ~((FileLock.session_id == holder.session_id) & (FileLock.owner == holder.stored_owner)),
    )
    if not span.exclusive:
        query = query.where(FileLock.exclusive)  # read locks share
    return session.scalars(query.order_by(FileLock.range_start).limit(1)).first()


def acquire(
    session: Session, volume_id: str, ino: int, holder: Holder, span: Span, *, pid: int
) -> FileLock | None:
    """Take the lock and return None, or return a lock that conflicts with it."""
    inodes.lock(session, volume_id, ino)
    if sessions.live(session, volume_id, holder.session_id) is None:
        raise FsError(errno.ENOLCK, "the lock session has expired; its locks are gone")
    found = _conflict(session, ino, holder, span)
    if found is not None:
        if holder.kind is Kind.FLOCK:
            # Linux drops a flock that is being converted before it waits.
            _store(session, ino, holder, [], pid)
        return found
    own, _ = _own(session, ino, holder)
    _store(session, ino, holder, merged([*without(own, span.start, span.end), span]), pid)
    return None


def release(
    session: Session, volume_id: str, ino: int, holder: Holder, *, start: int, end: int
) -> bool:
    """Unlock [start, end) of the holder's locks on the file; say whether it
    still holds locks of this kind on any file."""
    # The inode first, so that an acquire under way commits before this reads.
    inodes.lock_found(session, volume_id, [ino])
    held, pid = _own(session, ino, holder)
    kept = without(held, start, end)
    if kept != held:
        _store(session, ino, holder, kept, pid)
    return bool(session.scalar(select(exists().where(*_mine(holder)))))


def conflicting(
    session: Session, volume_id: str, ino: int, holder: Holder, span: Span
) -> FileLock | None:
    """A lock of another owner that conflicts with `span`, if any."""
    inodes.get(session, volume_id, ino)
    sessions.prune(session, volume_id)
    return _conflict(session, ino, holder, span)
