"""Volume lifecycle: create (empty, or as a copy of a snapshot or a volume),
look up, list, resize and delete, with their rules.

Every method is one transaction. Validation happens here, once, so every
caller (the admin API, later the CSI controller through it) gets the same rules.
Only rows of kind VOLUME are volumes here; snapshots keep their copies of files
in hidden rows of kind SNAPSHOT (storage_server.snapshots).
"""

import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

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
from storage_server.filesystem.copy import copy_tree
from storage_server.models import NAME_MAX_BYTES, SNAPSHOT, VOLUME, Snapshot, Volume
from storage_server.paging import Page, page
from storage_server.quantity import format_size

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_PARAMETERS = 64
MAX_PARAMETER_BYTES = 4096


@dataclass(frozen=True)
class VolumeKey:
    """A volume (or a snapshot) named by its name or by its id (exactly one is set)."""

    name: str = ""
    id: str = ""


@dataclass(frozen=True)
class ContentSource:
    """What a new volume's files are copied from: a snapshot or a volume, by id."""

    kind: str  # SNAPSHOT or VOLUME
    id: str


@dataclass(frozen=True)
class CapacityReport:
    total_bytes: int
    available_bytes: int
    provisioned_bytes: int
    used_bytes: int
    volume_count: int
    max_volume_size: int


def validate_name(name: str, what: str = VOLUME) -> str:
    if not name:
        raise InvalidArgument(f"{what} name is required")
    if len(name.encode()) > NAME_MAX_BYTES:
        raise InvalidArgument(f"{what} name is longer than {NAME_MAX_BYTES} bytes")
    if not _NAME.match(name):
        raise InvalidArgument(
            f"invalid {what} name {name!r}: use letters, digits, '.', '_' and '-', "
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


Named = TypeVar("Named", Volume, Snapshot)


def lookup(
    session: Session, model: type[Named], key: VolumeKey, what: str, *criteria: Any
) -> Named:
    """The row of `model` (a `what`) that `key` names and that meets the
    criteria; NotFound if there is none."""
    query = select(model).where(*criteria)
    if key.id:
        query = query.where(model.id == key.id)
    else:
        query = query.where(model.name == validate_name(key.name, what))
    found = session.scalar(query)
    if found is None:
        named = f"id {key.id!r}" if key.id else repr(key.name)
        raise NotFound(f"{what} {named} does not exist")
    return found


def find(session: Session, key: VolumeKey) -> Volume:
    """The volume named by `key`; NotFound if there is none."""
    return lookup(session, Volume, key, VOLUME, Volume.kind == VOLUME)


def add(
    session: Session,
    *,
    name: str,
    size: int,
    parameters: dict[str, str],
    kind: str = VOLUME,
    source: ContentSource | None = None,
    copy_of: Volume | None = None,
) -> Volume:
    """A new volume row with an empty root directory, or a copy of the files of
    `copy_of`; flushed, so that its id can be referenced."""
    volume = Volume(
        id=str(uuid.uuid4()),
        name=name,
        size_bytes=size,
        used_bytes=0,
        parameters=parameters,
        created_at=datetime.now(UTC),
        kind=kind,
        source_kind=source.kind if source else None,
        source_id=source.id if source else None,
    )
    session.add(volume)
    session.flush()
    if copy_of is None:
        inodes.make_root(session, volume)
    else:
        copy_tree(session, copy_of, volume)
    return volume


def _files_of(session: Session, source: ContentSource, size: int) -> Volume:
    """The volume row holding the files a new volume of `size` bytes copies
    from `source`; OutOfRange when they do not fit."""
    key = VolumeKey(id=source.id)
    if source.kind == SNAPSHOT:
        snapshot = lookup(session, Snapshot, key, SNAPSHOT)
        files = session.get_one(Volume, snapshot.volume_id)
    else:
        files = find(session, key)
    if files.used_bytes > size:
        raise OutOfRange(
            f"the {source.kind} holds {files.used_bytes} bytes, more than the {size} asked for"
        )
    return files


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

    def create(
        self,
        name: str,
        size: int,
        parameters: dict[str, str],
        source: ContentSource | None = None,
    ) -> Volume:
        validate_name(name)
        self._validate_size(size)
        parameters = _validate_parameters(parameters)

        def create_in(session: Session) -> Volume:
            existing = session.scalar(select(Volume).where(Volume.name == name))
            if existing is not None:
                return self._same_or_conflict(existing, size, parameters, source)
            return add(
                session,
                name=name,
                size=size,
                parameters=parameters,
                source=source,
                copy_of=None if source is None else _files_of(session, source, size),
            )

        try:
            # A copy must see its source at one moment.
            return self._db.consistent_write(create_in)
        except IntegrityError:
            # Another server created the same name between our look-up and insert.
            with self._db.read() as session:
                existing = find(session, VolumeKey(name=name))
                return self._same_or_conflict(existing, size, parameters, source)

    @staticmethod
    def _same_or_conflict(
        existing: Volume, size: int, parameters: dict[str, str], source: ContentSource | None
    ) -> Volume:
        if existing.size_bytes != size:
            raise AlreadyExists(
                f"volume {existing.name!r} exists with size {existing.size_bytes} bytes, not {size}"
            )
        if existing.parameters != parameters:
            raise AlreadyExists(f"volume {existing.name!r} exists with other parameters")
        if (existing.source_kind, existing.source_id) != (
            (source.kind, source.id) if source else (None, None)
        ):
            raise AlreadyExists(f"volume {existing.name!r} exists with other contents")
        return existing

    def get(self, key: VolumeKey) -> Volume:
        with self._db.read() as session:
            return find(session, key)

    def list(self, page_size: int, page_token: str) -> Page[Volume]:
        with self._db.read() as session:
            return page(
                session,
                select(Volume).where(Volume.kind == VOLUME),
                Volume.name,
                page_size=page_size,
                page_token=page_token,
                validate_name=validate_name,
            )

    def resize(self, key: VolumeKey, size: int) -> Volume:
        self._validate_size(size)
        with self._db.write() as session:
            volume = find(session, key)
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
                volume = find(session, key)
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
                ).where(Volume.kind == VOLUME)
            ).one()
        return CapacityReport(
            total_bytes=disk.total,
            available_bytes=disk.free,
            provisioned_bytes=int(provisioned),
            used_bytes=int(used),
            volume_count=int(count),
            max_volume_size=self._max_size,
        )
