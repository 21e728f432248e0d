"""The Identity service, on every mode the plugin runs in."""

import re
from collections.abc import Callable

import grpc
import pytest

from csi.driver import DRIVER_NAME, DRIVER_VERSION
from proto.csi.v1 import csi_pb2 as csi
from tests.csi.conftest import plugin_on
from tests.harness.csi import CsiPlugin, code_of
from tests.harness.processes import wait_until
from tests.harness.server import StorageServer

Service = csi.PluginCapability.Service
Expansion = csi.PluginCapability.VolumeExpansion
# The spec: at most 63 characters, domain-name notation; csi-sanity also asks
# that it begin and end with a letter.
PLUGIN_NAME = re.compile(r"^[A-Za-z]([A-Za-z0-9._-]{0,61}[A-Za-z])?$")


def _capabilities(plugin: CsiPlugin) -> list[str]:
    reply = plugin.identity.GetPluginCapabilities(csi.GetPluginCapabilitiesRequest())
    found = []
    for capability in reply.capabilities:
        if capability.HasField("service"):
            found.append(Service.Type.Name(capability.service.type))
        else:
            found.append(Expansion.Type.Name(capability.volume_expansion.type))
    return found


def test_plugin_info(plugin: CsiPlugin) -> None:
    info = plugin.identity.GetPluginInfo(csi.GetPluginInfoRequest())
    assert info.name == DRIVER_NAME == "csi.netvol.dev"
    assert PLUGIN_NAME.match(info.name)
    assert info.vendor_version == DRIVER_VERSION


def test_capabilities_are_controller_service_and_online_expansion(plugin: CsiPlugin) -> None:
    # No VOLUME_ACCESSIBILITY_CONSTRAINTS: every node reaches every volume.
    assert _capabilities(plugin) == ["CONTROLLER_SERVICE", "ONLINE"]


def test_probe_is_ready_while_the_storage_server_answers(plugin: CsiPlugin) -> None:
    reply = plugin.identity.Probe(csi.ProbeRequest())
    assert reply.HasField("ready") and reply.ready.value


@pytest.mark.parametrize("mode", ["node", "all"])
def test_a_node_plugin_is_ready_without_the_storage_server(
    own_server: StorageServer, mode: str
) -> None:
    # Its mounts wait for the server; a failed liveness probe would end them.
    with plugin_on(own_server, mode) as plugin:
        own_server.stop()
        reply = plugin.identity.Probe(csi.ProbeRequest())
        assert reply.HasField("ready") and reply.ready.value


def test_controller_probe_follows_the_storage_server(own_server: StorageServer) -> None:
    with plugin_on(own_server, "controller") as plugin:
        own_server.stop()
        reply = plugin.identity.Probe(csi.ProbeRequest())
        assert reply.HasField("ready") and not reply.ready.value
        own_server.start()
        wait_until(lambda: plugin.identity.Probe(csi.ProbeRequest()).ready.value, 30, "ready again")


@pytest.mark.parametrize(
    ("mode", "served", "refused"),
    [("controller", "controller", "node"), ("node", "node", "controller")],
)
def test_each_mode_serves_its_services_and_the_same_identity(
    plugin: CsiPlugin, mode: str, served: str, refused: str
) -> None:
    with plugin_on(plugin.server, mode) as other:
        assert _capabilities(other) == _capabilities(plugin)
        calls: dict[str, tuple[Callable[..., object], object]] = {
            "controller": (
                other.controller.ControllerGetCapabilities,
                csi.ControllerGetCapabilitiesRequest(),
            ),
            "node": (other.node.NodeGetCapabilities, csi.NodeGetCapabilitiesRequest()),
        }
        assert code_of(*calls[served]) == grpc.StatusCode.OK
        assert code_of(*calls[refused]) == grpc.StatusCode.UNIMPLEMENTED
