"""Write-behind: bytes written to a file are gathered and stored in large pieces.

write() returns once the bytes are buffered; background senders store full
buffers while the next one fills. Several stores run at once; one that
overlaps earlier ones starts sending when they are done, so the later bytes
win, and write() waits only when MAX_INFLIGHT stores are under way. A buffer
is stored as disjoint pieces in file order: rewritten bytes go once, and
the written buffers go as they are, not copied into larger ones (the server
joins adjacent pieces). flush and fsync wait until everything buffered is
stored: that is what makes close and fsync durable. A failure of a background
store is reported to every file open at the time, once, by its next write,
flush or fsync (as Linux reports writeback errors), never dropped. A process
killed while it waits for a store stops waiting; what it wrote is still stored.
No lock is held while waiting for the server, so the file's other users (a
stat, an open, another process's read behind a close that waits) are never
held where a kill cannot end their wait.
"""

import bisect
import concurrent.futures
import errno
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

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


@dataclass
class Told:
    """How many of a writer's failed stores one open file has been told of."""

    failures: int = 0


@dataclass(frozen=True)
class Stored:
    """A store done: the inode's attributes after it, and the paths the stored
    writes came through (the kernel's pages of those paths hold them already)."""

    attr: pb.Attr
    through: frozenset[str]


@dataclass
class _Extents:
    """Buffered writes in order; a small write that continues a small one before
    it extends that one's buffer."""

    items: list[tuple[int, Buffer]] = field(default_factory=list)
    nbytes: int = 0
    end: int = 0  # where the furthest write ends (getattr asks on every call)
    through: set[str] = field(default_factory=set)

    def add(self, offset: int, data: bytes, through: str) -> None:
        self.through.add(through)
        self.nbytes += len(data)
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
        on_stored: Callable[[Stored], None],
    ) -> None:
        self.ino = ino
        self._remote = remote
        self._executor = executor
        self._on_stored = on_stored
        self._lock = threading.Lock()
        self._pending = _Extents()
        # Stores under way, with the byte ranges each covers.
        self._inflight: list[tuple[Future[pb.Attr], list[Range]]] = []
        self._failures = 0  # stores that failed, ever
        self._error: OSError | None = None  # the latest failure

    @property
    def dirty(self) -> bool:
        return bool(self._pending.items) or bool(self._inflight)

    def dirty_end(self) -> int:
        """The file size the buffered writes imply (0 when nothing is buffered)."""
        with self._lock:
            ends = [end for _, ranges in self._inflight for _, end in ranges]
            return max([self._pending.end, *ends])

    def dirty_bytes(self) -> int:
        return self._pending.nbytes

    def told(self) -> Told:
        """For a file opened now: failures before its open are not its to hear."""
        with self._lock:
            return Told(self._failures)

    def write(self, offset: int, data: bytes, through: str, told: Told) -> None:
        """Buffer the write; first, a failure `told`'s file has not heard of."""
        with self._lock:
            self._tell(told)
            self._pending.add(offset, data, through)
            full = self._pending.nbytes >= FLUSH_BYTES or len(self._pending.items) >= FLUSH_EXTENTS
        if full:
            self._send()

    def write_through(self, offset: int, data: bytes, through: str, told: Told) -> None:
        """Store `data` now, after what is buffered; its error is this call's."""
        self.flush(told)
        self._on_stored(
            Stored(self._remote.write(self.ino, [(offset, data)]), frozenset([through]))
        )

    def flush(self, told: Told | None = None) -> None:
        """Store all that is buffered and wait for it; then tell `told`'s file of
        failures it has not heard of (None: tell no one, they stay to be told)."""
        for future in self._send():
            self._remote.wait(future)
        with self._lock:
            self._reap()
            if told is not None:
                self._tell(told)

    def _tell(self, told: Told) -> None:
        if told.failures < self._failures and self._error is not None:
            told.failures = self._failures
            raise self._error

    def _send(self) -> list[Future[pb.Attr]]:
        """Start storing what is buffered, once fewer than MAX_INFLIGHT stores
        are under way; the stores under way then. A killed caller stops
        waiting (EINTR); what is buffered stays so, for the next flush."""
        while True:
            with self._lock:
                self._reap()
                if not self._pending.items or len(self._inflight) < MAX_INFLIGHT:
                    if self._pending.items:
                        self._dispatch()
                    return [future for future, _ in self._inflight]
                oldest = self._inflight[0][0]
            self._remote.wait(oldest)

    def _reap(self) -> None:
        """Forget the stores that are done, keeping their failures to tell."""
        under_way = []
        for future, ranges in self._inflight:
            if not future.done():
                under_way.append((future, ranges))
                continue
            try:
                future.result()
            except OSError as exc:
                self._failed(exc)
            except Exception as exc:  # a bug must still fail the write, not lose it silently
                self._failed(OSError(errno.EIO, f"storing data failed: {exc!r}"))
        self._inflight = under_way

    def _failed(self, error: OSError) -> None:
        self._failures += 1
        self._error = error

    def _dispatch(self) -> None:
        pending, self._pending = self._pending, _Extents()
        spans = _spans(pending.items)
        # Stores of disjoint ranges may commit in any order, so several run at
        # once (the server overlaps their fsyncs); an overlapping one waits, in
        # its sender, for those it overlaps, so the later bytes win. A store
        # only waits for ones submitted before it: they hold a sender already.
        earlier = [future for future, other in self._inflight if _overlap(spans, other)]
        future = self._executor.submit(self._store, pending, earlier)
        self._inflight.append((future, spans))

    def _store(self, pending: _Extents, earlier: list[Future[pb.Attr]]) -> pb.Attr:
        concurrent.futures.wait(earlier)
        attr = self._remote.write(self.ino, _disjoint(pending.items))
        self._on_stored(Stored(attr, frozenset(pending.through)))
        return attr
