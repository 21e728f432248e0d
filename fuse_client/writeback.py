"""Write-behind: bytes written to a file are gathered and stored in large pieces.

write() returns once the bytes are buffered; background senders store full
buffers while the next one fills (several at once while their ranges are
disjoint; overlapping ones in order). flush and fsync wait until everything buffered is stored:
that is what makes close and fsync durable. A failure of a background store is
reported by the file's next write, flush or fsync, never dropped.
"""

import errno
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from fuse_client.remote import Remote
from proto.netvol.v1 import filesystem_pb2 as pb

FLUSH_BYTES = 8 * 1024 * 1024
# Many small random writes become many slices; store them before they pile up.
FLUSH_EXTENTS = 1024
MAX_INFLIGHT = 4


def _overlap(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> bool:
    return any(s1 < e2 and s2 < e1 for s1, e1 in a for s2, e2 in b)


class _Extents:
    """Buffered writes in order; a write that continues the last one extends it."""

    def __init__(self) -> None:
        self.items: list[tuple[int, bytearray]] = []
        self.bytes = 0

    def add(self, offset: int, data: bytes) -> None:
        if self.items:
            last_offset, last = self.items[-1]
            if last_offset + len(last) == offset:
                last += data
                self.bytes += len(data)
                return
        self.items.append((offset, bytearray(data)))
        self.bytes += len(data)

    def end(self) -> int:
        return max((o + len(d) for o, d in self.items), default=0)


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
        self._inflight: list[tuple[Future[pb.Attr], list[tuple[int, int]]]] = []
        self._error: OSError | None = None

    @property
    def dirty(self) -> bool:
        return bool(self._pending.items) or bool(self._inflight)

    def dirty_end(self) -> int:
        """The file size the buffered writes imply (0 when nothing is buffered)."""
        with self._lock:
            ends = [end for _, ranges in self._inflight for _, end in ranges]
            return max([self._pending.end(), *ends])

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
        ranges = [(o, o + len(d)) for o, d in extents]
        # Stores of disjoint ranges may commit in any order, so several run at
        # once (the server overlaps their fsyncs); an overlapping one waits for
        # those it overlaps, so the later bytes win.
        while len(self._inflight) >= MAX_INFLIGHT or any(
            _overlap(ranges, other) for _, other in self._inflight
        ):
            self._wait_oldest()
        self._inflight.append((self._executor.submit(self._store, extents), ranges))

    def _store(self, extents: list[tuple[int, bytearray]]) -> pb.Attr:
        attr = self._remote.write(self.ino, extents)
        self._on_stored(attr)
        return attr
