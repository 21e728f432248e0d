"""Durable and relaxed write transactions, on SQLite and on PostgreSQL."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from storage_server.db import Database, make_engine

# PRAGMA synchronous answers 2 for FULL and 1 for NORMAL.
SQLITE_WAITS = {"FULL": 2, "NORMAL": 1}


@pytest.fixture
def db(tmp_path: Path, database_url: str) -> Iterator[Database]:
    database = Database(make_engine(database_url or f"sqlite:///{tmp_path / 'meta.db'}"))
    try:
        yield database
    finally:
        database.close()


def _waits_for_disk(db: Database, session: Session) -> bool:
    if db.engine.dialect.name == "sqlite":
        level = session.execute(text("PRAGMA synchronous")).scalar()
        assert level in SQLITE_WAITS.values()
        return level == SQLITE_WAITS["FULL"]
    return session.execute(text("SHOW synchronous_commit")).scalar() == "on"


def test_writes_wait_for_the_disk_unless_relaxed(db: Database) -> None:
    # Alternating, so a setting left behind on a pooled connection would show.
    for _ in range(2):
        with db.write() as session:
            assert _waits_for_disk(db, session)
        with db.write(durable=False) as session:
            assert not _waits_for_disk(db, session)
    with db.write() as session:
        assert _waits_for_disk(db, session)


def test_a_consistent_write_waits_for_the_disk_after_a_relaxed_one(db: Database) -> None:
    with db.write(durable=False) as session:
        assert not _waits_for_disk(db, session)
    assert db.consistent_write(lambda session: _waits_for_disk(db, session))
