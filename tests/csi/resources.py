"""What a test creates through the plugin, undone after it the way a CO would:
NodeUnpublish and NodeUnstage (OK or NOT_FOUND accepted), then DeleteVolume
(must be OK), newest first, once per successful CreateVolume; then
DeleteSnapshot (must be OK) once per successful CreateSnapshot, so snapshots
outlive their source volumes. Undoing things twice, or things never staged, is
part of what the plugin must get right."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from proto.csi.v1 import csi_pb2 as csi
from tests.harness.csi import CsiPlugin, code_of, mount_capability

GiB = 2**30
UNDO_OK = {grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class NodePaths:
    """A staging directory that exists and a target whose parent exists, as kubelet gives."""

    root: Path

    @property
    def staging(self) -> str:
        return str(self.root / "staging")

    @property
    def target(self) -> str:
        return str(self.root / "pods" / "target")

    def make(self) -> "NodePaths":
        (self.root / "staging").mkdir(parents=True)
        (self.root / "pods").mkdir()
        return self


@dataclass
class Resources:
    plugin: CsiPlugin
    paths: NodePaths
    volumes: list[str] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)

    def create(self, name: str | None = None, size: int = GiB, **request: object) -> csi.Volume:
        request.setdefault("volume_capabilities", [mount_capability()])
        request.setdefault("capacity_range", csi.CapacityRange(required_bytes=size))
        response = self.plugin.controller.CreateVolume(
            csi.CreateVolumeRequest(name=name or unique("vol"), **request)  # type: ignore[arg-type]
        )
        self.volumes.append(response.volume.volume_id)
        return response.volume

    def snapshot(self, source_volume_id: str, name: str | None = None) -> csi.Snapshot:
        response = self.plugin.controller.CreateSnapshot(
            csi.CreateSnapshotRequest(
                name=name or unique("snap"), source_volume_id=source_volume_id
            )
        )
        self.snapshots.append(response.snapshot.snapshot_id)
        return response.snapshot

    def stage(self, volume_id: str, capability: csi.VolumeCapability | None = None) -> None:
        self.plugin.node.NodeStageVolume(
            csi.NodeStageVolumeRequest(
                volume_id=volume_id,
                staging_target_path=self.paths.staging,
                volume_capability=capability or mount_capability(),
            )
        )

    def publish(
        self,
        volume_id: str,
        target: str | None = None,
        capability: csi.VolumeCapability | None = None,
        readonly: bool = False,
    ) -> None:
        self.plugin.node.NodePublishVolume(
            csi.NodePublishVolumeRequest(
                volume_id=volume_id,
                staging_target_path=self.paths.staging,
                target_path=target or self.paths.target,
                volume_capability=capability or mount_capability(),
                readonly=readonly,
            )
        )

    def undo(self) -> None:
        node, controller = self.plugin.node, self.plugin.controller
        for volume_id in reversed(self.volumes):
            unpublish = csi.NodeUnpublishVolumeRequest(
                volume_id=volume_id, target_path=self.paths.target
            )
            assert code_of(node.NodeUnpublishVolume, unpublish) in UNDO_OK
            unstage = csi.NodeUnstageVolumeRequest(
                volume_id=volume_id, staging_target_path=self.paths.staging
            )
            assert code_of(node.NodeUnstageVolume, unstage) in UNDO_OK
            controller.DeleteVolume(csi.DeleteVolumeRequest(volume_id=volume_id))
        for snapshot_id in reversed(self.snapshots):
            controller.DeleteSnapshot(csi.DeleteSnapshotRequest(snapshot_id=snapshot_id))


def every_page(list_call: Callable[..., Any], request_type: type, max_entries: int) -> list[Any]:
    """The entries of a ListVolumes or ListSnapshots call, page after page of at
    most max_entries, following the tokens to the end."""
    entries: list[Any] = []
    token = ""
    while True:
        page = list_call(request_type(max_entries=max_entries, starting_token=token))
        assert len(page.entries) <= max_entries
        entries += page.entries
        token = page.next_token
        if not token:
            return entries
