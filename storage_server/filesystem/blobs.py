"""Immutable blobs of file data, named by random ids.

A blob is written whole and never changed, so any copy or cache of it stays
valid; it is deleted only by the collector once no slice names it. `BlobStore`
is what the rest of the server relies on; `LocalBlobStore` keeps blobs as
files under a directory (an S3 store can implement the same five methods).
"""

import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# Larger extents are split over several blobs: a blob is read and cached whole
# by clients later, and a bounded size keeps a stream's buffer bounded.
BLOB_MAX = 4 * 1024 * 1024
_DIRS = [f"{i:02x}" for i in range(256)]


class BlobMissing(Exception):
    """A blob is not there (the collector took it after its last reference went)."""


@dataclass(frozen=True)
class BlobInfo:
    id: str
    # Seconds since the epoch when the blob was written.
    written_at: float


class BlobStore(Protocol):
    def put(self, data: bytes) -> str:
        """Store `data` as a new blob and return its id; durable once `sync` returns."""

    def sync(self, blob_ids: Iterable[str]) -> None:
        """Make the named blobs, just put, survive a crash."""

    def read(self, blob_id: str, offset: int, length: int) -> bytes:
        """Bytes [offset, offset+length) of a blob; BlobMissing if it is gone."""

    def delete(self, blob_id: str) -> None:
        """Remove a blob; removing a missing one succeeds."""

    def listing(self) -> Iterator[BlobInfo]:
        """Every blob stored, in no particular order."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStore:
    """Blobs as files root/<first two hex digits>/<id>."""

    def __init__(self, root: Path) -> None:
        self._root = root
        # Made once, so a put never has to make (and fsync) a directory.
        for name in _DIRS:
            (root / name).mkdir(parents=True, exist_ok=True)
        _fsync_dir(root)

    def _path(self, blob_id: str) -> Path:
        return self._root / blob_id[:2] / blob_id

    def put(self, data: bytes) -> str:
        blob_id = uuid.uuid4().hex
        fd = os.open(self._path(blob_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        return blob_id

    def sync(self, blob_ids: Iterable[str]) -> None:
        for directory in {self._path(b).parent for b in blob_ids}:
            _fsync_dir(directory)

    def read(self, blob_id: str, offset: int, length: int) -> bytes:
        try:
            fd = os.open(self._path(blob_id), os.O_RDONLY)
        except FileNotFoundError as exc:
            raise BlobMissing(blob_id) from exc
        try:
            data = os.pread(fd, length, offset)
        finally:
            os.close(fd)
        if len(data) != length:
            raise OSError(f"blob {blob_id} is shorter than its slices say")
        return data

    def delete(self, blob_id: str) -> None:
        self._path(blob_id).unlink(missing_ok=True)

    def listing(self) -> Iterator[BlobInfo]:
        for name in _DIRS:
            with os.scandir(self._root / name) as entries:
                for entry in entries:
                    try:
                        written = entry.stat().st_mtime
                    except FileNotFoundError:
                        continue
                    yield BlobInfo(entry.name, written)
