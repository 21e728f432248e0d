"""The Controller service: volumes on the storage server, through its admin API.

The CSI volume id is the storage server's volume id. The CSI name becomes the
server's volume name when the server accepts it as one (Kubernetes' pvc-<uid>
does); any other name the spec allows maps to a name derived from its hash, so
that repeating a CreateVolume always finds the same volume.

Optional features are one entry each in OPTIONAL: the capability list is built
from it, and a request that needs a feature switched off is refused by looking
it up there. Snapshots and clones are copies made by the storage server
(csi.snapshots); a volume made from one is at least as large as its source.
"""

import hashlib
from collections.abc import Callable
from typing import NoReturn, TypeVar, cast

import grpc
from google.protobuf.wrappers_pb2 import Int64Value

from csi import paging, snapshots, validate
from csi.backend import Backend
from csi.errors import CsiError, already_exists, invalid, rpc_code
from csi.locks import VolumeLocks
from proto.csi.v1 import csi_pb2 as csi
from proto.csi.v1 import csi_pb2_grpc
from proto.netvol.v1 import admin_pb2 as pb
from proto.netvol.v1 import admin_pb2_grpc
from storage_server.errors import InvalidArgument
from storage_server.volumes import validate_name

RPC = csi.ControllerServiceCapability.RPC
DEFAULT_SIZE = 2**30

# No GET_SNAPSHOT: the csi-sanity releases in use reject it as unknown.
OPTIONAL = {
    RPC.CREATE_DELETE_SNAPSHOT: True,
    RPC.LIST_SNAPSHOTS: True,
    RPC.CLONE_VOLUME: True,
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
    return csi.Volume(
        capacity_bytes=volume.size_bytes,
        volume_id=volume.id,
        content_source=snapshots.csi_source(volume),
    )


def _unimplemented(self: object, request: object, context: object) -> NoReturn:
    raise CsiError(grpc.StatusCode.UNIMPLEMENTED, "not offered: see ControllerGetCapabilities")


Handler = TypeVar("Handler", bound=Callable[..., object])


def _offered(capability: int) -> Callable[[Handler], Handler]:
    """Serve the method only while its capability is switched on in OPTIONAL."""

    def wrap(method: Handler) -> Handler:
        return method if capability in CAPABILITIES else cast(Handler, _unimplemented)

    return wrap


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
        wanted = validate.capacity(request.capacity_range, 0)
        kind = request.volume_content_source.WhichOneof("type")
        if kind and SOURCE_CAPABILITY[kind] not in CAPABILITIES:
            raise invalid(f"netvol cannot create a volume from a {kind}")
        source = snapshots.server_source(request.volume_content_source)
        with self._locks.hold(name), self._backend.admin(request.secrets) as admin:
            volume = self._existing(admin, name)
            if volume is None:
                create = pb.CreateVolumeRequest(
                    name=name,
                    size_bytes=self._size(admin, wanted, source),
                    parameters=parameters,
                    content_source=source,
                )
                volume = admin.CreateVolume(create, timeout=self._backend.timeout)
            elif not validate.within(request.capacity_range, volume.size_bytes):
                raise already_exists(f"volume {request.name!r} has {volume.size_bytes} bytes")
            elif dict(volume.parameters) != parameters:
                raise already_exists(f"volume {request.name!r} has other parameters")
            elif volume.content_source != (source or pb.ContentSource()):
                raise already_exists(f"volume {request.name!r} has other contents")
        return csi.CreateVolumeResponse(volume=_csi_volume(volume))

    def _size(
        self, admin: admin_pb2_grpc.VolumeAdminStub, wanted: int, source: pb.ContentSource | None
    ) -> int:
        """The size of a new volume asked for `wanted` bytes (0: no wish)."""
        if source is None:
            return wanted or DEFAULT_SIZE
        least = snapshots.source_size(admin, source, self._backend.timeout)
        return snapshots.fitting_size(wanted, least)

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
        with self._backend.admin({}) as admin:

            def fetch(size: int, token: str) -> tuple[list[pb.Volume], str]:
                request = pb.ListVolumesRequest(page_size=size, page_token=token)
                page = admin.ListVolumes(request, timeout=self._backend.timeout)
                return list(page.volumes), page.next_page_token

            volumes, token = paging.collect(fetch, request.max_entries, request.starting_token)
        entries = [csi.ListVolumesResponse.Entry(volume=_csi_volume(v)) for v in volumes]
        return csi.ListVolumesResponse(entries=entries, next_token=token)

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

    @_offered(RPC.CREATE_DELETE_SNAPSHOT)
    def CreateSnapshot(
        self, request: csi.CreateSnapshotRequest, context: object
    ) -> csi.CreateSnapshotResponse:
        name = storage_name(validate.name(request.name))
        source_id = validate.text(request.source_volume_id, "source_volume_id")
        snapshots.check_parameters(request.parameters)
        create = pb.CreateSnapshotRequest(name=name, source_volume=pb.VolumeRef(id=source_id))
        # Snapshot names are apart from volume names, and so are their locks.
        with self._locks.hold(f"snapshot/{name}"), self._backend.admin(request.secrets) as admin:
            snapshot = admin.CreateSnapshot(create, timeout=self._backend.timeout)
        return csi.CreateSnapshotResponse(snapshot=snapshots.csi_snapshot(snapshot))

    @_offered(RPC.CREATE_DELETE_SNAPSHOT)
    def DeleteSnapshot(
        self, request: csi.DeleteSnapshotRequest, context: object
    ) -> csi.DeleteSnapshotResponse:
        snapshot_id = validate.text(request.snapshot_id, "snapshot_id")
        delete = pb.DeleteSnapshotRequest(snapshot=pb.SnapshotRef(id=snapshot_id))
        with (
            self._locks.hold(f"snapshot/{snapshot_id}"),
            self._backend.admin(request.secrets) as admin,
        ):
            # The server deletes the unknown as success, which is what CSI asks.
            admin.DeleteSnapshot(delete, timeout=self._backend.timeout)
        return csi.DeleteSnapshotResponse()

    @_offered(RPC.LIST_SNAPSHOTS)
    def ListSnapshots(
        self, request: csi.ListSnapshotsRequest, context: object
    ) -> csi.ListSnapshotsResponse:
        with self._backend.admin(request.secrets) as admin:

            def fetch(size: int, token: str) -> tuple[list[pb.Snapshot], str]:
                page = admin.ListSnapshots(
                    pb.ListSnapshotsRequest(
                        page_size=size,
                        page_token=token,
                        source_volume_id=request.source_volume_id,
                        snapshot_id=request.snapshot_id,
                    ),
                    timeout=self._backend.timeout,
                )
                return list(page.snapshots), page.next_page_token

            found, token = paging.collect(fetch, request.max_entries, request.starting_token)
        entries = [
            csi.ListSnapshotsResponse.Entry(snapshot=snapshots.csi_snapshot(s)) for s in found
        ]
        return csi.ListSnapshotsResponse(entries=entries, next_token=token)

    # Not in CAPABILITIES. Nothing is attached to a node, so there is no publish.
    ControllerPublishVolume = _unimplemented
    ControllerUnpublishVolume = _unimplemented
    ControllerModifyVolume = _unimplemented
    # csi-sanity rejects the GET_SNAPSHOT capability; ListSnapshots by id serves.
    GetSnapshot = _unimplemented
