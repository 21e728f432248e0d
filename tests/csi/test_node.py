"""The Node service with real FUSE mounts: staging, publishing, statistics,
expansion, and the codes the CSI spec and csi-sanity's node checks require."""

import errno
import os
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from fuse_client import mounts
from proto.csi.v1 import csi_pb2 as csi
from tests.csi.resources import GiB, Resources
from tests.harness.csi import AccessMode, CsiPlugin, block_capability, code_of, mount_capability

RPC = csi.NodeServiceCapability.RPC
FAKE_ID = "fake-vol-id-0123456789"
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def mount_options(path: str) -> set[str]:
    """The per-mount options of the mount visible at `path`."""
    found = ""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == path:
                found = fields[5]
    return set(found.split(","))


def _stats(plugin: CsiPlugin, volume_id: str, path: str) -> csi.NodeGetVolumeStatsResponse:
    return plugin.node.NodeGetVolumeStats(
        csi.NodeGetVolumeStatsRequest(volume_id=volume_id, volume_path=path)
    )


# ------------------------------------------------------ no mount needed


def test_capabilities(node_plugin: CsiPlugin) -> None:
    reply = node_plugin.node.NodeGetCapabilities(csi.NodeGetCapabilitiesRequest())
    assert {RPC.Type.Name(c.rpc.type) for c in reply.capabilities} == {
        "STAGE_UNSTAGE_VOLUME",
        "GET_VOLUME_STATS",
        "VOLUME_CONDITION",
        "EXPAND_VOLUME",
        "SINGLE_NODE_MULTI_WRITER",
    }


def test_info(node_plugin: CsiPlugin) -> None:
    reply = node_plugin.node.NodeGetInfo(csi.NodeGetInfoRequest())
    assert reply.node_id == node_plugin.node_id
    assert reply.max_volumes_per_node == 0
    assert not reply.HasField("accessible_topology")


def test_requests_missing_a_field_are_invalid(node_resources: Resources) -> None:
    node = node_resources.plugin.node
    real = node_resources.create().volume_id
    paths = node_resources.paths
    cap = mount_capability()
    cases: list[tuple[Callable[..., object], object]] = [
        (node.NodePublishVolume, csi.NodePublishVolumeRequest(target_path=paths.target)),
        (node.NodePublishVolume, csi.NodePublishVolumeRequest(volume_id=FAKE_ID)),
        (
            node.NodePublishVolume,
            csi.NodePublishVolumeRequest(volume_id=FAKE_ID, target_path=paths.target),
        ),
        (node.NodeUnpublishVolume, csi.NodeUnpublishVolumeRequest()),
        (node.NodeUnpublishVolume, csi.NodeUnpublishVolumeRequest(volume_id=FAKE_ID)),
        (
            node.NodeStageVolume,
            csi.NodeStageVolumeRequest(
                staging_target_path=paths.staging,
                volume_capability=cap,
                publish_context={"device": "/dev/mock"},
            ),
        ),
        (
            node.NodeStageVolume,
            csi.NodeStageVolumeRequest(
                volume_id=FAKE_ID, volume_capability=cap, publish_context={"device": "/dev/mock"}
            ),
        ),
        (
            node.NodeStageVolume,
            csi.NodeStageVolumeRequest(volume_id=real, staging_target_path=paths.staging),
        ),
        (
            node.NodeUnstageVolume,
            csi.NodeUnstageVolumeRequest(staging_target_path=paths.staging),
        ),
        (node.NodeUnstageVolume, csi.NodeUnstageVolumeRequest(volume_id=FAKE_ID)),
        (node.NodeGetVolumeStats, csi.NodeGetVolumeStatsRequest(volume_path="some/path")),
        (node.NodeGetVolumeStats, csi.NodeGetVolumeStatsRequest(volume_id=FAKE_ID)),
        (
            node.NodeExpandVolume,
            csi.NodeExpandVolumeRequest(
                volume_path=str(Path(paths.target).parent), volume_capability=cap
            ),
        ),
        (node.NodeExpandVolume, csi.NodeExpandVolumeRequest(volume_id=real, volume_capability=cap)),
    ]
    for call, request in cases:
        assert code_of(call, request) == INVALID, request


def test_unknown_volumes_are_not_found(node_resources: Resources) -> None:
    node = node_resources.plugin.node
    stats = csi.NodeGetVolumeStatsRequest(volume_id=FAKE_ID, volume_path="some/path")
    assert code_of(node.NodeGetVolumeStats, stats) == grpc.StatusCode.NOT_FOUND
    expand = csi.NodeExpandVolumeRequest(volume_id=FAKE_ID, volume_path="some/path")
    assert code_of(node.NodeExpandVolume, expand) == grpc.StatusCode.NOT_FOUND
    stage = csi.NodeStageVolumeRequest(
        volume_id=FAKE_ID,
        staging_target_path=node_resources.paths.staging,
        volume_capability=mount_capability(),
    )
    assert code_of(node.NodeStageVolume, stage) == grpc.StatusCode.NOT_FOUND
    assert not mounts.mounted_fstype(node_resources.paths.staging)


def test_undoing_what_was_never_done_succeeds(node_resources: Resources) -> None:
    node, paths = node_resources.plugin.node, node_resources.paths
    for volume_id in (FAKE_ID, node_resources.create().volume_id):
        node.NodeUnpublishVolume(
            csi.NodeUnpublishVolumeRequest(volume_id=volume_id, target_path=paths.target)
        )
        node.NodeUnstageVolume(
            csi.NodeUnstageVolumeRequest(volume_id=volume_id, staging_target_path=paths.staging)
        )


def test_publish_needs_the_volume_staged_first(node_resources: Resources) -> None:
    volume_id = node_resources.create().volume_id
    node, paths = node_resources.plugin.node, node_resources.paths
    no_staging = csi.NodePublishVolumeRequest(
        volume_id=volume_id, target_path=paths.target, volume_capability=mount_capability()
    )
    assert code_of(node.NodePublishVolume, no_staging) == grpc.StatusCode.FAILED_PRECONDITION
    not_staged = csi.NodePublishVolumeRequest(
        volume_id=volume_id,
        staging_target_path=paths.staging,
        target_path=paths.target,
        volume_capability=mount_capability(),
    )
    assert code_of(node.NodePublishVolume, not_staged) == grpc.StatusCode.FAILED_PRECONDITION
    assert not os.path.exists(paths.target)


# ------------------------------------------------------ with FUSE mounts


def test_full_cycle(node_resources: Resources) -> None:
    plugin, paths = node_resources.plugin, node_resources.paths
    volume_id = node_resources.create(size=2 * GiB).volume_id
    node_resources.stage(volume_id)
    assert mounts.is_netvol_mount(paths.staging)
    node_resources.publish(volume_id)
    assert mounts.is_netvol_mount(paths.target)
    Path(paths.target, "hello").write_text("from the pod")
    assert Path(paths.staging, "hello").read_text() == "from the pod"

    for path in (paths.target, paths.staging):
        reply = _stats(plugin, volume_id, path)
        assert not reply.volume_condition.abnormal
        units = {csi.VolumeUsage.Unit.Name(u.unit): u for u in reply.usage}
        assert set(units) == {"BYTES", "INODES"}
        assert units["BYTES"].total == 2 * GiB
        assert 0 < units["BYTES"].available <= units["BYTES"].total
        assert units["INODES"].used >= 1
    elsewhere = csi.NodeGetVolumeStatsRequest(volume_id=volume_id, volume_path="some/path")
    assert code_of(plugin.node.NodeGetVolumeStats, elsewhere) == grpc.StatusCode.NOT_FOUND

    plugin.node.NodeUnpublishVolume(
        csi.NodeUnpublishVolumeRequest(volume_id=volume_id, target_path=paths.target)
    )
    assert not os.path.exists(paths.target)
    plugin.node.NodeUnstageVolume(
        csi.NodeUnstageVolumeRequest(volume_id=volume_id, staging_target_path=paths.staging)
    )
    assert not mounts.mounted_fstype(paths.staging)


def test_stage_and_publish_are_idempotent(node_resources: Resources) -> None:
    volume_id = node_resources.create().volume_id
    for _ in range(10):
        node_resources.stage(volume_id)
    for _ in range(10):
        node_resources.publish(volume_id)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    assert points.count(node_resources.paths.staging) == 1
    assert points.count(node_resources.paths.target) == 1


def test_read_only_publish(node_resources: Resources) -> None:
    volume_id = node_resources.create().volume_id
    node_resources.stage(volume_id)
    Path(node_resources.paths.staging, "kept").write_text("data")
    node_resources.publish(volume_id, readonly=True)
    target = node_resources.paths.target
    assert "ro" in mount_options(target)
    assert Path(target, "kept").read_text() == "data"
    with pytest.raises(OSError) as info:
        Path(target, "new").write_text("x")
    assert info.value.errno == errno.EROFS


def test_generic_mount_flags_are_applied(node_resources: Resources) -> None:
    volume_id = node_resources.create().volume_id
    flags = ["nosuid", "nodev", "noexec", "noatime"]
    capability = mount_capability(AccessMode.MULTI_NODE_MULTI_WRITER, flags)
    node_resources.stage(volume_id, capability)
    node_resources.publish(volume_id, capability=capability)
    options = mount_options(node_resources.paths.target)
    assert set(flags) <= options
    assert "rw" in options


def test_reader_only_access_mode_mounts_read_only(node_resources: Resources) -> None:
    volume_id = node_resources.create().volume_id
    capability = mount_capability(AccessMode.MULTI_NODE_READER_ONLY)
    node_resources.stage(volume_id, capability)
    node_resources.publish(volume_id, capability=capability)
    for path in (node_resources.paths.staging, node_resources.paths.target):
        with pytest.raises(OSError) as info:
            Path(path, "new").write_text("x")
        assert info.value.errno == errno.EROFS


def test_incompatible_repeats_already_exist(node_resources: Resources) -> None:
    node, paths = node_resources.plugin.node, node_resources.paths
    volume_id = node_resources.create().volume_id
    node_resources.stage(volume_id)
    staged_read_only = csi.NodeStageVolumeRequest(
        volume_id=volume_id,
        staging_target_path=paths.staging,
        volume_capability=mount_capability(AccessMode.SINGLE_NODE_READER_ONLY),
    )
    assert code_of(node.NodeStageVolume, staged_read_only) == grpc.StatusCode.ALREADY_EXISTS
    node_resources.publish(volume_id)
    published_read_only = csi.NodePublishVolumeRequest(
        volume_id=volume_id,
        staging_target_path=paths.staging,
        target_path=paths.target,
        volume_capability=mount_capability(),
        readonly=True,
    )
    assert code_of(node.NodePublishVolume, published_read_only) == grpc.StatusCode.ALREADY_EXISTS
    assert "rw" in mount_options(paths.target)


def test_single_writer_volume_gets_one_target(node_resources: Resources) -> None:
    node, paths = node_resources.plugin.node, node_resources.paths
    volume_id = node_resources.create().volume_id
    capability = mount_capability(AccessMode.SINGLE_NODE_SINGLE_WRITER)
    node_resources.stage(volume_id, capability)
    node_resources.publish(volume_id, capability=capability)
    second = str(Path(paths.target).parent / "second")
    request = csi.NodePublishVolumeRequest(
        volume_id=volume_id,
        staging_target_path=paths.staging,
        target_path=second,
        volume_capability=capability,
    )
    assert code_of(node.NodePublishVolume, request) == grpc.StatusCode.FAILED_PRECONDITION
    assert not os.path.exists(second)


def test_unstage_while_published_is_refused(node_resources: Resources) -> None:
    node, paths = node_resources.plugin.node, node_resources.paths
    volume_id = node_resources.create().volume_id
    node_resources.stage(volume_id)
    node_resources.publish(volume_id)
    unstage = csi.NodeUnstageVolumeRequest(volume_id=volume_id, staging_target_path=paths.staging)
    assert code_of(node.NodeUnstageVolume, unstage) == grpc.StatusCode.FAILED_PRECONDITION
    assert mounts.is_netvol_mount(paths.staging)


def test_expansion_is_seen_by_the_mount(node_resources: Resources) -> None:
    plugin, paths = node_resources.plugin, node_resources.paths
    volume_id = node_resources.create(size=10 * GiB).volume_id
    node_resources.stage(volume_id)
    node_resources.publish(volume_id)
    wanted = 11 * GiB
    expanded = plugin.controller.ControllerExpandVolume(
        csi.ControllerExpandVolumeRequest(
            volume_id=volume_id, capacity_range=csi.CapacityRange(required_bytes=wanted)
        )
    )
    assert expanded.capacity_bytes == wanted
    stats = os.statvfs(paths.target)
    assert stats.f_blocks * stats.f_frsize == wanted
    reply = plugin.node.NodeExpandVolume(
        csi.NodeExpandVolumeRequest(
            volume_id=volume_id,
            volume_path=paths.target,
            capacity_range=csi.CapacityRange(required_bytes=wanted),
        )
    )
    assert reply.capacity_bytes == wanted
    beyond = csi.NodeExpandVolumeRequest(
        volume_id=volume_id,
        volume_path=paths.target,
        capacity_range=csi.CapacityRange(required_bytes=wanted + GiB),
    )
    assert code_of(plugin.node.NodeExpandVolume, beyond) == grpc.StatusCode.FAILED_PRECONDITION
    block = csi.NodeExpandVolumeRequest(
        volume_id=volume_id, volume_path=paths.target, volume_capability=block_capability()
    )
    assert code_of(plugin.node.NodeExpandVolume, block) == INVALID
