"""The Controller service: volumes on the storage server, through its admin API.

The CSI volume id is the storage server's volume id. The CSI name becomes the
server's volume name when the server accepts it as one (Kubernetes' pvc-<uid>
does); any other name the spec allows maps to a name derived from its hash, so
that repeating a CreateVolume always finds the same volume.

Optional features are one entry each in OPTIONAL: the capability list is built
from it, and a request that needs a feature switched off is refused by looking
it up there. Snapshots and clones wait for copy support in the storage server.
"""

import hashlib
from typing import NoReturn

import grpc
from google.protobuf.wrappers_pb2 import Int64Value

from csi import validate
from csi.backend import Backend
from csi.errors import CsiError, already_exists, invalid, rpc_code
from csi.locks import VolumeLocks
from proto.csi.v1 import csi_pb2 as csi
from proto.csi.v1 import csi_pb2_grpc
from proto.netvol.v1 import admin_pb2 as pb
from proto.netvol.v1 import admin_pb2_grpc
from storage_server.errors import InvalidArgument
from storage_server.volumes import MAX_PAGE_SIZE, validate_name

RPC = csi.ControllerServiceCapability.RPC
DEFAULT_SIZE = 2**30

OPTIONAL = {
    RPC.CREATE_DELETE_SNAPSHOT: False,
    RPC.LIST_SNAPSHOTS: False,
    RPC.CLONE_VOLUME: False,
}
CAPABILITIES = [
    RPC.CREATE_DELETE_VOLUME,
    RPC.LIST_VOLUMES,
    RPC.GET_CAPACITY,
    RPC.EXPAND_VOLUME,
    RPC.GET_VOLUME,
    # The spec asks for it from plugins that serve the SINGLE_NODE_SINGLE_WRITER
    # and SINGLE_NODE_MULTI_WRITER access modes.
    RPC.SINGLE_NODE_MULTI_WRITER,
    *(capability for capability, enabled in OPTIONAL.items() if enabled),
]
# What a volume_content_source of each kind needs.
SOURCE_CAPABILITY = {"snapshot": RPC.CREATE_DELETE_SNAPSHOT, "volume": RPC.CLONE_VOLUME}


def storage_name(name: str) -> str:
    """The storage server's volume name for a CSI volume name."""
    try:
        return validate_name(name)
    except InvalidArgument:
        return "csi-" + hashlib.sha256(name.encode()).hexdigest()[:40]


def _csi_volume(volume: pb.Volume) -> csi.Volume:
    return csi.Volume(capacity_bytes=volume.size_bytes, volume_id=volume.id)


def _unimplemented(self: object, request: object, context: object) -> NoReturn:
    raise CsiError(grpc.StatusCode.UNIMPLEMENTED, "not offered: see ControllerGetCapabilities")


class Controller(csi_pb2_grpc.ControllerServicer):
    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._locks = VolumeLocks()

    def ControllerGetCapabilities(
        self, request: csi.ControllerGetCapabilitiesRequest, context: object
    ) -> csi.ControllerGetCapabilitiesResponse:
        return csi.ControllerGetCapabilitiesResponse(
            capabilities=[
                csi.ControllerServiceCapability(rpc=RPC(type=capability))
                for capability in CAPABILITIES
            ]
        )

    def CreateVolume(
        self, request: csi.CreateVolumeRequest, context: object
    ) -> csi.CreateVolumeResponse:
        name = storage_name(validate.name(request.name))
        validate.capabilities(request.volume_capabilities, "volume_capabilities")
        parameters = validate.parameters(dict(request.parameters), "parameters")
        size = validate.capacity(request.capacity_range, DEFAULT_SIZE)
        source = request.volume_content_source.WhichOneof("type")
        if source and SOURCE_CAPABILITY[source] not in CAPABILITIES:
            raise invalid(f"netvol cannot create a volume from a {source} yet")
        with self._locks.hold(name), self._backend.admin(request.secrets) as admin:
            volume = self._existing(admin, name)
            if volume is None:
                create = pb.CreateVolumeRequest(name=name, size_bytes=size, parameters=parameters)
                volume = admin.CreateVolume(create, timeout=self._backend.timeout)
            elif not validate.within(request.capacity_range, volume.size_bytes):
                raise already_exists(f"volume {request.name!r} has {volume.size_bytes} bytes")
            elif dict(volume.parameters) != parameters:
                raise already_exists(f"volume {request.name!r} has other parameters")
        return csi.CreateVolumeResponse(volume=_csi_volume(volume))

    def _existing(self, admin: admin_pb2_grpc.VolumeAdminStub, name: str) -> pb.Volume | None:
        request = pb.GetVolumeRequest(volume=pb.VolumeRef(name=name))
        try:
            return admin.GetVolume(request, timeout=self._backend.timeout)
        except grpc.RpcError as exc:
            if rpc_code(exc) == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    def DeleteVolume(
        self, request: csi.DeleteVolumeRequest, context: object
    ) -> csi.DeleteVolumeResponse:
        volume_id = validate.text(request.volume_id, "volume_id")
        delete = pb.DeleteVolumeRequest(volume=pb.VolumeRef(id=volume_id))
        with self._locks.hold(volume_id), self._backend.admin(request.secrets) as admin:
            # The server deletes the unknown as success, which is what CSI asks.
            admin.DeleteVolume(delete, timeout=self._backend.timeout)
        return csi.DeleteVolumeResponse()

    def ValidateVolumeCapabilities(
        self, request: csi.ValidateVolumeCapabilitiesRequest, context: object
    ) -> csi.ValidateVolumeCapabilitiesResponse:
        volume_id = validate.text(request.volume_id, "volume_id")
        if not request.volume_capabilities:
            raise invalid("volume_capabilities is required")
        volume = self._backend.volume(volume_id, request.secrets)
        problems = [validate.capability_problem(c) for c in request.volume_capabilities]
        if any(problems):
            return csi.ValidateVolumeCapabilitiesResponse(message=next(p for p in problems if p))
        if request.parameters and dict(request.parameters) != dict(volume.parameters):
            return csi.ValidateVolumeCapabilitiesResponse(
                message="the volume was created with other parameters"
            )
        confirmed = csi.ValidateVolumeCapabilitiesResponse.Confirmed(
            volume_context=request.volume_context,
            volume_capabilities=request.volume_capabilities,
            parameters=request.parameters,
        )
        return csi.ValidateVolumeCapabilitiesResponse(confirmed=confirmed)

    def ListVolumes(
        self, request: csi.ListVolumesRequest, context: object
    ) -> csi.ListVolumesResponse:
        if request.max_entries < 0:
            raise invalid("max_entries must not be negative")
        wanted = request.max_entries
        volumes: list[pb.Volume] = []
        token = request.starting_token
        # The server's keyset token (the last name listed) is ours too: it stays
        # valid when that volume is deleted, and holds no state in the plugin.
        with self._backend.admin({}) as admin:
            while True:
                room = wanted - len(volumes) if wanted else MAX_PAGE_SIZE
                page = self._page(admin, min(room, MAX_PAGE_SIZE), token)
                volumes.extend(page.volumes)
                token = page.next_page_token
                if not token or (wanted and len(volumes) >= wanted):
                    break
        entries = [csi.ListVolumesResponse.Entry(volume=_csi_volume(v)) for v in volumes]
        return csi.ListVolumesResponse(entries=entries, next_token=token)

    def _page(
        self, admin: admin_pb2_grpc.VolumeAdminStub, size: int, token: str
    ) -> pb.ListVolumesResponse:
        request = pb.ListVolumesRequest(page_size=size, page_token=token)
        try:
            return admin.ListVolumes(request, timeout=self._backend.timeout)
        except grpc.RpcError as exc:
            # The page size is always valid, so the token is what the server refused.
            if rpc_code(exc) == grpc.StatusCode.INVALID_ARGUMENT:
                raise CsiError(
                    grpc.StatusCode.ABORTED, f"invalid starting_token {token!r}; list again"
                ) from exc
            raise

    def GetCapacity(
        self, request: csi.GetCapacityRequest, context: object
    ) -> csi.GetCapacityResponse:
        if any(validate.capability_problem(c) for c in request.volume_capabilities):
            # No volume with these capabilities can be made, in any amount.
            return csi.GetCapacityResponse(available_capacity=0)
        with self._backend.admin({}) as admin:
            capacity = admin.GetCapacity(pb.GetCapacityRequest(), timeout=self._backend.timeout)
        return csi.GetCapacityResponse(
            available_capacity=capacity.available_bytes,
            maximum_volume_size=Int64Value(value=capacity.max_volume_size_bytes),
        )

    def ControllerExpandVolume(
        self, request: csi.ControllerExpandVolumeRequest, context: object
    ) -> csi.ControllerExpandVolumeResponse:
        volume_id = validate.text(request.volume_id, "volume_id")
        validate.optional_capability(request.volume_capability)
        size = validate.capacity(request.capacity_range, 0)
        if not size:
            raise invalid("capacity_range with required_bytes or limit_bytes is required")
        with self._locks.hold(volume_id):
            volume = self._backend.volume(volume_id, request.secrets)
            if volume.size_bytes < size:
                resize = pb.ResizeVolumeRequest(volume=pb.VolumeRef(id=volume_id), size_bytes=size)
                with self._backend.admin(request.secrets) as admin:
                    volume = admin.ResizeVolume(resize, timeout=self._backend.timeout)
            elif not validate.within(request.capacity_range, volume.size_bytes):
                raise CsiError(
                    grpc.StatusCode.OUT_OF_RANGE,
                    f"volumes cannot shrink; this one has {volume.size_bytes} bytes",
                )
        # FUSE mounts ask the server for the size, so nodes need do nothing.
        return csi.ControllerExpandVolumeResponse(
            capacity_bytes=volume.size_bytes, node_expansion_required=False
        )

    def ControllerGetVolume(
        self, request: csi.ControllerGetVolumeRequest, context: object
    ) -> csi.ControllerGetVolumeResponse:
        volume_id = validate.text(request.volume_id, "volume_id")
        volume = self._backend.volume(volume_id, {})
        return csi.ControllerGetVolumeResponse(
            volume=_csi_volume(volume), status=csi.ControllerGetVolumeResponse.VolumeStatus()
        )

    # Not in CAPABILITIES. Nothing is attached to a node, so there is no publish.
    ControllerPublishVolume = _unimplemented
    ControllerUnpublishVolume = _unimplemented
    ControllerModifyVolume = _unimplemented
    CreateSnapshot = _unimplemented
    DeleteSnapshot = _unimplemented
    ListSnapshots = _unimplemented
    GetSnapshot = _unimplemented
