"""The block map: where each byte of a file lives, as non-overlapping slices.

A write first cuts the range it covers out of the map (trimming or splitting
the slices it overlaps), then inserts its own slices; truncation cuts from the
new size on. So a read never resolves overlaps, and the bytes a file holds are
the sum of its slice lengths. Only slices that can overlap a range are touched:
those starting inside it and the last one starting before it, both found
through the (ino, offset) primary key.
"""

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Select, delete, func, insert, select
from sqlalchemy.orm import Session

from storage_server.models import Slice

MAX_FILE_SIZE = 2**63 - 1


@dataclass(frozen=True)
class Extent:
    """Bytes [offset, offset+length) of a file: a range of a blob, or inline data."""

    offset: int
    length: int
    blob_id: str | None = None
    blob_offset: int = 0
    data: bytes | None = None

    @property
    def end(self) -> int:
        return self.offset + self.length

    def part(self, start: int, end: int) -> "Extent":
        """The piece of this extent that covers [start, end), a range inside it."""
        shift = start - self.offset
        return Extent(
            start,
            end - start,
            self.blob_id,
            self.blob_offset + shift if self.blob_id else 0,
            None if self.data is None else self.data[shift : shift + end - start],
        )


_COLUMNS = (Slice.offset, Slice.length, Slice.blob_id, Slice.blob_offset, Slice.data)


def _extent(row: Any) -> Extent:
    return Extent(row.offset, row.length, row.blob_id, row.blob_offset, row.data)


def _overlapping_before(session: Session, ino: int, start: int) -> Extent | None:
    """The slice that starts before `start` and reaches past it, if there is one."""
    row = session.execute(
        select(*_COLUMNS)
        .where(Slice.ino == ino, Slice.offset < start)
        .order_by(Slice.offset.desc())
        .limit(1)
    ).one_or_none()
    extent = None if row is None else _extent(row)
    return extent if extent is not None and extent.end > start else None


def _starting_in(ino: int, start: int, end: int) -> Select[Any]:
    """Slices starting in [start, end), to be given columns."""
    return select().where(Slice.ino == ino, Slice.offset >= start, Slice.offset < end)


def cut(session: Session, ino: int, start: int, end: int) -> int:
    """Remove [start, end) from the file's map; return how many bytes it held there."""
    before = _overlapping_before(session, ino, start)
    inside = _starting_in(ino, start, end)
    last_row = session.execute(
        inside.add_columns(*_COLUMNS).order_by(Slice.offset.desc()).limit(1)
    ).one_or_none()
    if before is None and last_row is None:
        return 0
    removed = 0
    keep = []
    if before is not None:
        removed += min(before.end, end) - start
        keep.append(before.part(before.offset, start))
        if before.end > end:
            keep.append(before.part(end, before.end))
    if last_row is not None:
        # int(): PostgreSQL sums bigints as numeric.
        removed += int(session.scalar(inside.add_columns(func.sum(Slice.length))) or 0)
        last = _extent(last_row)
        if last.end > end:
            removed -= last.end - end
            keep.append(last.part(end, last.end))
    first = before.offset if before is not None else start
    session.execute(
        delete(Slice).where(Slice.ino == ino, Slice.offset >= first, Slice.offset < end)
    )
    _insert(session, ino, keep)
    return removed


def _insert(session: Session, ino: int, extents: list[Extent]) -> None:
    if extents:
        session.execute(insert(Slice), [{"ino": ino, **asdict(e)} for e in extents])


def put(session: Session, ino: int, extent: Extent) -> int:
    """Point the extent's range of the file at it; return the change in bytes held."""
    removed = cut(session, ino, extent.offset, extent.end)
    _insert(session, ino, [extent])
    return extent.length - removed


def truncate(session: Session, ino: int, size: int) -> int:
    """Drop the file's data from `size` on; return how many bytes that freed."""
    return cut(session, ino, size, MAX_FILE_SIZE)


def plan(session: Session, ino: int, start: int, end: int) -> list[Extent]:
    """The slices holding any of [start, end), in file order; gaps between them are holes."""
    before = _overlapping_before(session, ino, start)
    rows = session.execute(
        _starting_in(ino, start, end).add_columns(*_COLUMNS).order_by(Slice.offset)
    )
    return ([before] if before is not None else []) + [_extent(r) for r in rows]
