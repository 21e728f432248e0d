"""Servers shared by the tests of one module, on SQLite and PostgreSQL.

Starting a server costs far more than most of these tests, and each test works
in a volume of its own, so a module's tests share one server per backend (and
per way of storing data); tests that need a server to themselves use `server`.
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage_server.db import Database, make_engine
from tests.conftest import BACKENDS
from tests.harness.postgres import fresh_database
from tests.harness.server import StorageServer
from tests.harness.volume import Volume


@pytest.fixture(scope="module", params=BACKENDS)
def module_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield ""
        return
    with fresh_database(request.getfixturevalue("postgres_admin_url")) as url:
        yield url


@contextlib.contextmanager
def _serving(data_dir: Path, database_url: str, *args: str) -> Iterator[StorageServer]:
    srv = StorageServer(data_dir, database_url, extra_args=args)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def shared_server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str
) -> Iterator[StorageServer]:
    with _serving(tmp_path_factory.mktemp("server"), module_database_url) as srv:
        yield srv


@pytest.fixture(scope="module", params=["inline", "blobs"])
def any_store_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    module_database_url: str,
) -> Iterator[StorageServer]:
    """A server that keeps small extents inline, or one that puts everything in blobs."""
    args = ("--inline-max", "0") if request.param == "blobs" else ()
    with _serving(tmp_path_factory.mktemp("server"), module_database_url, *args) as srv:
        yield srv


@pytest.fixture
def db(server: StorageServer) -> Iterator[Database]:
    """The metadata database of the test's own server, opened beside it."""
    database = Database(make_engine(server.resolved_database_url))
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def vol(shared_server: StorageServer) -> Volume:
    """A new volume of its own on the module's server."""
    return Volume(shared_server)
