"""The block map against a model (a bytearray and a mask of held bytes): any mix
of writes, inline or in blobs, and truncations reads back as the model says,
holds exactly the bytes written, and never has overlapping slices."""

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


WRITE = st.tuples(
    st.just("write"), st.integers(0, 300), st.binary(min_size=1, max_size=100), st.booleans()
)
TRUNCATE = st.tuples(st.just("truncate"), st.integers(0, 400), st.just(b""), st.just(False))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.one_of(WRITE, WRITE, TRUNCATE), max_size=25))
def test_block_map_matches_a_model(store: Store, ops: list[tuple[str, int, bytes, bool]]) -> None:
    with store.db.write() as session:
        ino = inodes.create(session, store.volume_id, 0o100644, 0, 0).id
    content = bytearray()
    held = bytearray()
    allocated = 0
    for kind, offset, payload, in_blob in ops:
        with store.db.write() as session:
            if kind == "truncate":
                allocated -= blockmap.truncate(session, ino, offset)
                del content[offset:], held[offset:]
                content += bytes(offset - len(content))
                held += bytes(offset - len(held))
                continue
            extent = (
                Extent(offset, len(payload), blob_id=store.blobs.put(payload))
                if in_blob
                else Extent(offset, len(payload), data=payload)
            )
            allocated += blockmap.put(session, ino, extent)
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
