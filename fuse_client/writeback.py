"""Write-behind: bytes written to a file are gathered and stored in large pieces.

write() returns once the bytes are buffered; background senders store full
buffers while the next one fills. Several stores run at once; one that
overlaps earlier ones starts sending when they are done, so the later bytes
win, and write() waits only when MAX_INFLIGHT stores are under way. A buffer
is stored as disjoint pieces in file order: rewritten bytes go once, and
the written buffers go as they are, not copied into larger ones (the server
joins adjacent pieces). flush and fsync wait until everything buffered is
stored: that is what makes close and fsync durable. A failure of a background
store is reported by the file's next write, flush or fsync, never dropped.
"""

import bisect
import concurrent.futures
import errno
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from fuse_client.remote import Remote
from proto.netvol.v1 import filesystem_pb2 as pb

FLUSH_BYTES = 8 * 1024 * 1024
# Many small random writes become many slices; store them before they pile up.
FLUSH_EXTENTS = 1024
MAX_INFLIGHT = 4


Range = tuple[int, int]
Buffer = bytes | bytearray | memoryview


def _spans(items: Sequence[tuple[int, Buffer]]) -> list[Range]:
    """The byte ranges the writes cover, merged, in file order."""
    spans: list[Range] = []
    for start, end in sorted((offset, offset + len(data)) for offset, data in items):
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


def _overlap(a: list[Range], b: list[Range]) -> bool:
    """Whether two lists of disjoint ranges in file order share a byte."""
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i][0] < b[j][1] and b[j][0] < a[i][1]:
            return True
        if a[i][1] <= b[j][1]:
            i += 1
        else:
            j += 1
    return False


# A write at least this large is kept as the bytes it came in; smaller ones
# that continue each other are copied into one buffer of up to JOIN_MAX bytes,
# so that many small writes do not become as many pieces.
KEEP_MIN = 64 * 1024
JOIN_MAX = 1024 * 1024


def _disjoint(items: Sequence[tuple[int, Buffer]]) -> list[tuple[int, Buffer]]:
    """Writes in the order they came as disjoint pieces in file order: where two
    overlap the later bytes win. Pieces are the written buffers, or views of
    them where a later write cut them: nothing is copied."""
    starts: list[int] = []
    pieces: list[Buffer] = []
    for offset, data in items:
        end = offset + len(data)
        if not pieces or offset >= starts[-1] + len(pieces[-1]):
            starts.append(offset)
            pieces.append(data)
            continue
        first = bisect.bisect_right(starts, offset) - 1
        if first < 0 or starts[first] + len(pieces[first]) <= offset:
            first += 1
        last = bisect.bisect_left(starts, end, lo=first)
        new_starts, new_pieces = [offset], [data]
        if first < last and starts[first] < offset:
            new_starts.insert(0, starts[first])
            new_pieces.insert(0, memoryview(pieces[first])[: offset - starts[first]])
        if first < last and starts[last - 1] + len(pieces[last - 1]) > end:
            new_starts.append(end)
            new_pieces.append(memoryview(pieces[last - 1])[end - starts[last - 1] :])
        starts[first:last], pieces[first:last] = new_starts, new_pieces
    return list(zip(starts, pieces, strict=True))


class _Extents:
    """Buffered writes in order; a small write that continues a small one before
    it extends that one's buffer."""

    def __init__(self) -> None:
        self.items: list[tuple[int, Buffer]] = []
        self.bytes = 0
        self.end = 0  # where the furthest write ends (getattr asks on every call)

    def add(self, offset: int, data: bytes) -> None:
        self.bytes += len(data)
        self.end = max(self.end, offset + len(data))
        if len(data) >= KEEP_MIN:
            self.items.append((offset, data))
            return
        if self.items:
            last_offset, last = self.items[-1]
            if (
                isinstance(last, bytearray)
                and last_offset + len(last) == offset
                and len(last) + len(data) <= JOIN_MAX
            ):
                last += data
                return
        self.items.append((offset, bytearray(data)))


class FileWriter:
    """The write-behind state of one inode, shared by all its open handles."""

    def __init__(
        self,
        ino: int,
        remote: Remote,
        executor: ThreadPoolExecutor,
        on_stored: Callable[[pb.Attr], None],
    ) -> None:
        self.ino = ino
        self._remote = remote
        self._executor = executor
        self._on_stored = on_stored
        self._lock = threading.Lock()
        self._pending = _Extents()
        # Stores under way, with the byte ranges each covers.
        self._inflight: list[tuple[Future[pb.Attr], list[Range]]] = []
        self._error: OSError | None = None

    @property
    def dirty(self) -> bool:
        return bool(self._pending.items) or bool(self._inflight)

    def dirty_end(self) -> int:
        """The file size the buffered writes imply (0 when nothing is buffered)."""
        with self._lock:
            ends = [end for _, ranges in self._inflight for _, end in ranges]
            return max([self._pending.end, *ends])

    def dirty_bytes(self) -> int:
        return self._pending.bytes

    def write(self, offset: int, data: bytes) -> None:
        with self._lock:
            self._raise_error()
            self._pending.add(offset, data)
            if self._pending.bytes >= FLUSH_BYTES or len(self._pending.items) >= FLUSH_EXTENTS:
                self._dispatch()

    def write_through(self, offset: int, data: bytes) -> None:
        """Store `data` now, after what is buffered; its error is this call's."""
        self.flush()
        self._on_stored(self._remote.write(self.ino, [(offset, data)]))

    def flush(self) -> None:
        with self._lock:
            if self._pending.items:
                self._dispatch()
            while self._inflight:
                self._wait_oldest()
            self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _wait_oldest(self) -> None:
        future, _ = self._inflight.pop(0)
        try:
            future.result()
        except OSError as exc:
            self._error = exc
        except Exception as exc:  # a bug must still fail the write, not lose it silently
            self._error = OSError(errno.EIO, f"storing data failed: {exc!r}")

    def _dispatch(self) -> None:
        extents, self._pending = self._pending.items, _Extents()
        spans = _spans(extents)
        while self._inflight and self._inflight[0][0].done():
            self._wait_oldest()
        while len(self._inflight) >= MAX_INFLIGHT:
            self._wait_oldest()
        # Stores of disjoint ranges may commit in any order, so several run at
        # once (the server overlaps their fsyncs); an overlapping one waits, in
        # its sender, for those it overlaps, so the later bytes win. A store
        # only waits for ones submitted before it: they hold a sender already.
        earlier = [future for future, other in self._inflight if _overlap(spans, other)]
        future = self._executor.submit(self._store, extents, earlier)
        self._inflight.append((future, spans))

    def _store(self, extents: list[tuple[int, Buffer]], earlier: list[Future[pb.Attr]]) -> pb.Attr:
        concurrent.futures.wait(earlier)
        attr = self._remote.write(self.ino, _disjoint(extents))
        self._on_stored(attr)
        return attr
