"""Blob garbage collection: delete the blobs no slice names any more.

A blob is collected only once it is older than a grace period, because a Write
stream stores its blobs before the transaction that references them commits.
"Referenced" means any slice row of any volume names it; snapshots, restored
volumes and clones share blobs by copying slice rows, so their rows count too.
A copy's rows count before it commits as well: each batch is decided with the
collector gate held (models.CollectorGate), which waits for copies in flight.
"""

import itertools
import logging
import time
from collections.abc import Iterator

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage_server.db import Database
from storage_server.filesystem.blobs import BlobStore
from storage_server.models import CollectorGate, Slice

log = logging.getLogger(__name__)

_BATCH = 500


def generation(db: Database) -> int:
    """The collector gate's generation: it grows with each batch of old blobs
    the collector decides about."""
    with db.read() as session:
        return int(session.scalar(select(CollectorGate.generation)) or 0)


def hold_gate(session: Session) -> int:
    """Hold the collector gate shared until the transaction ends (a collection
    waits for it); its generation."""
    return int(session.scalar(select(CollectorGate.generation).with_for_update(read=True)) or 0)


def _old_blobs(store: BlobStore, grace_seconds: float) -> Iterator[list[str]]:
    cutoff = time.time() - grace_seconds
    old = (blob.id for blob in store.listing() if blob.written_at < cutoff)
    while batch := list(itertools.islice(old, _BATCH)):
        yield batch


def collect(db: Database, store: BlobStore, grace_seconds: float) -> int:
    """Delete unreferenced blobs older than the grace period; return how many."""
    deleted = 0
    for batch in _old_blobs(store, grace_seconds):
        with db.write() as session:
            session.execute(update(CollectorGate).values(generation=CollectorGate.generation + 1))
            referenced = set(
                session.scalars(select(Slice.blob_id).where(Slice.blob_id.in_(batch)).distinct())
            )
            # While the gate is held: a copy that starts meanwhile waits for it.
            for blob_id in set(batch) - referenced:
                store.delete(blob_id)
                deleted += 1
    if deleted:
        log.info("collected %d unreferenced blobs", deleted)
    return deleted
