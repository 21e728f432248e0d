"""Bad requests each get the spec's status code and change nothing: not the
volumes on the server, not the node's mounts, not the plugin's node state."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from proto.csi.v1 import csi_pb2 as csi
from proto.netvol.v1 import admin_pb2 as pb
from tests.csi.conftest import scratch_dir
from tests.csi.resources import GiB, NodePaths, Resources
from tests.harness.csi import AccessMode, CsiPlugin, block_capability, code_of, mount_capability

NAME = "bad-requests-volume"
UNKNOWN_ID = "00000000-0000-0000-0000-000000000000"
HUGE = "x" * 129
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
OK_CAP = mount_capability(AccessMode.MULTI_NODE_MULTI_WRITER)


@dataclass
class World:
    """A volume staged and published, and the paths it uses."""

    plugin: CsiPlugin
    volume_id: str
    paths: NodePaths

    def snapshot(self) -> tuple[object, ...]:
        volumes = self.plugin.server.admin().ListVolumes(pb.ListVolumesRequest(page_size=1000))
        listing = [(v.id, v.name, v.size_bytes, dict(v.parameters)) for v in volumes.volumes]
        snapshots = self.plugin.server.admin().ListSnapshots(
            pb.ListSnapshotsRequest(page_size=1000)
        )
        taken = [(s.id, s.name, s.source_volume_id) for s in snapshots.snapshots]
        # Only this test's mounts: other tests on the machine mount too.
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f if " fuse.netvol " in line]
        netvol = sorted(p for p in points if p.startswith(str(self.paths.root)))
        state = sorted(
            (p.name, p.read_text()) for p in (self.plugin.state_dir / "volumes").iterdir()
        )
        files = sorted(str(p) for p in self.paths.root.rglob("*") if "staging/" not in str(p))
        return listing, taken, netvol, state, files


@pytest.fixture(scope="module")
def world(node_plugin: CsiPlugin) -> Iterator[World]:
    with scratch_dir() as root:
        made = Resources(node_plugin, NodePaths(root).make())
        volume_id = made.create(NAME, size=2 * GiB).volume_id
        made.stage(volume_id, OK_CAP)
        made.publish(volume_id, capability=OK_CAP)
        yield World(node_plugin, volume_id, made.paths)
        made.undo()


Case = tuple[str, Callable[[World], object], grpc.StatusCode]


def _create(**fields: object) -> Callable[[World], object]:
    base: dict[str, object] = {"name": "fresh-name", "volume_capabilities": [OK_CAP]}
    return lambda w: csi.CreateVolumeRequest(**{**base, **fields})  # type: ignore[arg-type]


def _stage(**fields: object) -> Callable[[World], object]:
    def build(w: World) -> object:
        base = {
            "volume_id": w.volume_id,
            "staging_target_path": w.paths.staging,
            "volume_capability": OK_CAP,
        }
        return csi.NodeStageVolumeRequest(**{**base, **fields})  # type: ignore[arg-type]

    return build


def _publish(**fields: object) -> Callable[[World], object]:
    def build(w: World) -> object:
        base = {
            "volume_id": w.volume_id,
            "staging_target_path": w.paths.staging,
            "target_path": str(w.paths.root / "pods" / "other"),
            "volume_capability": OK_CAP,
        }
        return csi.NodePublishVolumeRequest(**{**base, **fields})  # type: ignore[arg-type]

    return build


def _expand(**fields: object) -> Callable[[World], object]:
    def build(w: World) -> object:
        base = {"volume_id": w.volume_id, "capacity_range": csi.CapacityRange(required_bytes=GiB)}
        return csi.ControllerExpandVolumeRequest(**{**base, **fields})  # type: ignore[arg-type]

    return build


def _snapshot(**fields: object) -> Callable[[World], object]:
    def build(w: World) -> object:
        base = {"name": "fresh-snapshot", "source_volume_id": w.volume_id}
        return csi.CreateSnapshotRequest(**{**base, **fields})  # type: ignore[arg-type]

    return build


def _by_id(message: type, **fields: object) -> Callable[[World], object]:
    return lambda w: message(**{"volume_id": w.volume_id, **fields})


def _exact(size: int) -> csi.CapacityRange:
    return csi.CapacityRange(required_bytes=size, limit_bytes=size)


CASES: list[Case] = [
    # CreateVolume: names, capabilities, capacities, parameters, sources.
    ("CreateVolume", _create(name=""), INVALID),
    ("CreateVolume", _create(name=HUGE), INVALID),
    ("CreateVolume", _create(name="bell\x07"), INVALID),
    ("CreateVolume", _create(volume_capabilities=[]), INVALID),
    ("CreateVolume", _create(volume_capabilities=[block_capability()]), INVALID),
    ("CreateVolume", _create(volume_capabilities=[csi.VolumeCapability()]), INVALID),
    ("CreateVolume", _create(volume_capabilities=[mount_capability(AccessMode.UNKNOWN)]), INVALID),
    ("CreateVolume", _create(volume_capabilities=[mount_capability(fs_type="ext4")]), INVALID),
    ("CreateVolume", _create(volume_capabilities=[mount_capability(flags=["hard"])]), INVALID),
    ("CreateVolume", _create(capacity_range=csi.CapacityRange(limit_bytes=-1)), INVALID),
    (
        "CreateVolume",
        _create(capacity_range=csi.CapacityRange(required_bytes=2 * GiB, limit_bytes=GiB)),
        grpc.StatusCode.OUT_OF_RANGE,
    ),
    ("CreateVolume", _create(capacity_range=_exact(2**62)), grpc.StatusCode.OUT_OF_RANGE),
    ("CreateVolume", _create(parameters={"k": "v" * 5000}), INVALID),
    (
        "CreateVolume",
        _create(
            volume_content_source=csi.VolumeContentSource(
                snapshot=csi.VolumeContentSource.SnapshotSource(snapshot_id="s")
            )
        ),
        NOT_FOUND,
    ),
    (
        "CreateVolume",
        _create(
            volume_content_source=csi.VolumeContentSource(
                volume=csi.VolumeContentSource.VolumeSource(volume_id="")
            )
        ),
        INVALID,
    ),
    (
        "CreateVolume",
        lambda w: _create(
            volume_content_source=csi.VolumeContentSource(
                volume=csi.VolumeContentSource.VolumeSource(volume_id=w.volume_id)
            ),
            capacity_range=_exact(GiB),
        )(w),
        grpc.StatusCode.OUT_OF_RANGE,
    ),
    (
        "CreateVolume",
        _create(name=NAME, capacity_range=_exact(GiB)),
        grpc.StatusCode.ALREADY_EXISTS,
    ),
    # DeleteVolume, ValidateVolumeCapabilities, ControllerGetVolume.
    ("DeleteVolume", lambda w: csi.DeleteVolumeRequest(), INVALID),
    ("DeleteVolume", lambda w: csi.DeleteVolumeRequest(volume_id=HUGE), INVALID),
    (
        "ValidateVolumeCapabilities",
        lambda w: csi.ValidateVolumeCapabilitiesRequest(volume_capabilities=[OK_CAP]),
        INVALID,
    ),
    ("ValidateVolumeCapabilities", _by_id(csi.ValidateVolumeCapabilitiesRequest), INVALID),
    (
        "ValidateVolumeCapabilities",
        lambda w: csi.ValidateVolumeCapabilitiesRequest(
            volume_id=UNKNOWN_ID, volume_capabilities=[OK_CAP]
        ),
        NOT_FOUND,
    ),
    (
        "ControllerGetVolume",
        lambda w: csi.ControllerGetVolumeRequest(volume_id=UNKNOWN_ID),
        NOT_FOUND,
    ),
    ("ControllerGetVolume", lambda w: csi.ControllerGetVolumeRequest(volume_id=HUGE), INVALID),
    # ControllerExpandVolume.
    ("ControllerExpandVolume", _expand(volume_id=UNKNOWN_ID), NOT_FOUND),
    ("ControllerExpandVolume", _expand(capacity_range=csi.CapacityRange()), INVALID),
    ("ControllerExpandVolume", _expand(capacity_range=_exact(-5)), INVALID),
    ("ControllerExpandVolume", _expand(capacity_range=_exact(GiB)), grpc.StatusCode.OUT_OF_RANGE),
    ("ControllerExpandVolume", _expand(volume_capability=block_capability()), INVALID),
    # CreateSnapshot, DeleteSnapshot, ListSnapshots.
    ("CreateSnapshot", lambda w: csi.CreateSnapshotRequest(source_volume_id=w.volume_id), INVALID),
    ("CreateSnapshot", lambda w: csi.CreateSnapshotRequest(name="fresh-snapshot"), INVALID),
    ("CreateSnapshot", _snapshot(name=HUGE), INVALID),
    ("CreateSnapshot", _snapshot(name="bell\x07"), INVALID),
    ("CreateSnapshot", _snapshot(source_volume_id=HUGE), INVALID),
    ("CreateSnapshot", _snapshot(parameters={"tier": "fast"}), INVALID),
    ("CreateSnapshot", _snapshot(source_volume_id=UNKNOWN_ID), NOT_FOUND),
    ("DeleteSnapshot", lambda w: csi.DeleteSnapshotRequest(), INVALID),
    ("DeleteSnapshot", lambda w: csi.DeleteSnapshotRequest(snapshot_id=HUGE), INVALID),
    (
        "ListSnapshots",
        lambda w: csi.ListSnapshotsRequest(starting_token="invalid-token"),
        grpc.StatusCode.ABORTED,
    ),
    ("ListSnapshots", lambda w: csi.ListSnapshotsRequest(max_entries=-1), INVALID),
    # ListVolumes.
    (
        "ListVolumes",
        lambda w: csi.ListVolumesRequest(starting_token="bm90LWEtbmFtZS8="),
        grpc.StatusCode.ABORTED,
    ),
    ("ListVolumes", lambda w: csi.ListVolumesRequest(max_entries=-3), INVALID),
    # NodeStageVolume: paths, capabilities, ids, a second staging path.
    ("NodeStageVolume", _stage(staging_target_path="relative/staging"), INVALID),
    ("NodeStageVolume", _stage(staging_target_path="/tmp/../etc"), INVALID),
    ("NodeStageVolume", _stage(staging_target_path="/"), INVALID),
    ("NodeStageVolume", _stage(staging_target_path="/tmp/\x00x"), INVALID),
    ("NodeStageVolume", _stage(volume_capability=block_capability()), INVALID),
    ("NodeStageVolume", _stage(volume_id=HUGE), INVALID),
    (
        "NodeStageVolume",
        lambda w: _stage(volume_id=UNKNOWN_ID, staging_target_path=str(w.paths.root / "pods"))(w),
        NOT_FOUND,
    ),
    (
        "NodeStageVolume",
        lambda w: _stage(staging_target_path=str(w.paths.root / "pods"))(w),
        PRECONDITION,
    ),
    # NodePublishVolume.
    ("NodePublishVolume", _publish(target_path="pods/relative"), INVALID),
    ("NodePublishVolume", _publish(target_path="/"), INVALID),
    ("NodePublishVolume", _publish(target_path="/tmp/a/../../etc"), INVALID),
    ("NodePublishVolume", lambda w: _publish(target_path=w.paths.staging)(w), INVALID),
    ("NodePublishVolume", _publish(staging_target_path=""), PRECONDITION),
    ("NodePublishVolume", _publish(volume_capability=block_capability()), INVALID),
    ("NodePublishVolume", _publish(volume_id=UNKNOWN_ID), PRECONDITION),
    (
        "NodePublishVolume",
        lambda w: _publish(target_path=w.paths.target, readonly=True)(w),
        grpc.StatusCode.ALREADY_EXISTS,
    ),
    # Unpublish, unstage, stats, node expansion.
    ("NodeUnpublishVolume", _by_id(csi.NodeUnpublishVolumeRequest, target_path="x/y"), INVALID),
    ("NodeUnpublishVolume", _by_id(csi.NodeUnpublishVolumeRequest, target_path="/"), INVALID),
    ("NodeUnstageVolume", _by_id(csi.NodeUnstageVolumeRequest, staging_target_path="s"), INVALID),
    ("NodeUnstageVolume", _by_id(csi.NodeUnstageVolumeRequest, staging_target_path="/"), INVALID),
    (
        "NodeUnstageVolume",
        lambda w: csi.NodeUnstageVolumeRequest(
            volume_id=w.volume_id, staging_target_path=w.paths.staging
        ),
        PRECONDITION,
    ),
    ("NodeGetVolumeStats", _by_id(csi.NodeGetVolumeStatsRequest), INVALID),
    (
        "NodeGetVolumeStats",
        lambda w: csi.NodeGetVolumeStatsRequest(volume_id=UNKNOWN_ID, volume_path=w.paths.target),
        NOT_FOUND,
    ),
    (
        "NodeExpandVolume",
        lambda w: csi.NodeExpandVolumeRequest(volume_id=UNKNOWN_ID, volume_path=w.paths.target),
        NOT_FOUND,
    ),
    (
        "NodeExpandVolume",
        lambda w: csi.NodeExpandVolumeRequest(
            volume_id=w.volume_id,
            volume_path=w.paths.target,
            capacity_range=csi.CapacityRange(required_bytes=-1),
        ),
        INVALID,
    ),
]


def _service(plugin: CsiPlugin, method: str) -> object:
    return plugin.node if method.startswith("Node") else plugin.controller


@pytest.mark.parametrize(("method", "build", "code"), CASES)
def test_bad_request(
    world: World, method: str, build: Callable[[World], object], code: grpc.StatusCode
) -> None:
    before = world.snapshot()
    call = getattr(_service(world.plugin, method), method)
    assert code_of(call, build(world)) == code
    assert world.snapshot() == before
    assert Path(world.paths.target, ".").exists()
