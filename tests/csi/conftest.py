"""A storage server and a CSI plugin (`volctl csi`, all services on one socket)
shared by the tests of a module; each test gets fresh node paths and has what
it created undone as a CO would."""

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.csi.resources import NodePaths, Resources
from tests.harness.csi import CsiPlugin, sweep_mounts
from tests.harness.postgres import fresh_database
from tests.harness.server import StorageServer

BACKENDS = ["sqlite", "postgresql"]


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """A short path (unix sockets allow ~108 bytes) that any user may enter,
    emptied of mounts before it is removed."""
    root = Path(tempfile.mkdtemp(prefix="netvol-csi-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        try:
            sweep_mounts(root)
        finally:
            shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def running(server: StorageServer) -> Iterator[None]:
    try:
        server.start()
        yield
    finally:
        server.stop()


@contextlib.contextmanager
def plugin_on(server: StorageServer, mode: str = "all", *extra: str) -> Iterator[CsiPlugin]:
    """A running plugin with a scratch directory of its own."""
    with scratch_dir() as root:
        plugin = CsiPlugin(server, root / "plugin", mode=mode)
        try:
            plugin.start(*extra)
            yield plugin
        finally:
            plugin.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def storage(request: pytest.FixtureRequest) -> Iterator[StorageServer]:
    """A storage server per module and metadata backend."""
    with contextlib.ExitStack() as stack:
        url = ""
        if request.param == "postgresql":
            admin_url: str = request.getfixturevalue("postgres_admin_url")
            url = stack.enter_context(fresh_database(admin_url))
        server = StorageServer(stack.enter_context(scratch_dir()) / "server", url)
        stack.enter_context(running(server))
        yield server


@pytest.fixture(scope="module")
def sqlite_storage() -> Iterator[StorageServer]:
    """A storage server per module, for the node tests: their subject is the mount."""
    with scratch_dir() as root:
        server = StorageServer(root / "server")
        with running(server):
            yield server


@pytest.fixture
def own_server() -> Iterator[StorageServer]:
    """A storage server for one test, which may stop and start it."""
    with scratch_dir() as root:
        server = StorageServer(root / "server")
        with running(server):
            yield server


@pytest.fixture(scope="module")
def plugin(storage: StorageServer) -> Iterator[CsiPlugin]:
    with plugin_on(storage) as plugin:
        yield plugin


@pytest.fixture(scope="module")
def node_plugin(sqlite_storage: StorageServer) -> Iterator[CsiPlugin]:
    with plugin_on(sqlite_storage) as plugin:
        yield plugin


@pytest.fixture
def node_paths() -> Iterator[NodePaths]:
    with scratch_dir() as root:
        yield NodePaths(root).make()


def _resources(plugin: CsiPlugin, paths: NodePaths) -> Iterator[Resources]:
    made = Resources(plugin, paths)
    yield made
    made.undo()


@pytest.fixture
def resources(plugin: CsiPlugin, node_paths: NodePaths) -> Iterator[Resources]:
    yield from _resources(plugin, node_paths)


@pytest.fixture
def node_resources(node_plugin: CsiPlugin, node_paths: NodePaths) -> Iterator[Resources]:
    yield from _resources(node_plugin, node_paths)
