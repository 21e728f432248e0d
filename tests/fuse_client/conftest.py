"""A storage server and a mount shared by the tests of a module; each test gets its
own empty directory in the mount."""

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.mount import Mount
from tests.harness.server import StorageServer

VOLUME_SIZE = "64Gi"


@pytest.fixture(scope="module")
def fs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorageServer]:
    server = StorageServer(tmp_path_factory.mktemp("server"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def mounted(fs_server: StorageServer) -> Iterator[Mount]:
    created = fs_server.volctl("create", "shared", "--size", VOLUME_SIZE)
    assert created.code == 0, created.err
    # Not under pytest's 0700 temp root: other users must reach the mount.
    base = Path(tempfile.mkdtemp(prefix="netvol-mnt-"))
    base.chmod(0o755)
    mount = Mount(fs_server, "shared", base / "shared")
    try:
        mount.start()
        yield mount
    finally:
        mount.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def fs_root(mounted: Mount) -> Path:
    """An empty directory on the netvol mount that any user may write in."""
    root = mounted.path / uuid.uuid4().hex[:12]
    root.mkdir()
    root.chmod(0o777)
    return root
