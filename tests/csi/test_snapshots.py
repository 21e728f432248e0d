"""Snapshots and clones through the Controller service, as the CSI spec and
csi-sanity's snapshot checks (and its CreateVolume-from-a-source checks) require."""

import grpc
import pytest

from proto.csi.v1 import csi_pb2 as csi
from proto.netvol.v1 import admin_pb2 as pb
from tests.csi.resources import GiB, Resources, every_page, unique
from tests.harness.csi import CsiPlugin, code_of, mount_capability

SnapshotSource = csi.VolumeContentSource.SnapshotSource
VolumeSource = csi.VolumeContentSource.VolumeSource


def _exact(size: int) -> csi.CapacityRange:
    return csi.CapacityRange(required_bytes=size, limit_bytes=size)


def _of_snapshot(snapshot: csi.Snapshot) -> csi.VolumeContentSource:
    return csi.VolumeContentSource(snapshot=SnapshotSource(snapshot_id=snapshot.snapshot_id))


def _of_volume(volume: csi.Volume) -> csi.VolumeContentSource:
    return csi.VolumeContentSource(volume=VolumeSource(volume_id=volume.volume_id))


def _list(plugin: CsiPlugin, **request: object) -> list[csi.Snapshot]:
    reply = plugin.controller.ListSnapshots(csi.ListSnapshotsRequest(**request))  # type: ignore[arg-type]
    return [entry.snapshot for entry in reply.entries]


def _check(snapshot: csi.Snapshot) -> csi.Snapshot:
    """What csi-sanity checks of every snapshot it is given."""
    assert snapshot.snapshot_id and snapshot.source_volume_id
    assert snapshot.HasField("creation_time") and snapshot.creation_time.seconds > 0
    assert snapshot.ready_to_use
    return snapshot


def _pair(resources: Resources) -> tuple[csi.Volume, csi.Snapshot]:
    volume = resources.create(capacity_range=_exact(GiB))
    return volume, resources.snapshot(volume.volume_id)


# ----------------------------------------------------------------- CreateSnapshot


def test_create_snapshot(resources: Resources) -> None:
    volume = resources.create(size=3 * GiB)
    snapshot = _check(resources.snapshot(volume.volume_id))
    assert snapshot.source_volume_id == volume.volume_id
    # The size a volume restored from it must at least have: the source's.
    assert snapshot.size_bytes == 3 * GiB


def test_create_snapshot_is_idempotent(resources: Resources) -> None:
    volume = resources.create()
    name = unique("snap")
    first = resources.snapshot(volume.volume_id, name)
    assert resources.snapshot(volume.volume_id, name) == first
    # The longest name the spec allows, twice.
    longest = resources.snapshot(volume.volume_id, "s" * 128)
    assert resources.snapshot(volume.volume_id, "s" * 128) == longest


def test_same_name_of_another_volume_already_exists(resources: Resources) -> None:
    first, second = resources.create(), resources.create()
    name = unique("snap")
    resources.snapshot(first.volume_id, name)
    request = csi.CreateSnapshotRequest(name=name, source_volume_id=second.volume_id)
    assert code_of(resources.plugin.controller.CreateSnapshot, request) == (
        grpc.StatusCode.ALREADY_EXISTS
    )


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (csi.CreateSnapshotRequest(source_volume_id="testId"), grpc.StatusCode.INVALID_ARGUMENT),
        (csi.CreateSnapshotRequest(name="name"), grpc.StatusCode.INVALID_ARGUMENT),
        (
            csi.CreateSnapshotRequest(name="snap", source_volume_id="fake-vol-id-0123456789"),
            grpc.StatusCode.NOT_FOUND,
        ),
    ],
)
def test_create_snapshot_with_a_bad_request(
    plugin: CsiPlugin, request_: csi.CreateSnapshotRequest, code: grpc.StatusCode
) -> None:
    assert code_of(plugin.controller.CreateSnapshot, request_) == code


def test_sidecar_parameters_are_accepted(resources: Resources) -> None:
    volume = resources.create()
    parameters = {"csi.storage.k8s.io/volumesnapshot/name": "daily"}
    reply = resources.plugin.controller.CreateSnapshot(
        csi.CreateSnapshotRequest(
            name=unique("snap"), source_volume_id=volume.volume_id, parameters=parameters
        )
    )
    resources.snapshots.append(reply.snapshot.snapshot_id)
    _check(reply.snapshot)


# ----------------------------------------------------------------- DeleteSnapshot


def test_delete_snapshot(resources: Resources) -> None:
    _, snapshot = _pair(resources)
    delete = csi.DeleteSnapshotRequest(snapshot_id=snapshot.snapshot_id)
    resources.plugin.controller.DeleteSnapshot(delete)
    assert not _list(resources.plugin, snapshot_id=snapshot.snapshot_id)
    # Again, and an id that never was: both succeed.
    resources.plugin.controller.DeleteSnapshot(delete)
    unknown = csi.DeleteSnapshotRequest(snapshot_id="reallyfakesnapshotid")
    resources.plugin.controller.DeleteSnapshot(unknown)


def test_delete_snapshot_without_id_is_invalid(plugin: CsiPlugin) -> None:
    assert code_of(plugin.controller.DeleteSnapshot, csi.DeleteSnapshotRequest()) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


def test_a_snapshot_outlives_its_source_volume(resources: Resources) -> None:
    volume, snapshot = _pair(resources)
    resources.plugin.controller.DeleteVolume(csi.DeleteVolumeRequest(volume_id=volume.volume_id))
    (listed,) = _list(resources.plugin, snapshot_id=snapshot.snapshot_id)
    assert _check(listed) == snapshot
    restored = resources.create(volume_content_source=_of_snapshot(snapshot))
    assert restored.content_source == _of_snapshot(snapshot)


# ----------------------------------------------------------------- ListSnapshots


def test_list_shows_new_snapshots_and_forgets_deleted_ones(resources: Resources) -> None:
    plugin = resources.plugin
    before = len(_list(plugin))
    _, snapshot = _pair(resources)
    listed = _list(plugin)
    assert len(listed) == before + 1
    for entry in listed:
        _check(entry)
    plugin.controller.DeleteSnapshot(csi.DeleteSnapshotRequest(snapshot_id=snapshot.snapshot_id))
    assert len(_list(plugin)) == before


def test_list_filters_by_snapshot_and_by_source(resources: Resources) -> None:
    pairs = [_pair(resources) for _ in range(3)]
    volume, snapshot = pairs[1]
    assert _list(resources.plugin, snapshot_id=snapshot.snapshot_id) == [snapshot]
    assert _list(resources.plugin, source_volume_id=volume.volume_id) == [snapshot]
    # Unknown ids are empty lists, not errors.
    assert _list(resources.plugin, snapshot_id="none-exist-id") == []
    assert _list(resources.plugin, source_volume_id="fake-vol-id-0123456789") == []


def test_list_rest_after_a_token_comes_whole(resources: Resources) -> None:
    for _ in range(5):
        _pair(resources)
    plugin = resources.plugin
    total = len(_list(plugin))
    first = plugin.controller.ListSnapshots(csi.ListSnapshotsRequest(max_entries=2))
    assert len(first.entries) == 2 and first.next_token
    rest = plugin.controller.ListSnapshots(
        csi.ListSnapshotsRequest(starting_token=first.next_token)
    )
    assert len(rest.entries) == total - 2
    assert not rest.next_token


def test_list_pages_cover_every_snapshot_once(resources: Resources) -> None:
    volume = resources.create()
    for _ in range(5):
        resources.snapshot(volume.volume_id)
    plugin = resources.plugin
    everything = [s.snapshot_id for s in _list(plugin)]
    pages = every_page(plugin.controller.ListSnapshots, csi.ListSnapshotsRequest, 2)
    assert [e.snapshot.snapshot_id for e in pages] == everything


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (csi.ListSnapshotsRequest(starting_token="invalid-token"), grpc.StatusCode.ABORTED),
        (csi.ListSnapshotsRequest(max_entries=-1), grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_list_with_a_bad_request(
    plugin: CsiPlugin, request_: csi.ListSnapshotsRequest, code: grpc.StatusCode
) -> None:
    assert code_of(plugin.controller.ListSnapshots, request_) == code


# ----------------------------------------------------------------- CreateVolume from a source


def test_create_from_a_snapshot(resources: Resources) -> None:
    _, snapshot = _pair(resources)
    name = unique("restored")
    source = _of_snapshot(snapshot)
    restored = resources.create(name, capacity_range=_exact(GiB), volume_content_source=source)
    assert restored.content_source == source
    assert resources.create(name, capacity_range=_exact(GiB), volume_content_source=source) == (
        restored
    )
    stored = resources.plugin.server.admin().GetVolume(
        pb.GetVolumeRequest(volume=pb.VolumeRef(id=restored.volume_id))
    )
    assert stored.content_source.snapshot.id == snapshot.snapshot_id


def test_create_from_a_volume(resources: Resources) -> None:
    volume = resources.create(size=2 * GiB)
    clone = resources.create(volume_content_source=_of_volume(volume), capacity_range=None)
    # Without a capacity range a copy gets the size of its source.
    assert clone.capacity_bytes == 2 * GiB
    assert clone.content_source == _of_volume(volume)
    get = csi.ControllerGetVolumeRequest(volume_id=clone.volume_id)
    assert resources.plugin.controller.ControllerGetVolume(get).volume == clone


def test_same_name_with_other_contents_already_exists(resources: Resources) -> None:
    volume, snapshot = _pair(resources)
    name = unique("copy")
    resources.create(name, capacity_range=_exact(GiB), volume_content_source=_of_snapshot(snapshot))
    for other in (_of_volume(volume), None):
        request = csi.CreateVolumeRequest(
            name=name,
            capacity_range=_exact(GiB),
            volume_capabilities=[mount_capability()],
            volume_content_source=other,
        )
        assert code_of(resources.plugin.controller.CreateVolume, request) == (
            grpc.StatusCode.ALREADY_EXISTS
        )


@pytest.mark.parametrize(
    "source",
    [
        csi.VolumeContentSource(snapshot=SnapshotSource(snapshot_id="non-existing-snapshot-id")),
        csi.VolumeContentSource(volume=VolumeSource(volume_id="fake-vol-id-0123456789")),
    ],
)
def test_create_from_a_missing_source_is_not_found(
    plugin: CsiPlugin, source: csi.VolumeContentSource
) -> None:
    request = csi.CreateVolumeRequest(
        name=unique("orphan"),
        volume_capabilities=[mount_capability()],
        volume_content_source=source,
    )
    assert code_of(plugin.controller.CreateVolume, request) == grpc.StatusCode.NOT_FOUND


def test_a_copy_smaller_than_its_source_is_out_of_range(resources: Resources) -> None:
    volume = resources.create(size=2 * GiB)
    snapshot = resources.snapshot(volume.volume_id)
    for source in (_of_snapshot(snapshot), _of_volume(volume)):
        for wanted in (csi.CapacityRange(required_bytes=GiB), _exact(GiB)):
            request = csi.CreateVolumeRequest(
                name=unique("small"),
                capacity_range=wanted,
                volume_capabilities=[mount_capability()],
                volume_content_source=source,
            )
            assert code_of(resources.plugin.controller.CreateVolume, request) == (
                grpc.StatusCode.OUT_OF_RANGE
            )
