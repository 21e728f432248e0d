"""The calls Kubernetes makes for a pod with a ReadWriteMany claim, in its order:
the external-provisioner's CreateVolume, kubelet's NodeStage and a NodePublish
per pod, then the way back. Two pods on the node share the data."""

import os
import uuid
from pathlib import Path

from fuse_client import mounts
from proto.csi.v1 import csi_pb2 as csi
from proto.netvol.v1 import admin_pb2 as pb
from tests.csi.resources import GiB, Resources
from tests.harness.csi import AccessMode, mount_capability

RWX = mount_capability(AccessMode.MULTI_NODE_MULTI_WRITER)


def test_a_claim_used_by_two_pods(node_resources: Resources) -> None:
    plugin, paths = node_resources.plugin, node_resources.paths
    name = f"pvc-{uuid.uuid4()}"
    parameters = {"tier": "fast", "csi.storage.k8s.io/pvc/name": "shared"}
    created = plugin.controller.CreateVolume(
        csi.CreateVolumeRequest(
            name=name,
            capacity_range=csi.CapacityRange(required_bytes=5 * GiB),
            volume_capabilities=[RWX],
            parameters=parameters,
        )
    )
    volume_id = created.volume.volume_id
    stored = plugin.server.admin().GetVolume(pb.GetVolumeRequest(volume=pb.VolumeRef(id=volume_id)))
    assert stored.name == name and dict(stored.parameters) == parameters

    staging = paths.staging
    plugin.node.NodeStageVolume(
        csi.NodeStageVolumeRequest(
            volume_id=volume_id,
            staging_target_path=staging,
            volume_capability=RWX,
            volume_context=created.volume.volume_context,
        )
    )
    pods = [paths.root / "pods" / f"pod-{i}" / "volumes" / name / "mount" for i in (1, 2)]
    for target in pods:
        target.parent.mkdir(parents=True)
        plugin.node.NodePublishVolume(
            csi.NodePublishVolumeRequest(
                volume_id=volume_id,
                staging_target_path=staging,
                target_path=str(target),
                volume_capability=RWX,
                volume_context=created.volume.volume_context,
            )
        )
    writer, reader = pods
    (writer / "log.txt").write_text("line from pod 1\n")
    assert (reader / "log.txt").read_text() == "line from pod 1\n"
    with (reader / "log.txt").open("a") as f:
        f.write("line from pod 2\n")
    assert (writer / "log.txt").read_text().splitlines() == ["line from pod 1", "line from pod 2"]

    for target in pods:
        plugin.node.NodeUnpublishVolume(
            csi.NodeUnpublishVolumeRequest(volume_id=volume_id, target_path=str(target))
        )
        assert not target.exists()
    plugin.node.NodeUnstageVolume(
        csi.NodeUnstageVolumeRequest(volume_id=volume_id, staging_target_path=staging)
    )
    assert mounts.mounted_fstype(staging) is None
    plugin.controller.DeleteVolume(csi.DeleteVolumeRequest(volume_id=volume_id))
    listed = plugin.controller.ListVolumes(csi.ListVolumesRequest()).entries
    assert volume_id not in {e.volume.volume_id for e in listed}
    assert not os.listdir(plugin.state_dir / "volumes")


def test_data_outlives_the_pods(node_resources: Resources) -> None:
    """A claim's data is still there when a new pod mounts it again."""
    paths = node_resources.paths
    volume_id = node_resources.create(size=GiB).volume_id
    for round_ in range(2):
        node_resources.stage(volume_id, RWX)
        node_resources.publish(volume_id, capability=RWX)
        target = Path(paths.target)
        if round_ == 0:
            (target / "kept").write_bytes(b"x" * 300_000)
        else:
            assert (target / "kept").read_bytes() == b"x" * 300_000
        node_resources.plugin.node.NodeUnpublishVolume(
            csi.NodeUnpublishVolumeRequest(volume_id=volume_id, target_path=paths.target)
        )
        node_resources.plugin.node.NodeUnstageVolume(
            csi.NodeUnstageVolumeRequest(volume_id=volume_id, staging_target_path=paths.staging)
        )
