"""Volume lifecycle: create, look up, list, resize and delete, with their rules.

Every method is one transaction. Validation happens here, once, so every
caller (the admin API, later the CSI controller through it) gets the same rules.
"""

import base64
import binascii
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage_server.db import Database
from storage_server.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
)
from storage_server.filesystem import inodes
from storage_server.models import NAME_MAX_BYTES, Volume
from storage_server.quantity import format_size

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_PARAMETERS = 64
MAX_PARAMETER_BYTES = 4096


@dataclass(frozen=True)
class VolumeKey:
    """A volume named by its name or by its id (exactly one is set)."""

    name: str = ""
    id: str = ""


@dataclass(frozen=True)
class Page:
    volumes: list[Volume]
    next_token: str


@dataclass(frozen=True)
class CapacityReport:
    total_bytes: int
    available_bytes: int
    provisioned_bytes: int
    used_bytes: int
    volume_count: int
    max_volume_size: int


def validate_name(name: str) -> str:
    if not name:
        raise InvalidArgument("volume name is required")
    if len(name.encode()) > NAME_MAX_BYTES:
        raise InvalidArgument(f"volume name is longer than {NAME_MAX_BYTES} bytes")
    if not _NAME.match(name):
        raise InvalidArgument(
            f"invalid volume name {name!r}: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return name


def _validate_parameters(parameters: dict[str, str]) -> dict[str, str]:
    if len(parameters) > MAX_PARAMETERS:
        raise InvalidArgument(f"at most {MAX_PARAMETERS} parameters are allowed")
    for key, value in parameters.items():
        if not key:
            raise InvalidArgument("parameter names must not be empty")
        if len(key.encode()) + len(value.encode()) > MAX_PARAMETER_BYTES:
            raise InvalidArgument(f"parameter {key!r} is longer than {MAX_PARAMETER_BYTES} bytes")
    return dict(parameters)


def _encode_token(last_name: str) -> str:
    return base64.urlsafe_b64encode(last_name.encode()).decode()


def _decode_token(token: str) -> str:
    try:
        name = base64.urlsafe_b64decode(token.encode()).decode()
        return validate_name(name)
    except (binascii.Error, UnicodeError, ValueError, InvalidArgument) as exc:
        raise InvalidArgument(f"invalid page token {token!r}") from exc


class VolumeStore:
    def __init__(self, db: Database, blob_dir: Path, max_volume_size: int) -> None:
        self._db = db
        self._blob_dir = blob_dir
        self._max_size = max_volume_size

    def _validate_size(self, size: int) -> int:
        if size <= 0:
            raise InvalidArgument("volume size must be positive")
        if size > self._max_size:
            raise OutOfRange(
                f"volume size {format_size(size)} exceeds the server's maximum "
                f"of {format_size(self._max_size)}"
            )
        return size

    def create(self, name: str, size: int, parameters: dict[str, str]) -> Volume:
        validate_name(name)
        self._validate_size(size)
        parameters = _validate_parameters(parameters)
        try:
            with self._db.write() as session:
                existing = session.scalar(select(Volume).where(Volume.name == name))
                if existing is not None:
                    return self._same_or_conflict(existing, size, parameters)
                volume = Volume(
                    id=str(uuid.uuid4()),
                    name=name,
                    size_bytes=size,
                    used_bytes=0,
                    parameters=parameters,
                    created_at=datetime.now(UTC),
                )
                session.add(volume)
                session.flush()
                inodes.make_root(session, volume)
                return volume
        except IntegrityError:
            # Another server created the same name between our look-up and insert.
            with self._db.read() as session:
                existing = self._find(session, VolumeKey(name=name))
                return self._same_or_conflict(existing, size, parameters)

    @staticmethod
    def _same_or_conflict(existing: Volume, size: int, parameters: dict[str, str]) -> Volume:
        if existing.size_bytes != size:
            raise AlreadyExists(
                f"volume {existing.name!r} exists with size {existing.size_bytes} bytes, not {size}"
            )
        if existing.parameters != parameters:
            raise AlreadyExists(f"volume {existing.name!r} exists with other parameters")
        return existing

    @staticmethod
    def _find(session: Session, key: VolumeKey) -> Volume:
        if key.id:
            volume = session.get(Volume, key.id)
            what = f"id {key.id!r}"
        else:
            volume = session.scalar(select(Volume).where(Volume.name == validate_name(key.name)))
            what = repr(key.name)
        if volume is None:
            raise NotFound(f"volume {what} does not exist")
        return volume

    def get(self, key: VolumeKey) -> Volume:
        with self._db.read() as session:
            return self._find(session, key)

    def list(self, page_size: int, page_token: str) -> Page:
        if page_size > MAX_PAGE_SIZE:
            raise InvalidArgument(f"page size must be at most {MAX_PAGE_SIZE}")
        limit = page_size or DEFAULT_PAGE_SIZE
        query = select(Volume).order_by(Volume.name).limit(limit + 1)
        if page_token:
            query = query.where(Volume.name > _decode_token(page_token))
        with self._db.read() as session:
            volumes = list(session.scalars(query))
        if len(volumes) > limit:
            return Page(volumes[:limit], _encode_token(volumes[limit - 1].name))
        return Page(volumes, "")

    def resize(self, key: VolumeKey, size: int) -> Volume:
        self._validate_size(size)
        with self._db.write() as session:
            volume = self._find(session, key)
            if size < volume.size_bytes:
                raise FailedPrecondition(
                    f"volume {volume.name!r} is {volume.size_bytes} bytes; "
                    "volumes can grow but not shrink"
                )
            volume.size_bytes = size
            return volume

    def delete(self, key: VolumeKey) -> None:
        """Delete the volume with its namespace (by ON DELETE CASCADE); the
        blob collector then takes the blobs nothing references any more."""
        with self._db.write() as session:
            try:
                volume = self._find(session, key)
            except NotFound:
                return
            session.delete(volume)

    def capacity(self) -> CapacityReport:
        self._blob_dir.mkdir(parents=True, exist_ok=True)
        disk = shutil.disk_usage(self._blob_dir)
        with self._db.read() as session:
            count, provisioned, used = session.execute(
                select(
                    func.count(Volume.id),
                    func.coalesce(func.sum(Volume.size_bytes), 0),
                    func.coalesce(func.sum(Volume.used_bytes), 0),
                )
            ).one()
        return CapacityReport(
            total_bytes=disk.total,
            available_bytes=disk.free,
            provisioned_bytes=int(provisioned),
            used_bytes=int(used),
            volume_count=int(count),
            max_volume_size=self._max_size,
        )
