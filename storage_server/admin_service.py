"""The VolumeAdmin gRPC service: translates messages to VolumeStore calls and back."""

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from proto.netvol.v1 import admin_pb2 as pb
from proto.netvol.v1 import admin_pb2_grpc
from storage_server.errors import InvalidArgument
from storage_server.models import Volume
from storage_server.volumes import VolumeKey, VolumeStore


def volume_message(volume: Volume) -> pb.Volume:
    created = Timestamp()
    created.FromDatetime(volume.created_at)
    return pb.Volume(
        id=volume.id,
        name=volume.name,
        size_bytes=volume.size_bytes,
        used_bytes=volume.used_bytes,
        parameters=volume.parameters,
        created_at=created,
    )


def volume_key(ref: pb.VolumeRef) -> VolumeKey:
    which = ref.WhichOneof("ref")
    if which == "id" and ref.id:
        return VolumeKey(id=ref.id)
    if which == "name" and ref.name:
        return VolumeKey(name=ref.name)
    raise InvalidArgument("a volume name or id is required")


class VolumeAdminService(admin_pb2_grpc.VolumeAdminServicer):
    def __init__(self, store: VolumeStore) -> None:
        self._store = store

    def CreateVolume(
        self, request: pb.CreateVolumeRequest, context: grpc.ServicerContext
    ) -> pb.Volume:
        volume = self._store.create(request.name, request.size_bytes, dict(request.parameters))
        return volume_message(volume)

    def GetVolume(self, request: pb.GetVolumeRequest, context: grpc.ServicerContext) -> pb.Volume:
        return volume_message(self._store.get(volume_key(request.volume)))

    def ListVolumes(
        self, request: pb.ListVolumesRequest, context: grpc.ServicerContext
    ) -> pb.ListVolumesResponse:
        page = self._store.list(request.page_size, request.page_token)
        return pb.ListVolumesResponse(
            volumes=[volume_message(v) for v in page.volumes], next_page_token=page.next_token
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
