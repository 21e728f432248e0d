"""The block map: where each byte of a file lives, as non-overlapping slices.

A write points the ranges it covers at its own slices: the slices they overlap
are read in a few statements, cut in memory (trimmed, split or dropped) and
replaced, in bulk, by what is left of them plus the new slices. Truncation cuts
from the new size on. So a read never resolves overlaps, and the bytes a file
holds are the sum of its slice lengths. Only slices that can overlap a range
are touched: those starting inside it and the last one starting before it,
both found through the (ino, offset) primary key.
"""

import functools
import heapq
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    BindParameter,
    CompoundSelect,
    Select,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from storage_server.models import Slice, table_of

T = TypeVar("T")

MAX_FILE_SIZE = 2**63 - 1
# Ranges looked up per statement (SQLite takes at most 500 SELECTs in a UNION,
# and each range takes three parameters), and slices deleted per statement
# (one parameter each).
RANGES_PER_QUERY = 100
SLICES_PER_DELETE = 500


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


_SLICES = table_of(Slice)
_COLUMNS = (Slice.offset, Slice.length, Slice.blob_id, Slice.blob_offset, Slice.data)


def _batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _extent(row: Any) -> Extent:
    return Extent(row.offset, row.length, row.blob_id, row.blob_offset, row.data)


def flatten(extents: Iterable[Extent]) -> list[Extent]:
    """Extents in the order they were written, as disjoint extents in file order:
    where two overlap, the later one's bytes win. O(n log n) in any order."""
    items = [e for e in extents if e.length > 0]
    if all(a.end <= b.offset for a, b in itertools.pairwise(items)):
        return items  # what a client sends: already disjoint and in order
    # Between two consecutive edges, the latest extent that covers the gap wins.
    edges = sorted({edge for e in items for edge in (e.offset, e.end)})
    by_start = sorted(range(len(items)), key=lambda i: items[i].offset)
    covering: list[int] = []  # a heap of -index: the latest write on top
    out: list[Extent] = []
    last_winner = -1
    started = 0
    for low, high in itertools.pairwise(edges):
        while started < len(by_start) and items[by_start[started]].offset <= low:
            heapq.heappush(covering, -by_start[started])
            started += 1
        while covering and items[-covering[0]].end <= low:
            heapq.heappop(covering)
        if not covering:
            continue  # a hole between writes
        winner = -covering[0]
        if winner == last_winner and out[-1].end == low:
            out[-1] = items[winner].part(out[-1].offset, high)
        else:
            out.append(items[winner].part(low, high))
        last_winner = winner
    return out


def overlay(old: Sequence[Extent], new: Sequence[Extent]) -> tuple[list[Extent], list[Extent], int]:
    """Lay disjoint `new` extents over disjoint `old` slices, both in file order.

    Returns the old slices that overlap the new ones, what is left of those
    outside the new ones, and how many bytes of them the new ones cover."""
    replaced: list[Extent] = []
    kept: list[Extent] = []
    covered = 0
    first = 0
    for slice_ in old:
        while first < len(new) and new[first].end <= slice_.offset:
            first += 1
        cursor = slice_.offset
        index = first
        while index < len(new) and new[index].offset < slice_.end:
            extent = new[index]
            if extent.offset > cursor:
                kept.append(slice_.part(cursor, extent.offset))
            covered += min(extent.end, slice_.end) - max(extent.offset, cursor)
            cursor = min(extent.end, slice_.end)
            index += 1
        if index == first:
            continue  # no new extent reaches into this slice
        if cursor < slice_.end:
            kept.append(slice_.part(cursor, slice_.end))
        replaced.append(slice_)
    return replaced, kept, covered


@functools.lru_cache(maxsize=RANGES_PER_QUERY)
def _overlapping_query(ranges: int) -> CompoundSelect[Any]:
    """Slices starting in any of `ranges` ranges [floor(s), e): floor(s) is where
    the last slice starting before s starts (s itself when there is none).
    Parameters: ino, and s0, e0, s1, e1, ... One SELECT per range, so that each
    is a search of the primary key whatever the planner knows of the table.
    Built once per number of ranges: building it costs more than running it.

    Inline bytes come only with a slice that reaches into the range and out of
    it, since only such a slice keeps some of them; the others would be read
    only to be dropped."""
    other = _SLICES.alias("before")
    ino = bindparam("ino", type_=BigInteger())
    offset, length = _SLICES.c.offset, _SLICES.c.length
    selects = []
    for i in range(ranges):
        start = bindparam(f"s{i}", type_=BigInteger())
        end = bindparam(f"e{i}", type_=BigInteger())
        before = (
            select(func.max(other.c.offset))
            .where(other.c.ino == ino, other.c.offset < start)
            .scalar_subquery()
        )
        partly_kept = and_(offset + length > start, or_(offset < start, offset + length > end))
        data = case((and_(_SLICES.c.blob_id.is_(None), partly_kept), _SLICES.c.data))
        selects.append(
            select(
                offset, length, _SLICES.c.blob_id, _SLICES.c.blob_offset, data.label("data")
            ).where(_SLICES.c.ino == ino, offset >= func.coalesce(before, start), offset < end)
        )
    return union_all(*selects)


def _overlapping(session: Session, ino: int, extents: Sequence[Extent]) -> list[Extent]:
    """The slices that may overlap any of the extents (and a few that end just
    before one), in file order; inline ones with their bytes where some may be kept."""
    found: dict[int, Extent] = {}
    for batch in _batches(extents, RANGES_PER_QUERY):
        # A short batch repeats its last range up to a power of two, so that a
        # few statements serve every size (a duplicate range finds duplicates).
        ranges = min(1 << (len(batch) - 1).bit_length(), RANGES_PER_QUERY)
        params: dict[str, int] = {"ino": ino}
        for i in range(ranges):
            e = batch[min(i, len(batch) - 1)]
            params[f"s{i}"], params[f"e{i}"] = e.offset, e.end
        for row in session.execute(_overlapping_query(ranges), params):
            # A slice two ranges reach comes twice, with its bytes if either needs them.
            if row.data is not None or row.offset not in found:
                found[row.offset] = _extent(row)
    return [found[offset] for offset in sorted(found)]


def write(session: Session, ino: int, extents: Sequence[Extent]) -> int:
    """Point the ranges of disjoint extents, in file order, at them; return the
    change in bytes held."""
    replaced, kept, covered = overlay(_overlapping(session, ino, extents), extents)
    if any(part.blob_id is None and part.data is None for part in kept):
        raise RuntimeError(f"inode {ino}: the bytes of a trimmed inline slice were not read")
    offsets: BindParameter[list[int]] = bindparam("offsets", expanding=True)
    removing = delete(_SLICES).where(_SLICES.c.ino == ino, _SLICES.c.offset.in_(offsets))
    for batch in _batches(replaced, SLICES_PER_DELETE):
        session.execute(removing, {"offsets": [s.offset for s in batch]})
    _insert(session, ino, [*kept, *extents])
    return sum(e.length for e in extents) - covered


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


def truncate(session: Session, ino: int, size: int) -> int:
    """Drop the file's data from `size` on; return how many bytes that freed."""
    return cut(session, ino, size, MAX_FILE_SIZE)


def _insert(session: Session, ino: int, extents: list[Extent]) -> None:
    if extents:
        rows = [
            {
                "ino": ino,
                "offset": e.offset,
                "length": e.length,
                "blob_id": e.blob_id,
                "blob_offset": e.blob_offset,
                "data": e.data,
            }
            for e in extents
        ]
        session.execute(insert(_SLICES), rows)


def plan(session: Session, ino: int, start: int, end: int) -> list[Extent]:
    """The slices holding any of [start, end), in file order; gaps between them are holes."""
    before = _overlapping_before(session, ino, start)
    rows = session.execute(
        _starting_in(ino, start, end).add_columns(*_COLUMNS).order_by(Slice.offset)
    )
    return ([before] if before is not None else []) + [_extent(r) for r in rows]
