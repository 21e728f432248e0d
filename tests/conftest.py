"""Fixtures that start real storage servers, on SQLite and on PostgreSQL."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.postgres import fresh_database, running_postgres
from tests.harness.server import StorageServer

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    with running_postgres() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty metadata database: '' means the server's default SQLite file."""
    if request.param == "sqlite":
        yield ""
        return
    admin_url: str = request.getfixturevalue("postgres_admin_url")
    with fresh_database(admin_url) as url:
        yield url


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[StorageServer]:
    srv = StorageServer(tmp_path / "server", database_url)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
