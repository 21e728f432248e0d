"""The metadata database: engine set-up, migrations, and one transaction per operation."""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

T = TypeVar("T")
# PostgreSQL's answers when it undid a transaction for a conflict with a
# concurrent one (a row changed since a REPEATABLE READ snapshot; a lock
# cycle): running it again from the start is safe.
_CONFLICTS = frozenset({"40001", "40P01"})
CONSISTENT_ATTEMPTS = 10


def retry_conflicts(attempt: Callable[[], T], attempts: int) -> T:
    """Run `attempt` (one whole transaction) again while PostgreSQL undoes it
    for a conflict, at most `attempts` times in all."""
    while True:
        attempts -= 1
        try:
            return attempt()
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) not in _CONFLICTS or not attempts:
                raise


def _prepare_sqlite(engine: Engine) -> None:
    """WAL for concurrent readers, FULL sync so a durable commit survives power
    loss (NORMAL for a relaxed one), and transactions begun by us so writers
    take the lock up front (no deadlock between two readers that both try to
    upgrade to writers)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if "sqlite_begin" in options:
            # A write: durable unless asked otherwise, whatever the pooled
            # connection did last. Read at commit time; it cannot change
            # inside a transaction.
            conn.exec_driver_sql(f"PRAGMA synchronous={options.get('sqlite_synchronous', 'FULL')}")
        conn.exec_driver_sql(options.get("sqlite_begin", "BEGIN"))


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        _prepare_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("storage_server") / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`, keeping every row already there."""
    command.upgrade(alembic_config(engine), revision)


class Database:
    """Sessions over one engine; `write()` is one transaction that takes the write lock.

    A durable write is on stable storage when its commit returns, and so is
    every commit before it (the log is written in commit order). A relaxed
    write skips waiting for the disk: it survives a crash of this process at
    once, and a crash of the machine from the next durable commit on."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._read = sessionmaker(engine, expire_on_commit=False)
        writer = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        self._write = sessionmaker(writer, expire_on_commit=False)
        self._relaxed_write = sessionmaker(
            writer.execution_options(sqlite_synchronous="NORMAL"), expire_on_commit=False
        )
        # SQLite's write lock already keeps other writers out; PostgreSQL's
        # default READ COMMITTED would let each statement see later commits.
        consistent = (
            writer
            if engine.dialect.name == "sqlite"
            else writer.execution_options(isolation_level="REPEATABLE READ")
        )
        self._consistent = sessionmaker(consistent, expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read.begin() as session:
            yield session

    @contextmanager
    def write(self, durable: bool = True) -> Iterator[Session]:
        maker = self._write if durable else self._relaxed_write
        with maker.begin() as session:
            if not durable and self.engine.dialect.name == "postgresql":
                session.execute(text("SET LOCAL synchronous_commit TO OFF"))
            yield session

    def consistent_write(self, work: Callable[[Session], T]) -> T:
        """Run `work` in a write transaction whose reads all see the database at
        one moment, for copying many rows that others may be changing meanwhile.
        When PostgreSQL cannot serialize it with a concurrent transaction, the
        work is undone and run again."""

        def attempt() -> T:
            with self._consistent.begin() as session:
                return work(session)

        return retry_conflicts(attempt, CONSISTENT_ATTEMPTS)

    def close(self) -> None:
        self.engine.dispose()
