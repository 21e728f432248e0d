"""Snapshots and volume content sources between CSI and the storage server.

A CSI snapshot id is the storage server's snapshot id. A snapshot is ready to
use as soon as CreateSnapshot returns: the server copies the volume's metadata
in one transaction and shares its data. It holds what the server had committed
at that moment; data a node's mount still buffers is not in it, as with other
network file system drivers (JuiceFS, NFS). Whoever needs more quiesces the
application first.
"""

from collections.abc import Mapping

import grpc

from csi import validate
from csi.errors import CsiError, invalid
from proto.csi.v1 import csi_pb2 as csi
from proto.netvol.v1 import admin_pb2 as pb
from proto.netvol.v1 import admin_pb2_grpc

# Keys the CO's sidecars may add (the external-snapshotter's metadata); netvol
# takes no snapshot parameters of its own.
SIDECAR_PREFIX = "csi.storage.k8s.io/"


def csi_snapshot(snapshot: pb.Snapshot) -> csi.Snapshot:
    return csi.Snapshot(
        size_bytes=snapshot.size_bytes,
        snapshot_id=snapshot.id,
        source_volume_id=snapshot.source_volume_id,
        creation_time=snapshot.created_at,
        ready_to_use=snapshot.ready_to_use,
    )


def check_parameters(parameters: Mapping[str, str]) -> None:
    unknown = sorted(k for k in parameters if not k.startswith(SIDECAR_PREFIX))
    if unknown:
        raise invalid(f"netvol snapshots take no parameters, got {unknown}")


def server_source(source: csi.VolumeContentSource) -> pb.ContentSource | None:
    """The storage server's form of a CreateVolume's content source, checked."""
    which = source.WhichOneof("type")
    if which == "snapshot":
        snapshot_id = validate.text(source.snapshot.snapshot_id, "snapshot_id")
        return pb.ContentSource(snapshot=pb.SnapshotRef(id=snapshot_id))
    if which == "volume":
        volume_id = validate.text(source.volume.volume_id, "volume_id")
        return pb.ContentSource(volume=pb.VolumeRef(id=volume_id))
    return None


def csi_source(volume: pb.Volume) -> csi.VolumeContentSource | None:
    """What the volume was copied from, in CSI's form."""
    which = volume.content_source.WhichOneof("source")
    if which == "snapshot":
        snapshot_id = volume.content_source.snapshot.id
        return csi.VolumeContentSource(
            snapshot=csi.VolumeContentSource.SnapshotSource(snapshot_id=snapshot_id)
        )
    if which == "volume":
        volume_id = volume.content_source.volume.id
        return csi.VolumeContentSource(
            volume=csi.VolumeContentSource.VolumeSource(volume_id=volume_id)
        )
    return None


def source_size(
    admin: admin_pb2_grpc.VolumeAdminStub, source: pb.ContentSource, timeout: float
) -> int:
    """The size of the snapshot's source volume when it was taken, or of the
    volume to clone: the least a volume made from it may have. NOT_FOUND from
    the server when there is no such source."""
    if source.HasField("snapshot"):
        request = pb.GetSnapshotRequest(snapshot=source.snapshot)
        return admin.GetSnapshot(request, timeout=timeout).size_bytes
    return admin.GetVolume(pb.GetVolumeRequest(volume=source.volume), timeout=timeout).size_bytes


def fitting_size(wanted: int, least: int) -> int:
    """The size of a volume made from a source of `least` bytes, when asked for
    `wanted` (0: no wish); CSI says it must be at least the source's size."""
    if wanted and wanted < least:
        raise CsiError(
            grpc.StatusCode.OUT_OF_RANGE,
            f"the source has {least} bytes; the new volume cannot have fewer ({wanted})",
        )
    return wanted or least
