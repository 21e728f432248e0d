"""Copying one volume's files into another, empty, volume: what a snapshot, a
restore from a snapshot and a clone all are.

The inodes are copied under new numbers (inode numbers are unique across
volumes), then their directory entries, slices and extended attributes with
the numbers mapped. A slice row names an immutable blob, so the copy shares
the file data instead of copying it; only inline data, which is part of the
row, is copied. Rows move a batch at a time, in key order, so memory holds one
batch and the number map. The caller's transaction must see one moment of the
source (Database.consistent_write), or the copy could be torn.

A copy names blobs in rows nobody else sees before it commits, so it holds
the collector gate (models.CollectorGate) shared until then: the collector
waits, and a collection that got in first makes the copy run again.
"""

from typing import Any, NamedTuple

from sqlalchemy import Table, func, insert, select, tuple_
from sqlalchemy.orm import Session

from storage_server.filesystem import collector
from storage_server.models import Dentry, Inode, Slice, Volume, Xattr, table_of

# Slices may carry up to inline_max bytes each, so a batch stays a few tens of MiB.
BATCH = 500


class _Belonging(NamedTuple):
    """Rows of a table that belong to inodes, keyed by (owner, second)."""

    table: Table
    owner: str
    second: str
    # The columns that name inodes, to be mapped to the copy's numbers.
    renumbered: tuple[str, ...]


_INODES = table_of(Inode)
_INODE_FIELDS = [c for c in _INODES.c if c.name not in ("id", "volume_id")]
_BELONGING = [
    _Belonging(table_of(Dentry), "parent_ino", "name", ("parent_ino", "child_ino")),
    _Belonging(table_of(Slice), "ino", "offset", ("ino",)),
    _Belonging(table_of(Xattr), "ino", "name", ("ino",)),
]


def copy_tree(session: Session, source: Volume, target: Volume) -> None:
    """Give `target`, a flushed volume without inodes, a copy of the files of
    `source`; its root and its used bytes become the copy's."""
    collector.hold_gate(session)
    numbers = _copy_inodes(session, source.id, target.id)
    for belonging in _BELONGING:
        _copy_rows(session, source.id, numbers, belonging)
    target.root_ino = numbers[source.root_ino]
    # int(): PostgreSQL sums bigints as numeric.
    target.used_bytes = int(
        session.scalar(
            select(func.coalesce(func.sum(Slice.length), 0))
            .join(Inode, Inode.id == Slice.ino)
            .where(Inode.volume_id == target.id)
        )
        or 0
    )


def _copy_inodes(session: Session, source_id: str, target_id: str) -> dict[int, int]:
    """Copy the inodes; return the copy's number for each source inode number."""
    numbers: dict[int, int] = {}
    query = select(_INODES.c.id, *_INODE_FIELDS).where(_INODES.c.volume_id == source_id)
    last = 0
    while rows := session.execute(
        query.where(_INODES.c.id > last).order_by(_INODES.c.id).limit(BATCH)
    ).all():
        fresh = session.scalars(
            insert(_INODES).returning(_INODES.c.id, sort_by_parameter_order=True),
            [
                {"volume_id": target_id, **{c.name: getattr(row, c.name) for c in _INODE_FIELDS}}
                for row in rows
            ],
        ).all()
        numbers.update(zip((row.id for row in rows), fresh, strict=True))
        last = rows[-1].id
    return numbers


def _copy_rows(
    session: Session, source_id: str, numbers: dict[int, int], belonging: _Belonging
) -> None:
    table = belonging.table
    owner, second = table.c[belonging.owner], table.c[belonging.second]
    query = (
        select(table)
        .join(_INODES, _INODES.c.id == owner)
        .where(_INODES.c.volume_id == source_id)
        .order_by(owner, second)
        .limit(BATCH)
    )
    after: tuple[Any, Any] | None = None
    while rows := session.execute(
        query if after is None else query.where(tuple_(owner, second) > tuple_(*after))
    ).all():
        copies = [row._asdict() for row in rows]
        for copy in copies:
            copy.update({column: numbers[copy[column]] for column in belonging.renumbered})
        session.execute(insert(table), copies)
        last = rows[-1]._mapping
        after = (last[owner], last[second])
