"""The VolumeAdmin API of a real server process, on SQLite and PostgreSQL."""

import grpc
import pytest

from proto.netvol.v1 import admin_pb2 as pb
from proto.netvol.v1 import admin_pb2_grpc
from tests.harness.server import StorageServer

GiB = 2**30


def _code(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()  # type: ignore[operator]
    code: grpc.StatusCode = info.value.code()
    return code


def ref(name: str) -> pb.VolumeRef:
    return pb.VolumeRef(name=name)


def test_create_get_resize_delete(server: StorageServer) -> None:
    admin = server.admin()
    created = admin.CreateVolume(
        pb.CreateVolumeRequest(name="data", size_bytes=5 * GiB, parameters={"tier": "fast"})
    )
    assert created.name == "data"
    assert created.size_bytes == 5 * GiB
    assert created.used_bytes == 0
    assert dict(created.parameters) == {"tier": "fast"}
    assert created.id and created.created_at.seconds > 0

    assert admin.GetVolume(pb.GetVolumeRequest(volume=ref("data"))) == created
    by_id = admin.GetVolume(pb.GetVolumeRequest(volume=pb.VolumeRef(id=created.id)))
    assert by_id == created

    grown = admin.ResizeVolume(pb.ResizeVolumeRequest(volume=ref("data"), size_bytes=10 * GiB))
    assert grown.size_bytes == 10 * GiB
    same = admin.ResizeVolume(pb.ResizeVolumeRequest(volume=ref("data"), size_bytes=10 * GiB))
    assert same.size_bytes == 10 * GiB

    admin.DeleteVolume(pb.DeleteVolumeRequest(volume=ref("data")))
    assert _code(lambda: admin.GetVolume(pb.GetVolumeRequest(volume=ref("data")))) == (
        grpc.StatusCode.NOT_FOUND
    )
    # Deleting what is already gone succeeds, as CSI requires.
    admin.DeleteVolume(pb.DeleteVolumeRequest(volume=ref("data")))
    admin.DeleteVolume(pb.DeleteVolumeRequest(volume=pb.VolumeRef(id=created.id)))


def test_create_is_idempotent_and_conflicts_on_other_size(server: StorageServer) -> None:
    admin = server.admin()
    first = admin.CreateVolume(pb.CreateVolumeRequest(name="vol", size_bytes=GiB))
    again = admin.CreateVolume(pb.CreateVolumeRequest(name="vol", size_bytes=GiB))
    assert again == first
    other_size = pb.CreateVolumeRequest(name="vol", size_bytes=2 * GiB)
    assert _code(lambda: admin.CreateVolume(other_size)) == grpc.StatusCode.ALREADY_EXISTS
    other_params = pb.CreateVolumeRequest(name="vol", size_bytes=GiB, parameters={"a": "b"})
    assert _code(lambda: admin.CreateVolume(other_params)) == grpc.StatusCode.ALREADY_EXISTS
    assert admin.GetVolume(pb.GetVolumeRequest(volume=ref("vol"))) == first


def test_thin_volumes_larger_than_the_disk(server: StorageServer) -> None:
    admin = server.admin()
    capacity = admin.GetCapacity(pb.GetCapacityRequest())
    huge = capacity.total_bytes * 4
    volume = admin.CreateVolume(pb.CreateVolumeRequest(name="huge", size_bytes=huge))
    assert volume.size_bytes == huge
    after = admin.GetCapacity(pb.GetCapacityRequest())
    assert after.provisioned_bytes == huge
    assert after.volume_count == 1
    assert after.used_bytes == 0
    assert 0 < after.available_bytes <= after.total_bytes
    assert after.max_volume_size_bytes == 2**50


def test_pagination_over_250_volumes(server: StorageServer) -> None:
    admin = server.admin()
    names = sorted(f"vol-{i:03d}" for i in range(250))
    for name in names:
        admin.CreateVolume(pb.CreateVolumeRequest(name=name, size_bytes=GiB))

    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = admin.ListVolumes(pb.ListVolumesRequest(page_size=100, page_token=token))
        pages += 1
        assert len(page.volumes) <= 100
        seen += [v.name for v in page.volumes]
        token = page.next_page_token
        if not token:
            break
    assert pages == 3
    assert seen == names

    default_page = admin.ListVolumes(pb.ListVolumesRequest())
    assert [v.name for v in default_page.volumes] == names[:100]
    # A volume deleted between pages does not break the walk (keyset tokens).
    first = admin.ListVolumes(pb.ListVolumesRequest(page_size=10))
    admin.DeleteVolume(pb.DeleteVolumeRequest(volume=ref(names[10])))
    second = admin.ListVolumes(
        pb.ListVolumesRequest(page_size=10, page_token=first.next_page_token)
    )
    assert [v.name for v in second.volumes] == names[11:21]


@pytest.mark.parametrize("token", ["not-base64!", "Li4veA==", "%%%"])
def test_bad_page_token(server: StorageServer, token: str) -> None:
    admin = server.admin()
    request = pb.ListVolumesRequest(page_token=token)
    assert _code(lambda: admin.ListVolumes(request)) == grpc.StatusCode.INVALID_ARGUMENT


def test_page_size_limit(server: StorageServer) -> None:
    admin = server.admin()
    request = pb.ListVolumesRequest(page_size=1001)
    assert _code(lambda: admin.ListVolumes(request)) == grpc.StatusCode.INVALID_ARGUMENT


BAD_NAMES = ["", "../x", "a/b", "..", ".", ".hidden", "-flag", "a b", "x" * 129, "é" * 65, "a\x00b"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused(server: StorageServer, name: str) -> None:
    admin = server.admin()
    request = pb.CreateVolumeRequest(name=name, size_bytes=GiB)
    assert _code(lambda: admin.CreateVolume(request)) == grpc.StatusCode.INVALID_ARGUMENT
    assert admin.GetCapacity(pb.GetCapacityRequest()).volume_count == 0


def test_longest_name_is_accepted(server: StorageServer) -> None:
    name = "n" * 128
    volume = server.admin().CreateVolume(pb.CreateVolumeRequest(name=name, size_bytes=GiB))
    assert volume.name == name


def test_bad_sizes_are_refused(server: StorageServer) -> None:
    admin = server.admin()
    zero = pb.CreateVolumeRequest(name="v", size_bytes=0)
    assert _code(lambda: admin.CreateVolume(zero)) == grpc.StatusCode.INVALID_ARGUMENT
    too_big = pb.CreateVolumeRequest(name="v", size_bytes=2**50 + 1)
    assert _code(lambda: admin.CreateVolume(too_big)) == grpc.StatusCode.OUT_OF_RANGE
    assert admin.GetCapacity(pb.GetCapacityRequest()).volume_count == 0

    admin.CreateVolume(pb.CreateVolumeRequest(name="v", size_bytes=2 * GiB))
    shrink = pb.ResizeVolumeRequest(volume=ref("v"), size_bytes=GiB)
    assert _code(lambda: admin.ResizeVolume(shrink)) == grpc.StatusCode.FAILED_PRECONDITION
    beyond = pb.ResizeVolumeRequest(volume=ref("v"), size_bytes=2**51)
    assert _code(lambda: admin.ResizeVolume(beyond)) == grpc.StatusCode.OUT_OF_RANGE
    assert admin.GetVolume(pb.GetVolumeRequest(volume=ref("v"))).size_bytes == 2 * GiB


def test_unknown_volume(server: StorageServer) -> None:
    admin = server.admin()
    get = pb.GetVolumeRequest(volume=ref("missing"))
    assert _code(lambda: admin.GetVolume(get)) == grpc.StatusCode.NOT_FOUND
    resize = pb.ResizeVolumeRequest(volume=ref("missing"), size_bytes=GiB)
    assert _code(lambda: admin.ResizeVolume(resize)) == grpc.StatusCode.NOT_FOUND
    by_id = pb.GetVolumeRequest(volume=pb.VolumeRef(id="00000000-0000-0000-0000-000000000000"))
    assert _code(lambda: admin.GetVolume(by_id)) == grpc.StatusCode.NOT_FOUND
    no_ref = pb.GetVolumeRequest()
    assert _code(lambda: admin.GetVolume(no_ref)) == grpc.StatusCode.INVALID_ARGUMENT


def test_missing_and_wrong_token_change_nothing(server: StorageServer) -> None:
    admin = server.admin()
    admin.CreateVolume(pb.CreateVolumeRequest(name="kept", size_bytes=GiB))

    with grpc.insecure_channel(server.address) as bare:
        anonymous = admin_pb2_grpc.VolumeAdminStub(bare)
        calls = [
            lambda: anonymous.CreateVolume(pb.CreateVolumeRequest(name="x", size_bytes=GiB)),
            lambda: anonymous.DeleteVolume(pb.DeleteVolumeRequest(volume=ref("kept"))),
            lambda: anonymous.ListVolumes(pb.ListVolumesRequest()),
        ]
        for call in calls:
            assert _code(call) == grpc.StatusCode.UNAUTHENTICATED

    wrong = server.admin(token="wrong-token")
    for call in [
        lambda: wrong.CreateVolume(pb.CreateVolumeRequest(name="x", size_bytes=GiB)),
        lambda: wrong.DeleteVolume(pb.DeleteVolumeRequest(volume=ref("kept"))),
        lambda: wrong.ResizeVolume(pb.ResizeVolumeRequest(volume=ref("kept"), size_bytes=9 * GiB)),
        lambda: wrong.GetCapacity(pb.GetCapacityRequest()),
    ]:
        assert _code(call) == grpc.StatusCode.UNAUTHENTICATED

    volumes = admin.ListVolumes(pb.ListVolumesRequest()).volumes
    assert [(v.name, v.size_bytes) for v in volumes] == [("kept", GiB)]


def test_token_file_is_private(server: StorageServer) -> None:
    assert server.token_file.stat().st_mode & 0o777 == 0o600
    assert len(server.token_file.read_text().strip()) >= 32
