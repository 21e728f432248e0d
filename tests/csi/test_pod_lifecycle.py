"""The calls Kubernetes makes for a pod with a ReadWriteMany claim, in its order:
the external-provisioner's CreateVolume, kubelet's NodeStage and a NodePublish
per pod, then the way back. Two pods on the node share the data, and a claim
made from a snapshot or from another claim (a clone) starts with its data."""

import contextlib
import hashlib
import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fuse_client import mounts
from proto.csi.v1 import csi_pb2 as csi
from proto.netvol.v1 import admin_pb2 as pb
from tests.csi.resources import GiB, Resources
from tests.harness.csi import AccessMode, mount_capability

RWX = mount_capability(AccessMode.MULTI_NODE_MULTI_WRITER)


@contextlib.contextmanager
def _mounted(resources: Resources, volume_id: str) -> Iterator[Path]:
    """The volume as a pod sees it (staged, then published), until the pod goes."""
    resources.stage(volume_id, RWX)
    resources.publish(volume_id, capability=RWX)
    try:
        yield Path(resources.paths.target)
    finally:
        resources.plugin.node.NodeUnpublishVolume(
            csi.NodeUnpublishVolumeRequest(volume_id=volume_id, target_path=resources.paths.target)
        )
        resources.plugin.node.NodeUnstageVolume(
            csi.NodeUnstageVolumeRequest(
                volume_id=volume_id, staging_target_path=resources.paths.staging
            )
        )


def _digests(root: Path) -> dict[str, str]:
    """The sha256 of every file below root, by relative path."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


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
    volume_id = node_resources.create(size=GiB).volume_id
    for round_ in range(2):
        with _mounted(node_resources, volume_id) as target:
            if round_ == 0:
                (target / "kept").write_bytes(b"x" * 300_000)
            else:
                assert (target / "kept").read_bytes() == b"x" * 300_000


@pytest.mark.parametrize("kind", ["snapshot", "volume"])
def test_a_claim_made_from_a_snapshot_or_a_claim_has_its_data(
    node_resources: Resources, kind: str
) -> None:
    """The external-snapshotter's CreateSnapshot, then the provisioner's
    CreateVolume with a dataSource: the new claim holds the data the source held
    then, and later changes of the source do not reach it."""
    source_id = node_resources.create(size=GiB).volume_id
    rng = random.Random(9)
    with _mounted(node_resources, source_id) as target:
        (target / "logs").mkdir()
        (target / "logs" / "app.log").write_text("first line\n")
        (target / "data.bin").write_bytes(rng.randbytes(5 * 2**20 + 17))
        written = _digests(target)

    if kind == "snapshot":
        snapshot_id = node_resources.snapshot(source_id).snapshot_id
        source = csi.VolumeContentSource(
            snapshot=csi.VolumeContentSource.SnapshotSource(snapshot_id=snapshot_id)
        )
    else:
        source = csi.VolumeContentSource(
            volume=csi.VolumeContentSource.VolumeSource(volume_id=source_id)
        )
    copy = node_resources.create(size=GiB, volume_content_source=source)
    assert copy.content_source == source
    with _mounted(node_resources, copy.volume_id) as target:
        assert _digests(target) == written

    with _mounted(node_resources, source_id) as target:
        (target / "data.bin").write_bytes(b"changed")
        (target / "logs" / "app.log").unlink()
        (target / "new").write_text("after the copy")
        assert _digests(target) != written
    with _mounted(node_resources, copy.volume_id) as target:
        assert _digests(target) == written
