"""How volctl shows results: an aligned table for people, JSON for scripts."""

import json
from collections.abc import Sequence
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from proto.netvol.v1 import admin_pb2 as pb
from storage_server.quantity import format_size


def _when(stamp: Timestamp) -> str:
    return stamp.ToDatetime().isoformat() + "Z"


def _short(stamp: Timestamp) -> str:
    """For tables: to the second, in UTC."""
    return stamp.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")


def _bytes(count: int) -> str:
    return f"{format_size(count)} ({count} bytes)"


def _source(volume: pb.Volume) -> tuple[str, str] | None:
    """What the volume was copied from: ("snapshot" or "volume", its id)."""
    which = volume.content_source.WhichOneof("source")
    return None if which is None else (which, getattr(volume.content_source, which).id)


def volume_record(volume: pb.Volume) -> dict[str, Any]:
    source = _source(volume)
    return {
        "id": volume.id,
        "name": volume.name,
        "size_bytes": volume.size_bytes,
        "used_bytes": volume.used_bytes,
        "parameters": dict(volume.parameters),
        "created_at": _when(volume.created_at),
        "source": None if source is None else {f"{source[0]}_id": source[1]},
    }


def snapshot_record(snapshot: pb.Snapshot) -> dict[str, Any]:
    return {
        "id": snapshot.id,
        "name": snapshot.name,
        "source_volume_id": snapshot.source_volume_id,
        "size_bytes": snapshot.size_bytes,
        "used_bytes": snapshot.used_bytes,
        "ready_to_use": snapshot.ready_to_use,
        "created_at": _when(snapshot.created_at),
    }


def table(rows: Sequence[Sequence[str]], headers: Sequence[str] = ()) -> str:
    """Rows as left-aligned columns, under `headers` when given."""
    lines = [headers, *rows] if headers else list(rows)
    widths = [max(len(c) for c in column) for column in zip(*lines, strict=True)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def volumes_table(volumes: Sequence[pb.Volume]) -> str:
    rows = [
        (
            v.name,
            format_size(v.size_bytes),
            format_size(v.used_bytes),
            _short(v.created_at),
            v.id,
        )
        for v in volumes
    ]
    return table(rows, ("NAME", "SIZE", "USED", "CREATED", "ID"))


def volume_details(volume: pb.Volume) -> str:
    rows = [
        ("name:", volume.name),
        ("id:", volume.id),
        ("size:", _bytes(volume.size_bytes)),
        ("used:", _bytes(volume.used_bytes)),
        ("created:", _when(volume.created_at)),
    ]
    source = _source(volume)
    if source is not None:
        rows.append(("copied from:", " ".join(source)))
    rows += [(f"parameter {k}:", v) for k, v in sorted(volume.parameters.items())]
    return table(rows)


def snapshots_table(snapshots: Sequence[pb.Snapshot], volume_names: dict[str, str]) -> str:
    """`volume_names` maps the ids of the volumes there are to their names."""
    rows = [
        (
            s.name,
            volume_names.get(s.source_volume_id, f"{s.source_volume_id} (deleted)"),
            format_size(s.size_bytes),
            format_size(s.used_bytes),
            _short(s.created_at),
            s.id,
        )
        for s in snapshots
    ]
    return table(rows, ("NAME", "VOLUME", "SIZE", "USED", "CREATED", "ID"))


def snapshot_details(snapshot: pb.Snapshot, volume_name: str) -> str:
    return table(
        [
            ("name:", snapshot.name),
            ("id:", snapshot.id),
            ("volume:", f"{volume_name} ({snapshot.source_volume_id})"),
            ("size:", _bytes(snapshot.size_bytes)),
            ("used:", _bytes(snapshot.used_bytes)),
            ("created:", _when(snapshot.created_at)),
        ]
    )


def capacity_record(capacity: pb.Capacity) -> dict[str, Any]:
    return {
        "total_bytes": capacity.total_bytes,
        "available_bytes": capacity.available_bytes,
        "provisioned_bytes": capacity.provisioned_bytes,
        "used_bytes": capacity.used_bytes,
        "volume_count": capacity.volume_count,
        "max_volume_size_bytes": capacity.max_volume_size_bytes,
    }


def capacity_table(capacity: pb.Capacity) -> str:
    return table(
        [
            (
                str(capacity.volume_count),
                format_size(capacity.provisioned_bytes),
                format_size(capacity.used_bytes),
                format_size(capacity.total_bytes),
                format_size(capacity.available_bytes),
                format_size(capacity.max_volume_size_bytes),
            )
        ],
        ("VOLUMES", "PROVISIONED", "USED", "DISK", "AVAILABLE", "MAX VOLUME"),
    )


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
