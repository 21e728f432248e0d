"""How volctl shows results: an aligned table for people, JSON for scripts."""

import json
from collections.abc import Sequence
from typing import Any

from proto.netvol.v1 import admin_pb2 as pb
from storage_server.quantity import format_size


def volume_record(volume: pb.Volume) -> dict[str, Any]:
    return {
        "id": volume.id,
        "name": volume.name,
        "size_bytes": volume.size_bytes,
        "used_bytes": volume.used_bytes,
        "parameters": dict(volume.parameters),
        "created_at": volume.created_at.ToDatetime().isoformat() + "Z",
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
            v.created_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"),
            v.id,
        )
        for v in volumes
    ]
    return table(rows, ("NAME", "SIZE", "USED", "CREATED", "ID"))


def volume_details(volume: pb.Volume) -> str:
    rows = [
        ("name:", volume.name),
        ("id:", volume.id),
        ("size:", f"{format_size(volume.size_bytes)} ({volume.size_bytes} bytes)"),
        ("used:", f"{format_size(volume.used_bytes)} ({volume.used_bytes} bytes)"),
        ("created:", volume.created_at.ToDatetime().isoformat() + "Z"),
    ]
    rows += [(f"parameter {k}:", v) for k, v in sorted(volume.parameters.items())]
    return table(rows)


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
