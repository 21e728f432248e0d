"""The Controller service against a real storage server, as the CSI spec and
csi-sanity's controller checks require."""

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from proto.csi.v1 import csi_pb2 as csi
from proto.netvol.v1 import admin_pb2 as pb
from tests.csi.resources import GiB, Resources, every_page, unique
from tests.harness.csi import AccessMode, CsiPlugin, block_capability, code_of, mount_capability

RPC = csi.ControllerServiceCapability.RPC
# What the plugin can do, and nothing csi-sanity does not know (no GET_SNAPSHOT).
EXPECTED = {
    "CREATE_DELETE_VOLUME",
    "LIST_VOLUMES",
    "GET_CAPACITY",
    "EXPAND_VOLUME",
    "GET_VOLUME",
    "SINGLE_NODE_MULTI_WRITER",
    "CREATE_DELETE_SNAPSHOT",
    "LIST_SNAPSHOTS",
    "CLONE_VOLUME",
}
ALL_MODES = [m for m in AccessMode.Mode.values() if m != AccessMode.UNKNOWN]


def _list_all(plugin: CsiPlugin) -> list[csi.ListVolumesResponse.Entry]:
    return list(plugin.controller.ListVolumes(csi.ListVolumesRequest()).entries)


def _ids(plugin: CsiPlugin) -> set[str]:
    return {e.volume.volume_id for e in _list_all(plugin)}


def _server_volume(plugin: CsiPlugin, volume_id: str) -> pb.Volume:
    request = pb.GetVolumeRequest(volume=pb.VolumeRef(id=volume_id))
    return plugin.server.admin().GetVolume(request)


# ---------------------------------------------------------------- capabilities


def test_capabilities_list_exactly_what_is_implemented(plugin: CsiPlugin) -> None:
    reply = plugin.controller.ControllerGetCapabilities(csi.ControllerGetCapabilitiesRequest())
    names = [RPC.Type.Name(c.rpc.type) for c in reply.capabilities]
    assert len(names) == len(set(names))
    assert set(names) == EXPECTED


@pytest.mark.parametrize(
    ("method", "request_"),
    [
        ("ControllerPublishVolume", csi.ControllerPublishVolumeRequest(volume_id="v")),
        ("ControllerUnpublishVolume", csi.ControllerUnpublishVolumeRequest(volume_id="v")),
        ("GetSnapshot", csi.GetSnapshotRequest(snapshot_id="s")),
        ("ControllerModifyVolume", csi.ControllerModifyVolumeRequest(volume_id="v")),
    ],
)
def test_calls_not_offered_are_unimplemented(
    plugin: CsiPlugin, method: str, request_: object
) -> None:
    assert code_of(getattr(plugin.controller, method), request_) == (grpc.StatusCode.UNIMPLEMENTED)


# ----------------------------------------------------------------- GetCapacity


def test_get_capacity_reports_the_servers_free_space(plugin: CsiPlugin) -> None:
    reply = plugin.controller.GetCapacity(csi.GetCapacityRequest())
    server = plugin.server.admin().GetCapacity(pb.GetCapacityRequest())
    assert reply.available_capacity > 0
    # Free space moves as other tests write; it is the blob store's disk.
    assert abs(reply.available_capacity - server.available_bytes) < GiB
    assert reply.maximum_volume_size.value == server.max_volume_size_bytes


def test_get_capacity_for_unsupported_capabilities_is_zero(plugin: CsiPlugin) -> None:
    request = csi.GetCapacityRequest(volume_capabilities=[block_capability()])
    assert plugin.controller.GetCapacity(request).available_capacity == 0


# ---------------------------------------------------------------- CreateVolume


def test_create_without_name_or_capabilities_is_invalid(plugin: CsiPlugin) -> None:
    create = plugin.controller.CreateVolume
    no_name = csi.CreateVolumeRequest(volume_capabilities=[mount_capability()])
    assert code_of(create, no_name) == grpc.StatusCode.INVALID_ARGUMENT
    no_caps = csi.CreateVolumeRequest(name=unique("nocaps"))
    assert code_of(create, no_caps) == grpc.StatusCode.INVALID_ARGUMENT


def test_create_gives_the_required_size_and_the_servers_id(resources: Resources) -> None:
    volume = resources.create(size=10 * GiB)
    assert volume.capacity_bytes == 10 * GiB
    assert _server_volume(resources.plugin, volume.volume_id).size_bytes == 10 * GiB


@pytest.mark.parametrize(
    ("wanted", "size"),
    [
        (csi.CapacityRange(), GiB),
        (csi.CapacityRange(limit_bytes=3 * GiB), 3 * GiB),
        (csi.CapacityRange(required_bytes=2 * GiB, limit_bytes=3 * GiB), 2 * GiB),
        (csi.CapacityRange(required_bytes=5 * GiB, limit_bytes=5 * GiB), 5 * GiB),
    ],
)
def test_create_size_follows_the_capacity_range(
    resources: Resources, wanted: csi.CapacityRange, size: int
) -> None:
    assert resources.create(capacity_range=wanted).capacity_bytes == size


def test_create_is_idempotent_by_name(resources: Resources) -> None:
    name = unique("same")
    first = resources.create(name, size=2 * GiB)
    for _ in range(10):
        again = resources.create(name, size=2 * GiB)
        assert again == first
    # A range the existing volume satisfies is the same request, too.
    wider = resources.create(name, capacity_range=csi.CapacityRange(limit_bytes=4 * GiB))
    assert wider.volume_id == first.volume_id


def test_same_name_with_other_size_or_parameters_already_exists(resources: Resources) -> None:
    name = unique("clash")
    exact = csi.CapacityRange(required_bytes=GiB, limit_bytes=GiB)
    resources.create(name, capacity_range=exact, parameters={"tier": "fast"})
    create = resources.plugin.controller.CreateVolume
    bigger = csi.CapacityRange(required_bytes=2 * GiB, limit_bytes=2 * GiB)
    for changed in ({"capacity_range": bigger}, {"parameters": {"tier": "slow"}}):
        request = csi.CreateVolumeRequest(
            name=name,
            volume_capabilities=[mount_capability()],
            **{"capacity_range": exact, "parameters": {"tier": "fast"}, **changed},  # type: ignore[arg-type]
        )
        assert code_of(create, request) == grpc.StatusCode.ALREADY_EXISTS


def test_create_with_a_128_character_name(resources: Resources) -> None:
    name = "a" * 128
    first = resources.create(name)
    assert resources.create(name) == first


def test_names_the_server_would_refuse_still_work(resources: Resources) -> None:
    # Any Unicode string without control characters is a valid CSI name.
    for name in ("my volume/1", "ünïcode-名前", "-leading-dash"):
        first = resources.create(name)
        assert resources.create(name).volume_id == first.volume_id


def test_storage_class_parameters_become_volume_parameters(resources: Resources) -> None:
    parameters = {"tier": "fast", "csi.storage.k8s.io/pvc/name": "data"}
    volume = resources.create(parameters=parameters)
    assert dict(_server_volume(resources.plugin, volume.volume_id).parameters) == parameters


def test_every_access_mode_is_served_for_mounts(resources: Resources) -> None:
    capabilities = [mount_capability(mode) for mode in ALL_MODES]
    volume = resources.create(volume_capabilities=capabilities)
    assert volume.volume_id


@pytest.mark.parametrize(
    ("wanted", "code"),
    [
        (csi.CapacityRange(required_bytes=2 * GiB, limit_bytes=GiB), grpc.StatusCode.OUT_OF_RANGE),
        (csi.CapacityRange(required_bytes=2**62), grpc.StatusCode.OUT_OF_RANGE),
        (csi.CapacityRange(required_bytes=-1), grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_create_with_an_impossible_capacity(
    plugin: CsiPlugin, wanted: csi.CapacityRange, code: grpc.StatusCode
) -> None:
    request = csi.CreateVolumeRequest(
        name=unique("range"), capacity_range=wanted, volume_capabilities=[mount_capability()]
    )
    before = _ids(plugin)
    assert code_of(plugin.controller.CreateVolume, request) == code
    assert _ids(plugin) == before


def test_concurrent_creates_of_one_name_make_one_volume(resources: Resources) -> None:
    name = unique("race")
    request = csi.CreateVolumeRequest(name=name, volume_capabilities=[mount_capability()])

    def attempt(_: int) -> tuple[grpc.StatusCode, str]:
        try:
            return grpc.StatusCode.OK, resources.plugin.controller.CreateVolume(
                request
            ).volume.volume_id
        except grpc.RpcError as exc:
            return exc.code(), ""

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(16)))
    assert {code for code, _ in results} <= {grpc.StatusCode.OK, grpc.StatusCode.ABORTED}
    ids = {volume_id for code, volume_id in results if code == grpc.StatusCode.OK}
    assert len(ids) == 1
    resources.volumes.append(ids.pop())


def test_a_token_in_the_secrets_is_used(resources: Resources) -> None:
    wrong = csi.CreateVolumeRequest(
        name=unique("secret"), volume_capabilities=[mount_capability()], secrets={"token": "nope"}
    )
    assert code_of(resources.plugin.controller.CreateVolume, wrong) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    token = resources.plugin.server.token_file.read_text().strip()
    assert resources.create(secrets={"token": token}).volume_id


# ---------------------------------------------------------------- DeleteVolume


def test_delete(plugin: CsiPlugin, resources: Resources) -> None:
    volume = resources.create()
    delete = csi.DeleteVolumeRequest(volume_id=volume.volume_id)
    plugin.controller.DeleteVolume(delete)
    assert volume.volume_id not in _ids(plugin)
    plugin.controller.DeleteVolume(delete)


def test_delete_of_an_unknown_volume_succeeds(plugin: CsiPlugin) -> None:
    for volume_id in ("fake-vol-id", "fake-vol-id-0123456789", "00000000-0000-0000-0000-0"):
        plugin.controller.DeleteVolume(csi.DeleteVolumeRequest(volume_id=volume_id))


def test_delete_without_id_is_invalid(plugin: CsiPlugin) -> None:
    assert code_of(plugin.controller.DeleteVolume, csi.DeleteVolumeRequest()) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


# ---------------------------------------------------------------- ValidateVolumeCapabilities


def test_validate_confirms_supported_capabilities(resources: Resources) -> None:
    volume = resources.create(parameters={"tier": "fast"})
    capabilities = [mount_capability(mode) for mode in ALL_MODES]
    reply = resources.plugin.controller.ValidateVolumeCapabilities(
        csi.ValidateVolumeCapabilitiesRequest(
            volume_id=volume.volume_id,
            volume_capabilities=capabilities,
            parameters={"tier": "fast"},
        )
    )
    assert list(reply.confirmed.volume_capabilities) == capabilities
    assert dict(reply.confirmed.parameters) == {"tier": "fast"}


@pytest.mark.parametrize(
    "change",
    [
        {"volume_capabilities": [block_capability()]},
        {"volume_capabilities": [mount_capability(fs_type="ext4")]},
        {"volume_capabilities": [mount_capability(flags=["hard"])]},
        {"volume_capabilities": [mount_capability(mode=AccessMode.UNKNOWN)]},
        {"parameters": {"tier": "slow"}},
    ],
)
def test_validate_does_not_confirm_what_is_not_supported(
    resources: Resources, change: dict[str, object]
) -> None:
    volume = resources.create(parameters={"tier": "fast"})
    fields: dict[str, object] = {"volume_capabilities": [mount_capability()], **change}
    reply = resources.plugin.controller.ValidateVolumeCapabilities(
        csi.ValidateVolumeCapabilitiesRequest(volume_id=volume.volume_id, **fields)  # type: ignore[arg-type]
    )
    assert not reply.HasField("confirmed")
    assert reply.message


def test_validate_needs_id_and_capabilities_and_a_volume(resources: Resources) -> None:
    validate = resources.plugin.controller.ValidateVolumeCapabilities
    volume = resources.create()
    caps = [mount_capability()]
    no_id = csi.ValidateVolumeCapabilitiesRequest(volume_capabilities=caps)
    no_caps = csi.ValidateVolumeCapabilitiesRequest(volume_id=volume.volume_id)
    unknown = csi.ValidateVolumeCapabilitiesRequest(
        volume_id="fake-vol-id-0123456789", volume_capabilities=caps
    )
    assert code_of(validate, no_id) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(validate, no_caps) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(validate, unknown) == grpc.StatusCode.NOT_FOUND


# ----------------------------------------------------------------- ListVolumes


def test_list_shows_new_volumes_and_forgets_deleted_ones(resources: Resources) -> None:
    plugin = resources.plugin
    before = len(_list_all(plugin))
    volume = resources.create("sanity-list")
    entries = _list_all(plugin)
    assert len(entries) == before + 1
    assert all(e.volume.volume_id for e in entries)
    plugin.controller.DeleteVolume(csi.DeleteVolumeRequest(volume_id=volume.volume_id))
    assert len(_list_all(plugin)) == before


def test_list_pages_cover_every_volume_once(resources: Resources) -> None:
    for _ in range(5):
        resources.create()
    plugin = resources.plugin
    everything = [e.volume.volume_id for e in _list_all(plugin)]
    pages = every_page(plugin.controller.ListVolumes, csi.ListVolumesRequest, 2)
    assert [e.volume.volume_id for e in pages] == everything


def test_list_rest_after_a_token_comes_whole(resources: Resources) -> None:
    for _ in range(5):
        resources.create()
    plugin = resources.plugin
    total = len(_list_all(plugin))
    first = plugin.controller.ListVolumes(csi.ListVolumesRequest(max_entries=2))
    assert len(first.entries) == 2 and first.next_token
    rest = plugin.controller.ListVolumes(csi.ListVolumesRequest(starting_token=first.next_token))
    assert len(rest.entries) == total - 2
    assert not rest.next_token


def test_list_token_survives_deleting_the_last_listed_volume(resources: Resources) -> None:
    for _ in range(3):
        resources.create()
    plugin = resources.plugin
    first = plugin.controller.ListVolumes(csi.ListVolumesRequest(max_entries=2))
    for entry in first.entries:
        plugin.controller.DeleteVolume(csi.DeleteVolumeRequest(volume_id=entry.volume.volume_id))
    resources.create(unique("new-addition"))
    rest = plugin.controller.ListVolumes(csi.ListVolumesRequest(starting_token=first.next_token))
    live = _ids(plugin)
    listed = [e.volume.volume_id for e in rest.entries]
    assert len(listed) == len(set(listed))
    assert set(listed) <= live


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (csi.ListVolumesRequest(starting_token="invalid-token"), grpc.StatusCode.ABORTED),
        (csi.ListVolumesRequest(starting_token="%%%"), grpc.StatusCode.ABORTED),
        (csi.ListVolumesRequest(max_entries=-1), grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_list_with_a_bad_request(
    plugin: CsiPlugin, request_: csi.ListVolumesRequest, code: grpc.StatusCode
) -> None:
    assert code_of(plugin.controller.ListVolumes, request_) == code


# ----------------------------------------------------------------- expansion


def test_expand_reports_exactly_the_requested_size(resources: Resources) -> None:
    volume = resources.create(size=10 * GiB)
    wanted = 11 * GiB + 4096 * 3 + 1
    reply = resources.plugin.controller.ControllerExpandVolume(
        csi.ControllerExpandVolumeRequest(
            volume_id=volume.volume_id,
            capacity_range=csi.CapacityRange(required_bytes=wanted),
            volume_capability=mount_capability(),
        )
    )
    assert reply.capacity_bytes == wanted
    assert not reply.node_expansion_required
    assert _server_volume(resources.plugin, volume.volume_id).size_bytes == wanted


def test_expand_to_a_smaller_size_keeps_the_volume(resources: Resources) -> None:
    volume = resources.create(size=4 * GiB)
    expand = resources.plugin.controller.ControllerExpandVolume
    smaller = csi.ControllerExpandVolumeRequest(
        volume_id=volume.volume_id, capacity_range=csi.CapacityRange(required_bytes=GiB)
    )
    assert expand(smaller).capacity_bytes == 4 * GiB
    capped = csi.ControllerExpandVolumeRequest(
        volume_id=volume.volume_id,
        capacity_range=csi.CapacityRange(required_bytes=GiB, limit_bytes=2 * GiB),
    )
    assert code_of(expand, capped) == grpc.StatusCode.OUT_OF_RANGE
    assert _server_volume(resources.plugin, volume.volume_id).size_bytes == 4 * GiB


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (
            csi.ControllerExpandVolumeRequest(capacity_range=csi.CapacityRange(required_bytes=GiB)),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (csi.ControllerExpandVolumeRequest(), grpc.StatusCode.INVALID_ARGUMENT),
        (
            csi.ControllerExpandVolumeRequest(
                volume_id="fake-vol-id-0123456789",
                capacity_range=csi.CapacityRange(required_bytes=GiB),
            ),
            grpc.StatusCode.NOT_FOUND,
        ),
    ],
)
def test_expand_with_a_bad_request(
    plugin: CsiPlugin, request_: csi.ControllerExpandVolumeRequest, code: grpc.StatusCode
) -> None:
    assert code_of(plugin.controller.ControllerExpandVolume, request_) == code


def test_expand_without_a_range_is_invalid(resources: Resources) -> None:
    volume = resources.create()
    request = csi.ControllerExpandVolumeRequest(volume_id=volume.volume_id)
    assert code_of(resources.plugin.controller.ControllerExpandVolume, request) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


# ----------------------------------------------------------------- ControllerGetVolume


def test_get_volume(resources: Resources) -> None:
    volume = resources.create(size=3 * GiB)
    get = resources.plugin.controller.ControllerGetVolume
    reply = get(csi.ControllerGetVolumeRequest(volume_id=volume.volume_id))
    assert reply.volume == volume
    unknown = csi.ControllerGetVolumeRequest(volume_id="fake-vol-id-0123456789")
    assert code_of(get, unknown) == grpc.StatusCode.NOT_FOUND
    assert code_of(get, csi.ControllerGetVolumeRequest()) == grpc.StatusCode.INVALID_ARGUMENT
