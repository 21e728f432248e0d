"""The Identity service: who the plugin is, what it offers, whether it is ready."""

from google.protobuf.wrappers_pb2 import BoolValue

from csi.backend import Backend
from csi.driver import DRIVER_NAME, DRIVER_VERSION
from proto.csi.v1 import csi_pb2 as csi
from proto.csi.v1 import csi_pb2_grpc

Capability = csi.PluginCapability

# The same in every mode, as the spec requires of all instances of one version.
# No VOLUME_ACCESSIBILITY_CONSTRAINTS: every node reaches every volume.
CAPABILITIES = [
    Capability(service=Capability.Service(type=Capability.Service.CONTROLLER_SERVICE)),
    # A volume grows on the server while mounted; FUSE sees the new size at once.
    Capability(volume_expansion=Capability.VolumeExpansion(type=Capability.VolumeExpansion.ONLINE)),
]


class Identity(csi_pb2_grpc.IdentityServicer):
    def __init__(self, backend: Backend, *, needs_server: bool) -> None:
        self._backend = backend
        # A node plugin is ready whenever it serves: its FUSE mounts wait out a
        # storage server outage (hard mounts), and a liveness probe that failed
        # with the server would restart the plugin and end every mount on the node.
        self._needs_server = needs_server

    def GetPluginInfo(
        self, request: csi.GetPluginInfoRequest, context: object
    ) -> csi.GetPluginInfoResponse:
        return csi.GetPluginInfoResponse(name=DRIVER_NAME, vendor_version=DRIVER_VERSION)

    def GetPluginCapabilities(
        self, request: csi.GetPluginCapabilitiesRequest, context: object
    ) -> csi.GetPluginCapabilitiesResponse:
        return csi.GetPluginCapabilitiesResponse(capabilities=CAPABILITIES)

    def Probe(self, request: csi.ProbeRequest, context: object) -> csi.ProbeResponse:
        # A controller is not ready (rather than failing) while the storage
        # server does not answer: it is sound and will serve once the server does.
        ready = not self._needs_server or self._backend.serving()
        return csi.ProbeResponse(ready=BoolValue(value=ready))
