"""One log line per call, with method, volume, status and duration; secrets never."""

import re

from csi.boundary import strip_secrets
from proto.csi.v1 import csi_pb2 as csi
from tests.csi.conftest import plugin_on
from tests.harness.csi import code_of, mount_capability
from tests.harness.server import StorageServer

LINE = re.compile(r"msg=rpc method=(\w+) volume=(\S*) code=(\w+) ms=[\d.]+")


def _secret_fields() -> list[tuple[str, str]]:
    found = []
    for message in csi.DESCRIPTOR.message_types_by_name.values():
        for field in message.fields:
            if field.GetOptions().Extensions[csi.csi_secret]:
                found.append((message.name, field.name))
    return found


def test_every_secret_field_is_stripped() -> None:
    fields = _secret_fields()
    assert len(fields) > 15
    for message_name, field_name in fields:
        message = getattr(csi, message_name)(**{field_name: {"token": "s3cret"}})
        assert "s3cret" not in str(strip_secrets(message)), message_name


def test_a_line_per_call_without_secrets(sqlite_storage: StorageServer) -> None:
    token = sqlite_storage.token_file.read_text().strip()
    with plugin_on(sqlite_storage, "all", "--log-level=debug") as plugin:
        created = plugin.controller.CreateVolume(
            csi.CreateVolumeRequest(
                name="logged",
                volume_capabilities=[mount_capability()],
                parameters={"visible": "yes"},
                secrets={"token": token},
            )
        )
        volume_id = created.volume.volume_id
        stage = csi.NodeStageVolumeRequest(
            volume_id=volume_id, staging_target_path="relative", secrets={"token": token}
        )
        code_of(plugin.node.NodeStageVolume, stage)
        plugin.controller.DeleteVolume(
            csi.DeleteVolumeRequest(volume_id=volume_id, secrets={"token": token})
        )
        log = plugin.log()
    assert token not in log
    calls = [LINE.search(line) for line in log.splitlines() if "msg=rpc" in line]
    assert all(calls)
    summary = [m.groups() for m in calls if m and m.group(1) != "GetPluginInfo"]
    assert summary == [
        ("CreateVolume", "logged", "OK"),
        ("NodeStageVolume", volume_id, "INVALID_ARGUMENT"),
        ("DeleteVolume", volume_id, "OK"),
    ]
    assert "visible" in log  # the request itself is logged at debug level
