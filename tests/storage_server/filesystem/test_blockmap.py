"""The block map against a model (a bytearray and a mask of held bytes): any mix
of writes (each a batch of possibly overlapping extents, inline or in blobs) and
truncations reads back as the model says, holds exactly the bytes written, and
never has overlapping slices. The in-memory steps of a write, flatten and
overlay, are checked against the same kind of model on their own."""

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from storage_server.db import Database, make_engine, migrate
from storage_server.filesystem import blockmap, data, inodes
from storage_server.filesystem.blobs import LocalBlobStore
from storage_server.filesystem.blockmap import Extent
from storage_server.models import Slice
from storage_server.volumes import VolumeStore


@dataclass
class Store:
    db: Database
    blobs: LocalBlobStore
    volume_id: str


@pytest.fixture
def store(tmp_path: Path, database_url: str) -> Iterator[Store]:
    db = Database(make_engine(database_url or f"sqlite:///{tmp_path / 'm.db'}"))
    migrate(db.engine)
    volume = VolumeStore(db, tmp_path / "blobs", 2**50).create("v", 2**40, {})
    try:
        yield Store(db, LocalBlobStore(tmp_path / "blobs"), volume.id)
    finally:
        db.close()


PIECE = st.tuples(st.integers(0, 300), st.binary(min_size=1, max_size=100), st.booleans())
WRITE = st.tuples(st.just("write"), st.just(0), st.lists(PIECE, min_size=1, max_size=6))
NO_PIECES: list[tuple[int, bytes, bool]] = []
TRUNCATE = st.tuples(st.just("truncate"), st.integers(0, 400), st.just(NO_PIECES))
Op = tuple[str, int, list[tuple[int, bytes, bool]]]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.one_of(WRITE, WRITE, TRUNCATE), max_size=25))
def test_block_map_matches_a_model(
    store: Store, monkeypatch: pytest.MonkeyPatch, ops: list[Op]
) -> None:
    # Tiny batches, so that a write's look-ups and deletions span several statements.
    monkeypatch.setattr(blockmap, "RANGES_PER_QUERY", 2)
    monkeypatch.setattr(blockmap, "SLICES_PER_DELETE", 3)
    with store.db.write() as session:
        ino = inodes.create(session, store.volume_id, 0o100644, 0, 0).ino
    content = bytearray()
    held = bytearray()
    allocated = 0
    for kind, size, pieces in ops:
        if kind == "truncate":
            with store.db.write() as session:
                allocated -= blockmap.truncate(session, ino, size)
            del content[size:], held[size:]
            content += bytes(size - len(content))
            held += bytes(size - len(held))
            continue
        extents = [
            Extent(offset, len(payload), blob_id=store.blobs.put([payload]))
            if in_blob
            else Extent(offset, len(payload), data=payload)
            for offset, payload, in_blob in pieces
        ]
        with store.db.write() as session:
            allocated += blockmap.write(session, ino, blockmap.flatten(extents))
        for offset, payload, _ in pieces:
            end = offset + len(payload)
            if end > len(content):
                content += bytes(end - len(content))
                held += bytes(end - len(held))
            content[offset:end] = payload
            held[offset:end] = b"\1" * len(payload)

    assert b"".join(data.read_range(store.db, store.blobs, ino, 0, len(content))) == content
    assert allocated == sum(held)
    with store.db.read() as session:
        slices = session.execute(
            select(Slice.offset, Slice.length).where(Slice.ino == ino).order_by(Slice.offset)
        ).all()
    assert sum(length for _, length in slices) == allocated
    for (offset, length), (next_offset, _) in itertools.pairwise(slices):
        assert offset + length <= next_offset
    assert all(length > 0 for _, length in slices)


def _paint(extents: list[Extent], size: int) -> tuple[bytearray, bytearray]:
    """The bytes and the mask of held bytes the extents give, later over earlier."""
    content, held = bytearray(size), bytearray(size)
    for e in extents:
        content[e.offset : e.end] = e.data or b""
        held[e.offset : e.end] = b"\1" * e.length
    return content, held


INLINE = st.builds(
    lambda offset, payload: Extent(offset, len(payload), data=payload),
    st.integers(0, 200),
    st.binary(min_size=1, max_size=60),
)


def _disjoint(extents: list[Extent]) -> None:
    for a, b in itertools.pairwise(extents):
        assert a.end <= b.offset
    assert all(e.length > 0 for e in extents)


@given(st.lists(INLINE, max_size=30))
def test_flatten_keeps_the_latest_bytes_in_file_order(extents: list[Extent]) -> None:
    flat = blockmap.flatten(extents)
    _disjoint(flat)
    assert _paint(flat, 300) == _paint(extents, 300)
    assert all(e.data is not None and len(e.data) == e.length for e in flat)


@given(st.lists(INLINE, max_size=15), st.lists(INLINE, max_size=15))
def test_overlay_cuts_exactly_the_covered_bytes(old: list[Extent], new: list[Extent]) -> None:
    old, new = blockmap.flatten(old), blockmap.flatten(new)
    replaced, kept, covered = blockmap.overlay(old, new)
    untouched = [e for e in old if e not in replaced]
    after = sorted([*untouched, *kept, *new], key=lambda e: e.offset)
    _disjoint(after)
    assert _paint(after, 300) == _paint([*old, *new], 300)
    assert covered == sum(e.length for e in replaced) - sum(e.length for e in kept)
    # A slice is replaced only when a new extent reaches into it.
    assert all(any(n.offset < r.end and r.offset < n.end for n in new) for r in replaced)
