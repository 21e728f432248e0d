"""What the server logs per call: admin calls at info level, the data path
(mount calls) and health probes only at debug level, so a busy mount does not
flood the log."""

import re
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from proto.netvol.v1 import admin_pb2 as pb
from proto.netvol.v1 import filesystem_pb2 as fpb
from tests.harness.server import StorageServer

LINE = re.compile(r"level=(\w+) logger=storage_server.rpc msg=rpc method=(\w+) .*code=(\w+)")


# The harness's readiness probe is a health Check.
QUIET_CALLS = {
    ("debug", "Check", "OK"),
    ("debug", "OpenVolume", "OK"),
    ("debug", "GetAttr", "OK"),
    ("debug", "Lookup", "NOT_FOUND"),
}


@pytest.fixture(params=["info", "debug"])
def level(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def leveled(level: str, tmp_path: Path) -> Iterator[StorageServer]:
    server = StorageServer(tmp_path / "server", extra_args=("--log-level", level))
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _calls(server: StorageServer) -> set[tuple[str, str, str]]:
    return {(m[1], m[2], m[3]) for m in LINE.finditer(server.log_path.read_text())}


def test_admin_calls_at_info_mount_calls_at_debug(level: str, leveled: StorageServer) -> None:
    volume = leveled.admin().CreateVolume(pb.CreateVolumeRequest(name="data", size_bytes=10**9))
    fs = leveled.filesystem()
    opened = fs.OpenVolume(fpb.OpenVolumeRequest(name="data"))
    fs.GetAttr(fpb.GetAttrRequest(volume_id=volume.id, ino=opened.root_ino))
    with pytest.raises(grpc.RpcError):
        fs.Lookup(fpb.LookupRequest(volume_id=volume.id, parent=opened.root_ino, name="missing"))

    calls = _calls(leveled)
    assert ("info", "CreateVolume", "OK") in calls
    assert calls - {("info", "CreateVolume", "OK")} == (QUIET_CALLS if level == "debug" else set())
