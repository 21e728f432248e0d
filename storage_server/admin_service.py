"""The VolumeAdmin gRPC service: translates messages to VolumeStore and
SnapshotStore calls and back."""

from datetime import datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from proto.netvol.v1 import admin_pb2 as pb
from proto.netvol.v1 import admin_pb2_grpc
from storage_server.errors import InvalidArgument
from storage_server.models import SNAPSHOT, VOLUME, Snapshot, Volume
from storage_server.snapshots import SnapshotKey, SnapshotStore
from storage_server.volumes import ContentSource, VolumeKey, VolumeStore


def _timestamp(when: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


def _source_message(volume: Volume) -> pb.ContentSource | None:
    if volume.source_id is None:
        return None
    if volume.source_kind == SNAPSHOT:
        return pb.ContentSource(snapshot=pb.SnapshotRef(id=volume.source_id))
    return pb.ContentSource(volume=pb.VolumeRef(id=volume.source_id))


def volume_message(volume: Volume) -> pb.Volume:
    return pb.Volume(
        id=volume.id,
        name=volume.name,
        size_bytes=volume.size_bytes,
        used_bytes=volume.used_bytes,
        parameters=volume.parameters,
        created_at=_timestamp(volume.created_at),
        content_source=_source_message(volume),
    )


def snapshot_message(snapshot: Snapshot) -> pb.Snapshot:
    return pb.Snapshot(
        id=snapshot.id,
        name=snapshot.name,
        source_volume_id=snapshot.source_volume_id,
        size_bytes=snapshot.size_bytes,
        used_bytes=snapshot.used_bytes,
        created_at=_timestamp(snapshot.created_at),
        # The copy has committed by the time anyone can see the snapshot.
        ready_to_use=True,
    )


def _key(ref: pb.VolumeRef | pb.SnapshotRef, what: str) -> VolumeKey:
    which = ref.WhichOneof("ref")
    if which == "id" and ref.id:
        return VolumeKey(id=ref.id)
    if which == "name" and ref.name:
        return VolumeKey(name=ref.name)
    raise InvalidArgument(f"a {what} name or id is required")


def volume_key(ref: pb.VolumeRef) -> VolumeKey:
    return _key(ref, VOLUME)


def snapshot_key(ref: pb.SnapshotRef) -> SnapshotKey:
    return _key(ref, SNAPSHOT)


class VolumeAdminService(admin_pb2_grpc.VolumeAdminServicer):
    def __init__(self, store: VolumeStore, snapshots: SnapshotStore) -> None:
        self._store = store
        self._snapshots = snapshots

    def _content_source(self, request: pb.CreateVolumeRequest) -> ContentSource | None:
        """The source by id; a source named by name is looked up (NOT_FOUND if missing),
        one given by id is checked when the copy is made."""
        source = request.content_source
        which = source.WhichOneof("source")
        if which == "snapshot":
            key = snapshot_key(source.snapshot)
            return ContentSource(SNAPSHOT, key.id or self._snapshots.get(key).id)
        if which == "volume":
            volume = volume_key(source.volume)
            return ContentSource(VOLUME, volume.id or self._store.get(volume).id)
        return None

    def CreateVolume(
        self, request: pb.CreateVolumeRequest, context: grpc.ServicerContext
    ) -> pb.Volume:
        volume = self._store.create(
            request.name,
            request.size_bytes,
            dict(request.parameters),
            self._content_source(request),
        )
        return volume_message(volume)

    def GetVolume(self, request: pb.GetVolumeRequest, context: grpc.ServicerContext) -> pb.Volume:
        return volume_message(self._store.get(volume_key(request.volume)))

    def ListVolumes(
        self, request: pb.ListVolumesRequest, context: grpc.ServicerContext
    ) -> pb.ListVolumesResponse:
        page = self._store.list(request.page_size, request.page_token)
        return pb.ListVolumesResponse(
            volumes=[volume_message(v) for v in page.items], next_page_token=page.next_token
        )

    def ResizeVolume(
        self, request: pb.ResizeVolumeRequest, context: grpc.ServicerContext
    ) -> pb.Volume:
        return volume_message(self._store.resize(volume_key(request.volume), request.size_bytes))

    def DeleteVolume(
        self, request: pb.DeleteVolumeRequest, context: grpc.ServicerContext
    ) -> pb.DeleteVolumeResponse:
        self._store.delete(volume_key(request.volume))
        return pb.DeleteVolumeResponse()

    def GetCapacity(
        self, request: pb.GetCapacityRequest, context: grpc.ServicerContext
    ) -> pb.Capacity:
        report = self._store.capacity()
        return pb.Capacity(
            total_bytes=report.total_bytes,
            available_bytes=report.available_bytes,
            provisioned_bytes=report.provisioned_bytes,
            used_bytes=report.used_bytes,
            volume_count=report.volume_count,
            max_volume_size_bytes=report.max_volume_size,
        )

    def CreateSnapshot(
        self, request: pb.CreateSnapshotRequest, context: grpc.ServicerContext
    ) -> pb.Snapshot:
        source = volume_key(request.source_volume)
        return snapshot_message(self._snapshots.create(request.name, source))

    def GetSnapshot(
        self, request: pb.GetSnapshotRequest, context: grpc.ServicerContext
    ) -> pb.Snapshot:
        return snapshot_message(self._snapshots.get(snapshot_key(request.snapshot)))

    def ListSnapshots(
        self, request: pb.ListSnapshotsRequest, context: grpc.ServicerContext
    ) -> pb.ListSnapshotsResponse:
        page = self._snapshots.list(
            request.page_size,
            request.page_token,
            source_volume_id=request.source_volume_id,
            snapshot_id=request.snapshot_id,
        )
        return pb.ListSnapshotsResponse(
            snapshots=[snapshot_message(s) for s in page.items], next_page_token=page.next_token
        )

    def DeleteSnapshot(
        self, request: pb.DeleteSnapshotRequest, context: grpc.ServicerContext
    ) -> pb.DeleteSnapshotResponse:
        self._snapshots.delete(snapshot_key(request.snapshot))
        return pb.DeleteSnapshotResponse()
