"""Snapshots: take, look up, list and delete them, with their rules.

A snapshot is a copy of a volume's files as the copy's transaction sees them,
kept in a hidden volume row of kind SNAPSHOT: nothing but a restore reads it
and nothing changes it, so no later change of the source alters it. File data
is shared, not copied (storage_server.filesystem.copy), and a blob stays as
long as any slice, of a volume or of a snapshot, names it. Data a client has
buffered but not yet written to the server is not in the snapshot.

Every method is one transaction.
"""

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage_server import volumes
from storage_server.db import Database
from storage_server.errors import AlreadyExists, NotFound
from storage_server.models import SNAPSHOT, Snapshot, Volume
from storage_server.paging import Page, page
from storage_server.volumes import VolumeKey

# Snapshots are named as volumes are.
SnapshotKey = VolumeKey


def _validate_name(name: str) -> str:
    return volumes.validate_name(name, SNAPSHOT)


def find(session: Session, key: SnapshotKey) -> Snapshot:
    return volumes.lookup(session, Snapshot, key, SNAPSHOT)


def _same_or_conflict(existing: Snapshot, source: Volume) -> Snapshot:
    if existing.source_volume_id != source.id:
        raise AlreadyExists(f"snapshot {existing.name!r} exists, of another volume")
    return existing


class SnapshotStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, name: str, source_key: VolumeKey) -> Snapshot:
        _validate_name(name)

        def take(session: Session) -> Snapshot:
            source = volumes.find(session, source_key)
            existing = session.scalar(select(Snapshot).where(Snapshot.name == name))
            if existing is not None:
                return _same_or_conflict(existing, source)
            files = volumes.add(
                session,
                # A name no volume can have, for the row that holds the copy.
                name=f"{SNAPSHOT}/{uuid.uuid4()}",
                size=source.size_bytes,
                parameters={},
                kind=SNAPSHOT,
                copy_of=source,
            )
            snapshot = Snapshot(
                id=str(uuid.uuid4()),
                name=name,
                volume_id=files.id,
                source_volume_id=source.id,
                size_bytes=source.size_bytes,
                used_bytes=files.used_bytes,
                created_at=files.created_at,
            )
            session.add(snapshot)
            return snapshot

        try:
            return self._db.consistent_write(take)
        except IntegrityError:
            # Another server took a snapshot of that name between our look-up and insert.
            with self._db.read() as session:
                return _same_or_conflict(
                    find(session, SnapshotKey(name=name)), volumes.find(session, source_key)
                )

    def get(self, key: SnapshotKey) -> Snapshot:
        with self._db.read() as session:
            return find(session, key)

    def list(
        self, page_size: int, page_token: str, *, source_volume_id: str = "", snapshot_id: str = ""
    ) -> Page[Snapshot]:
        """A page of snapshots by name; the filters, when set, narrow it (an
        unknown id gives an empty list, not an error)."""
        query = select(Snapshot)
        if source_volume_id:
            query = query.where(Snapshot.source_volume_id == source_volume_id)
        if snapshot_id:
            query = query.where(Snapshot.id == snapshot_id)
        with self._db.read() as session:
            return page(
                session,
                query,
                Snapshot.name,
                page_size=page_size,
                page_token=page_token,
                validate_name=_validate_name,
            )

    def delete(self, key: SnapshotKey) -> None:
        """Delete the snapshot's copy of the files (the snapshot row goes with it
        by ON DELETE CASCADE); the collector then takes the blobs nothing else names."""
        with self._db.write() as session:
            try:
                snapshot = find(session, key)
            except NotFound:
                return
            session.delete(session.get_one(Volume, snapshot.volume_id))
