"""volctl's volume and snapshot commands: create, ls, info, resize, rm, df, and
snapshot create, ls, rm."""

import argparse
from collections.abc import Callable, Iterator
from typing import Any

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
    source = create.add_mutually_exclusive_group()
    source.add_argument("--from-snapshot", metavar="SNAPSHOT", help="start as a copy of it")
    source.add_argument("--from-volume", metavar="VOLUME", help="start as a copy (a clone) of it")
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

    snapshot = sub.add_parser("snapshot", help="take, list and delete snapshots").add_subparsers(
        dest="snapshot_command", required=True, metavar="COMMAND"
    )
    take = snapshot.add_parser("create", help="take a snapshot of a volume")
    take.add_argument("name")
    take.add_argument("--from", dest="volume", required=True, metavar="VOLUME")
    take.set_defaults(run=cmd_snapshot_create)
    snapshots = snapshot.add_parser("ls", help="list snapshots")
    snapshots.add_argument("--volume", help="only the snapshots of this volume")
    snapshots.set_defaults(run=cmd_snapshot_ls)
    drop = snapshot.add_parser("rm", help="delete a snapshot (volumes made from it stay)")
    drop.add_argument("name")
    drop.set_defaults(run=cmd_snapshot_rm)


def _stub(settings: ClientSettings) -> admin_pb2_grpc.VolumeAdminStub:
    return admin_pb2_grpc.VolumeAdminStub(connect(settings))


def _show_volume(args: argparse.Namespace, volume: pb.Volume) -> None:
    if args.output == "json":
        print(output.dumps(output.volume_record(volume)))
    else:
        print(output.volume_details(volume))


def _content_source(args: argparse.Namespace) -> pb.ContentSource | None:
    if args.from_snapshot:
        return pb.ContentSource(snapshot=pb.SnapshotRef(name=args.from_snapshot))
    if args.from_volume:
        return pb.ContentSource(volume=pb.VolumeRef(name=args.from_volume))
    return None


def cmd_create(args: argparse.Namespace, settings: ClientSettings) -> int:
    request = pb.CreateVolumeRequest(
        name=args.name,
        size_bytes=args.size,
        parameters=dict(args.param),
        content_source=_content_source(args),
    )
    _show_volume(args, _stub(settings).CreateVolume(request, timeout=settings.timeout))
    return 0


def _every(
    list_call: Callable[..., Any], request: Any, field: str, timeout: float
) -> Iterator[Any]:
    """The items of every page a List call returns for `request`."""
    while True:
        page = list_call(request, timeout=timeout)
        yield from getattr(page, field)
        if not page.next_page_token:
            return
        request.page_token = page.next_page_token


def _all_volumes(settings: ClientSettings) -> Iterator[pb.Volume]:
    return _every(_stub(settings).ListVolumes, pb.ListVolumesRequest(), "volumes", settings.timeout)


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
    return _deleted(args)


def _deleted(args: argparse.Namespace) -> int:
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


def cmd_snapshot_create(args: argparse.Namespace, settings: ClientSettings) -> int:
    request = pb.CreateSnapshotRequest(name=args.name, source_volume=pb.VolumeRef(name=args.volume))
    snapshot = _stub(settings).CreateSnapshot(request, timeout=settings.timeout)
    if args.output == "json":
        print(output.dumps(output.snapshot_record(snapshot)))
    else:
        print(output.snapshot_details(snapshot, args.volume))
    return 0


def cmd_snapshot_ls(args: argparse.Namespace, settings: ClientSettings) -> int:
    stub = _stub(settings)
    request = pb.ListSnapshotsRequest()
    if args.volume:
        volume = pb.GetVolumeRequest(volume=pb.VolumeRef(name=args.volume))
        request.source_volume_id = stub.GetVolume(volume, timeout=settings.timeout).id
    snapshots = list(_every(stub.ListSnapshots, request, "snapshots", settings.timeout))
    if args.output == "json":
        print(output.dumps([output.snapshot_record(s) for s in snapshots]))
    else:
        names = {v.id: v.name for v in _all_volumes(settings)}
        print(output.snapshots_table(snapshots, names))
    return 0


def cmd_snapshot_rm(args: argparse.Namespace, settings: ClientSettings) -> int:
    request = pb.DeleteSnapshotRequest(snapshot=pb.SnapshotRef(name=args.name))
    _stub(settings).DeleteSnapshot(request, timeout=settings.timeout)
    return _deleted(args)
