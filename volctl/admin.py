"""volctl's volume commands: create, ls, info, resize, rm, df."""

import argparse
from collections.abc import Iterator

from proto.netvol.v1 import admin_pb2 as pb
from proto.netvol.v1 import admin_pb2_grpc
from storage_server.client import ClientSettings, connect
from storage_server.quantity import parse_size
from volctl import output


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _parameter(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"invalid parameter {text!r}: expected KEY=VALUE")
    return key, value


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    create = sub.add_parser("create", help="create a volume")
    create.add_argument("name")
    create.add_argument("--size", required=True, type=_size, help="e.g. 5G or 5Gi")
    create.add_argument(
        "-p", "--param", action="append", type=_parameter, default=[], metavar="KEY=VALUE"
    )
    create.set_defaults(run=cmd_create)

    ls = sub.add_parser("ls", help="list volumes")
    ls.set_defaults(run=cmd_ls)

    info = sub.add_parser("info", help="show one volume")
    info.add_argument("name")
    info.set_defaults(run=cmd_info)

    resize = sub.add_parser("resize", help="grow a volume")
    resize.add_argument("name")
    resize.add_argument("--size", required=True, type=_size)
    resize.set_defaults(run=cmd_resize)

    rm = sub.add_parser("rm", help="delete a volume and its data")
    rm.add_argument("name")
    rm.set_defaults(run=cmd_rm)

    df = sub.add_parser("df", help="show the server's capacity")
    df.set_defaults(run=cmd_df)


def _stub(settings: ClientSettings) -> admin_pb2_grpc.VolumeAdminStub:
    return admin_pb2_grpc.VolumeAdminStub(connect(settings))


def _show_volume(args: argparse.Namespace, volume: pb.Volume) -> None:
    if args.output == "json":
        print(output.dumps(output.volume_record(volume)))
    else:
        print(output.volume_details(volume))


def cmd_create(args: argparse.Namespace, settings: ClientSettings) -> int:
    request = pb.CreateVolumeRequest(
        name=args.name, size_bytes=args.size, parameters=dict(args.param)
    )
    _show_volume(args, _stub(settings).CreateVolume(request, timeout=settings.timeout))
    return 0


def _all_volumes(settings: ClientSettings) -> Iterator[pb.Volume]:
    stub = _stub(settings)
    token = ""
    while True:
        page = stub.ListVolumes(pb.ListVolumesRequest(page_token=token), timeout=settings.timeout)
        yield from page.volumes
        token = page.next_page_token
        if not token:
            return


def cmd_ls(args: argparse.Namespace, settings: ClientSettings) -> int:
    volumes = list(_all_volumes(settings))
    if args.output == "json":
        print(output.dumps([output.volume_record(v) for v in volumes]))
    else:
        print(output.volumes_table(volumes))
    return 0


def cmd_info(args: argparse.Namespace, settings: ClientSettings) -> int:
    request = pb.GetVolumeRequest(volume=pb.VolumeRef(name=args.name))
    _show_volume(args, _stub(settings).GetVolume(request, timeout=settings.timeout))
    return 0


def cmd_resize(args: argparse.Namespace, settings: ClientSettings) -> int:
    request = pb.ResizeVolumeRequest(volume=pb.VolumeRef(name=args.name), size_bytes=args.size)
    _show_volume(args, _stub(settings).ResizeVolume(request, timeout=settings.timeout))
    return 0


def cmd_rm(args: argparse.Namespace, settings: ClientSettings) -> int:
    request = pb.DeleteVolumeRequest(volume=pb.VolumeRef(name=args.name))
    _stub(settings).DeleteVolume(request, timeout=settings.timeout)
    if args.output == "json":
        print(output.dumps({"deleted": args.name}))
    return 0


def cmd_df(args: argparse.Namespace, settings: ClientSettings) -> int:
    capacity = _stub(settings).GetCapacity(pb.GetCapacityRequest(), timeout=settings.timeout)
    if args.output == "json":
        print(output.dumps(output.capacity_record(capacity)))
    else:
        print(output.capacity_table(capacity))
    return 0
