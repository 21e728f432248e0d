"""Metadata outlives the server process: clean stops, restarts and kill -9."""

import signal

from proto.netvol.v1 import admin_pb2 as pb
from tests.harness.server import StorageServer

SIZES = {f"vol-{i}": (i + 1) * 10**9 for i in range(20)}


def _snapshot(server: StorageServer) -> dict[str, tuple[int, str]]:
    page = server.admin().ListVolumes(pb.ListVolumesRequest(page_size=1000))
    return {v.name: (v.size_bytes, v.id) for v in page.volumes}


def test_volumes_survive_kill_9(server: StorageServer) -> None:
    admin = server.admin()
    for name, size in SIZES.items():
        admin.CreateVolume(pb.CreateVolumeRequest(name=name, size_bytes=size))
    admin.ResizeVolume(pb.ResizeVolumeRequest(volume=pb.VolumeRef(name="vol-0"), size_bytes=7**12))
    admin.DeleteVolume(pb.DeleteVolumeRequest(volume=pb.VolumeRef(name="vol-1")))
    before = _snapshot(server)

    server.kill9()
    server.start()

    after = _snapshot(server)
    assert after == before
    assert after["vol-0"][0] == 7**12
    assert "vol-1" not in after
    assert {n: s for n, (s, _) in after.items()} == {
        **{n: s for n, s in SIZES.items() if n not in ("vol-0", "vol-1")},
        "vol-0": 7**12,
    }


def test_sigterm_stops_cleanly_and_restart_keeps_data(server: StorageServer) -> None:
    server.admin().CreateVolume(pb.CreateVolumeRequest(name="data", size_bytes=5 * 10**9))
    assert server.stop(signal.SIGTERM) == 0
    assert "storage server stopped" in server.log_path.read_text()
    server.start()
    volume = server.admin().GetVolume(pb.GetVolumeRequest(volume=pb.VolumeRef(name="data")))
    assert volume.size_bytes == 5 * 10**9


def test_token_is_kept_across_restarts(server: StorageServer) -> None:
    token = server.token_file.read_text()
    server.stop()
    server.start()
    assert server.token_file.read_text() == token
    assert server.admin().ListVolumes(pb.ListVolumesRequest()).volumes == []
