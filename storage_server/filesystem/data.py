"""File data in and out: a Write stream becomes extents (blobs or inline bytes),
and extents become the bytes a Read streams."""

import errno
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

from sqlalchemy.orm import Session

from storage_server.db import Database
from storage_server.errors import FsError, Unavailable
from storage_server.filesystem import blockmap, collector
from storage_server.filesystem.blobs import BLOB_MAX, BlobMissing, BlobStore
from storage_server.filesystem.blockmap import MAX_FILE_SIZE, Extent

log = logging.getLogger(__name__)

READ_CHUNK = 1024 * 1024
# A read is planned a window at a time, so a huge read holds a bounded amount
# of inline data in memory.
READ_WINDOW = 4 * 1024 * 1024
PLAN_ATTEMPTS = 3
# Blobs are written and fsynced here while the stream goes on arriving, so disk
# flushes overlap the network and each other (measured: the fsync of each 4 MiB
# blob, done in line, held one stream to ~140 MB/s).
_putters = ThreadPoolExecutor(max_workers=4, thread_name_prefix="blob-put")


class StreamWriter:
    """Turns a Write stream's pieces into extents, storing blobs as they fill.

    Contiguous pieces are joined into runs; a run is cut into blobs of at most
    BLOB_MAX bytes, and a piece of at most `inline_max` bytes stays inline.
    The pieces are kept as they came until the blob store copies them out:
    each copy of a large write costs, in fresh memory mostly page faults."""

    def __init__(
        self,
        store: BlobStore,
        inline_max: int,
        blob_grace: float,
        generation: Callable[[], int],
    ) -> None:
        self._store = store
        self._inline_max = inline_max
        self._blob_grace = blob_grace
        self._generation = generation  # the collector gate's, read before the first put
        self._seen = 0
        self._first_put: float | None = None
        self._run: deque[memoryview] = deque()
        self._run_bytes = 0
        self._run_start = 0
        self._extents: list[Extent] = []
        self._puts: list[tuple[int, Future[str]]] = []  # extent index -> blob id

    def add(self, offset: int, data: bytes) -> None:
        if offset + len(data) > MAX_FILE_SIZE:
            raise FsError(errno.EFBIG, f"a write ending at {offset + len(data)} is too large")
        if not data:
            return
        if offset != self._run_start + self._run_bytes:
            self._flush()
        if not self._run:
            self._run_start = offset
        self._run.append(memoryview(data))
        self._run_bytes += len(data)
        while self._run_bytes >= BLOB_MAX:
            self._emit(BLOB_MAX)

    def _flush(self) -> None:
        if self._run_bytes:
            self._emit(self._run_bytes)

    def _emit(self, length: int) -> None:
        """Make the run's first `length` bytes an extent."""
        pieces: list[memoryview] = []
        wanted = length
        while wanted:
            first = self._run.popleft()
            if len(first) > wanted:
                first, rest = first[:wanted], first[wanted:]
                self._run.appendleft(rest)
            pieces.append(first)
            wanted -= len(first)
        self._run_bytes -= length
        start = self._run_start
        self._run_start += length
        if length <= self._inline_max:
            self._extents.append(Extent(start, length, data=b"".join(pieces)))
            return
        if self._first_put is None:
            self._seen = self._generation()
            self._first_put = time.monotonic()
        self._puts.append((len(self._extents), _putters.submit(self._store.put, pieces)))
        self._extents.append(Extent(start, length))

    def finish(self) -> list[Extent]:
        """The stream's extents in arrival order, their blobs durable."""
        self._flush()
        # Every put is waited for, so none is left running when one fails.
        outcomes = [(index, _outcome(future)) for index, future in self._puts]
        for _, outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        for index, blob_id in outcomes:
            self._extents[index] = replace(self._extents[index], blob_id=str(blob_id))
        self._store.sync(e.blob_id for e in self._extents if e.blob_id)
        return self._extents

    def check_blobs(self, session: Session) -> None:
        """In the transaction that references the blobs: hold the collector gate,
        and refuse (send it again) if a collection ran since the first blob was
        stored and that blob may have been old enough for it to take."""
        if self._first_put is None:
            return
        collected = collector.hold_gate(session) != self._seen
        if collected and time.monotonic() - self._first_put > self._blob_grace / 2:
            raise Unavailable("the write stream took too long; send it again")


def _outcome(future: "Future[str]") -> str | BaseException:
    try:
        return future.result()
    except BaseException as exc:
        return exc


def read_range(db: Database, store: BlobStore, ino: int, start: int, end: int) -> Iterator[bytes]:
    """Bytes [start, end) of a file in chunks of at most READ_CHUNK; holes read as zeros."""
    for window in range(start, end, READ_WINDOW):
        yield from _read_window(db, store, ino, window, min(window + READ_WINDOW, end))


def _read_window(db: Database, store: BlobStore, ino: int, start: int, end: int) -> list[bytes]:
    for _ in range(PLAN_ATTEMPTS):
        with db.read() as session:
            extents = blockmap.plan(session, ino, start, end)
        try:
            return [
                _chunk(store, low, min(low + READ_CHUNK, end), extents)
                for low in range(start, end, READ_CHUNK)
            ]
        except BlobMissing:
            # An overwrite dropped the blob's last reference after we planned,
            # and the collector took it: the map now says where the bytes are.
            continue
    log.error("inode %d: a blob its slices name is missing", ino)
    raise FsError(errno.EIO, "file data is missing from the blob store")


def _chunk(store: BlobStore, start: int, end: int, extents: list[Extent]) -> bytes:
    """Bytes [start, end) as the extents (disjoint, in file order) hold them.
    Where one blob holds them all, as a sequentially written file's do, they
    are read from it as they are: two copies fewer than assembling them."""
    covering = [e for e in extents if e.offset < end and e.end > start]
    if len(covering) == 1 and covering[0].offset <= start and covering[0].end >= end:
        piece = covering[0].part(start, end)
        if piece.blob_id is not None:
            return store.read(piece.blob_id, piece.blob_offset, piece.length)
    return bytes(_assemble(store, start, end, covering))


def _assemble(store: BlobStore, start: int, end: int, extents: list[Extent]) -> bytearray:
    out = bytearray(end - start)
    for extent in extents:
        low, high = max(extent.offset, start), min(extent.end, end)
        if low >= high:
            continue
        piece = extent.part(low, high)
        if piece.blob_id is None:
            out[low - start : high - start] = piece.data or b""
        else:
            out[low - start : high - start] = store.read(
                piece.blob_id, piece.blob_offset, piece.length
            )
    return out
