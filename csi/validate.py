"""Checks at the door: every request field is checked here once, then trusted.

A missing or malformed field is INVALID_ARGUMENT (the spec's general rule), and
the checks run before anything is looked up, so an unknown id with a bad field
still gets INVALID_ARGUMENT.
"""

import os
import re
from collections.abc import Sequence

import grpc

from csi.errors import CsiError, invalid
from proto.csi.v1 import csi_pb2 as csi

# The spec's size limits: strings 128 bytes, maps 4 KiB (keys and values).
STRING_MAX_BYTES = 128
MAP_MAX_BYTES = 4096
PATH_MAX_BYTES = 4096
# Control characters other than common white space may not appear in names.
_BANNED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

AccessMode = csi.VolumeCapability.AccessMode
READ_ONLY_MODES = frozenset({AccessMode.SINGLE_NODE_READER_ONLY, AccessMode.MULTI_NODE_READER_ONLY})
# netvol volumes are shared file systems: every mode the spec defines is served.
SUPPORTED_MODES = frozenset(
    {
        AccessMode.SINGLE_NODE_WRITER,
        AccessMode.SINGLE_NODE_READER_ONLY,
        AccessMode.MULTI_NODE_READER_ONLY,
        AccessMode.MULTI_NODE_SINGLE_WRITER,
        AccessMode.MULTI_NODE_MULTI_WRITER,
        AccessMode.SINGLE_NODE_SINGLE_WRITER,
        AccessMode.SINGLE_NODE_MULTI_WRITER,
    }
)
# Per-mount flags a bind mount can carry whatever the file system; anything
# else would be silently ignored by a FUSE bind, so it is refused instead.
MOUNT_FLAGS = frozenset({"ro", "nosuid", "nodev", "noexec", "noatime"})
FS_TYPES = frozenset({"", "netvol", "fuse.netvol"})


def text(value: str, field: str) -> str:
    """A required string field within the spec's 128-byte limit."""
    if not value:
        raise invalid(f"{field} is required")
    if len(value.encode()) > STRING_MAX_BYTES:
        raise invalid(f"{field} is longer than {STRING_MAX_BYTES} bytes")
    return value


def name(value: str) -> str:
    text(value, "name")
    if _BANNED.search(value):
        raise invalid("name contains control characters")
    return value


def path(value: str, field: str) -> str:
    """An absolute path that names something below the root, without '..'."""
    if not value:
        raise invalid(f"{field} is required")
    if len(value.encode()) > PATH_MAX_BYTES or "\x00" in value:
        raise invalid(f"{field} is not a valid path")
    if not os.path.isabs(value) or ".." in value.split("/"):
        raise invalid(f"{field} must be an absolute path without '..', got {value!r}")
    normal = os.path.normpath(value)
    if normal == "/":
        raise invalid(f"{field} must not be the root directory")
    return normal


def parameters(values: dict[str, str], field: str) -> dict[str, str]:
    size = sum(len(k.encode()) + len(v.encode()) for k, v in values.items())
    if size > MAP_MAX_BYTES:
        raise invalid(f"{field} are larger than {MAP_MAX_BYTES} bytes")
    return dict(values)


def capability_problem(cap: csi.VolumeCapability) -> str:
    """Why netvol cannot serve `cap`, or '' when it can."""
    if cap.WhichOneof("access_type") != "mount":
        return "netvol volumes are file systems: only the mount access type is supported"
    if cap.access_mode.mode not in SUPPORTED_MODES:
        return f"access mode {AccessMode.Mode.Name(cap.access_mode.mode)} is not supported"
    if cap.mount.fs_type not in FS_TYPES:
        return f"fs_type {cap.mount.fs_type!r} is not supported: netvol volumes are FUSE mounts"
    unknown = sorted(set(cap.mount.mount_flags) - MOUNT_FLAGS)
    if unknown:
        allowed = ", ".join(sorted(MOUNT_FLAGS))
        return f"mount flags {unknown} are not supported (supported: {allowed})"
    return ""


def capabilities(caps: Sequence[csi.VolumeCapability], field: str) -> None:
    if not caps:
        raise invalid(f"{field} is required")
    for cap in caps:
        problem = capability_problem(cap)
        if problem:
            raise invalid(problem)


def capability(cap: csi.VolumeCapability) -> csi.VolumeCapability:
    """The single volume_capability of a request, which must be set."""
    if cap.ByteSize() == 0:
        raise invalid("volume_capability is required")
    capabilities([cap], "volume_capability")
    return cap


def optional_capability(cap: csi.VolumeCapability) -> None:
    """Check a volume_capability that a request may leave unset."""
    if cap.ByteSize():
        capability(cap)


def read_only(cap: csi.VolumeCapability) -> bool:
    return cap.access_mode.mode in READ_ONLY_MODES or "ro" in cap.mount.mount_flags


def capacity(wanted: csi.CapacityRange, default: int) -> int:
    """The size to give a volume asked for with `wanted`."""
    required, limit = wanted.required_bytes, wanted.limit_bytes
    if required < 0 or limit < 0:
        raise invalid("capacity_range must not be negative")
    if limit and required > limit:
        raise CsiError(
            grpc.StatusCode.OUT_OF_RANGE,
            f"limit_bytes {limit} is smaller than required_bytes {required}",
        )
    return required or limit or default


def within(wanted: csi.CapacityRange, size: int) -> bool:
    return (not wanted.required_bytes or size >= wanted.required_bytes) and (
        not wanted.limit_bytes or size <= wanted.limit_bytes
    )
