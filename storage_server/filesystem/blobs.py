"""Immutable blobs of file data, named by random ids.

A blob is written whole and never changed, so any copy or cache of it stays
valid; it is deleted only by the collector once no slice names it. `BlobStore`
is what the rest of the server relies on; `LocalBlobStore` keeps blobs as
files under a directory (an S3 store can implement the same five methods).
"""

import errno
import mmap
import os
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# Larger extents are split over several blobs: a blob is read and cached whole
# by clients later, and a bounded size keeps a stream's buffer bounded.
BLOB_MAX = 4 * 1024 * 1024
_DIRS = [f"{i:02x}" for i in range(256)]
Buffer = bytes | bytearray | memoryview
# Direct I/O wants buffers, lengths and offsets in multiples of the device's
# logical block; a page covers every common one.
_ALIGN = mmap.PAGESIZE
# Aligned buffers kept for reuse: enough for the blob putters that run at once.
_BUFFERS_KEPT = 8


class BlobMissing(Exception):
    """A blob is not there (the collector took it after its last reference went)."""


@dataclass(frozen=True)
class BlobInfo:
    id: str
    # Seconds since the epoch when the blob was written.
    written_at: float


class BlobStore(Protocol):
    def put(self, pieces: Sequence[Buffer]) -> str:
        """Store the pieces, one after the other, as a new blob and return its
        id; durable once `sync` returns."""

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


def _write_new(path: Path, flags: int, view: memoryview, length: int) -> None:
    """Create the file from `view`, cut to `length` bytes, and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | flags, 0o600)
    try:
        written = len(view)
        while view:
            view = view[os.write(fd, view) :]
        if written != length:
            os.ftruncate(fd, length)
        os.fsync(fd)
    finally:
        os.close(fd)


def _takes_direct_io(root: Path) -> bool:
    """Whether files under `root` can be written with O_DIRECT (tmpfs and some
    other file systems refuse it)."""
    probe = root / f".direct-probe-{uuid.uuid4().hex}"
    buffer = mmap.mmap(-1, _ALIGN)
    try:
        _write_new(probe, os.O_DIRECT, memoryview(buffer), _ALIGN)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        return False
    finally:
        buffer.close()
        probe.unlink(missing_ok=True)
    return True


class _AlignedBuffers:
    """Page-aligned buffers of BLOB_MAX bytes for direct writes, reused: fresh
    memory costs a page fault per page when first touched."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[mmap.mmap] = []

    def take(self, size: int) -> mmap.mmap:
        if size <= BLOB_MAX:
            with self._lock:
                if self._free:
                    return self._free.pop()
        return mmap.mmap(-1, max(size, BLOB_MAX))

    def give(self, buffer: mmap.mmap) -> None:
        with self._lock:
            if len(buffer) == BLOB_MAX and len(self._free) < _BUFFERS_KEPT:
                self._free.append(buffer)
                return
        buffer.close()


class LocalBlobStore:
    """Blobs as files root/<first two hex digits>/<id>.

    A blob is written with direct I/O where the file system allows it: from an
    aligned buffer to the disk, without a copy into the page cache. On the
    virtual machines measured, that copy took most of the server's CPU time
    while a large write came in. A blob is read by clients that cache it, so
    the page cache gains little from holding it as it is written."""

    def __init__(self, root: Path) -> None:
        self._root = root
        # Made once, so a put never has to make (and fsync) a directory.
        for name in _DIRS:
            (root / name).mkdir(parents=True, exist_ok=True)
        _fsync_dir(root)
        self.direct = _takes_direct_io(root)
        self._buffers = _AlignedBuffers()

    def _path(self, blob_id: str) -> Path:
        return self._root / blob_id[:2] / blob_id

    def put(self, pieces: Sequence[Buffer]) -> str:
        blob_id = uuid.uuid4().hex
        path = self._path(blob_id)
        if not self.direct:
            data = b"".join(pieces)
            _write_new(path, 0, memoryview(data), len(data))
            return blob_id
        length = sum(len(piece) for piece in pieces)
        padded = -(-length // _ALIGN) * _ALIGN
        buffer = self._buffers.take(padded)
        try:
            at = 0
            for piece in pieces:
                buffer[at : at + len(piece)] = piece
                at += len(piece)
            buffer[length:padded] = bytes(padded - length)
            _write_new(path, os.O_DIRECT, memoryview(buffer)[:padded], length)
        finally:
            self._buffers.give(buffer)
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
