"""Reads in whole blocks, with read-ahead that grows while access is sequential.

Blocks are cached per data version (DataCache), so a block fetched once serves
every later read of that version, from any handle. Concurrent readers of the
same missing blocks share one fetch.

Fetches run in the reader's own threads, never in the thread serving the
kernel's request: that one waits for them as a killed process may stop
waiting (Remote.wait), and they do not queue behind stores.
"""

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from fuse_client.cache import DataCache
from fuse_client.remote import Remote

BLOCK = 1024 * 1024
MAX_WINDOW_BLOCKS = 8
# Windows fetched ahead of a sequential reader, each its own Read stream: one
# stream carries ~230 MB/s here, two in flight ~430 MB/s.
AHEAD_WINDOWS = 2
# Fetches at once: demanded blocks and every sequential reader's windows ahead.
FETCHERS = 16

T = TypeVar("T")


class Reader:
    def __init__(self, remote: Remote, cache: DataCache) -> None:
        self._remote = remote
        self._cache = cache
        self._pool = ThreadPoolExecutor(max_workers=FETCHERS, thread_name_prefix="read")
        self._lock = threading.Lock()
        self._fetching: dict[tuple[int, int], Future[None]] = {}

    def read(
        self, ino: int, version: int, offset: int, size: int, *, file_size: int, window: int
    ) -> bytes:
        """Bytes of [offset, offset+size) of version `version`; `window` blocks are
        fetched per miss (the caller grows it while reads are sequential)."""
        end = min(offset + size, file_size)
        if offset >= end:
            return b""
        first, last = offset // BLOCK, (end - 1) // BLOCK
        last_block = (file_size - 1) // BLOCK
        parts = []
        for index in range(first, last + 1):
            block = self._block(ino, version, index, min(index + window, last_block + 1))
            lo = offset - index * BLOCK if index == first else 0
            hi = end - index * BLOCK if index == last else BLOCK
            parts.append(block[lo:hi])
        if window > 1:
            for ahead in range(1, AHEAD_WINDOWS + 1):
                start = last + ahead * window
                if start > last_block:
                    break
                self._prefetch(ino, version, start, min(start + window, last_block + 1))
        return b"".join(parts)

    def _block(self, ino: int, version: int, index: int, stop: int) -> bytes:
        block = self._cache.get(ino, index)
        if block is not None and self._cache.version(ino) == version:
            return block
        self._done(self._start(ino, version, index, stop))
        block = self._cache.get(ino, index)
        if block is not None:
            return block
        # Evicted at once or a newer version arrived: read this block alone.
        _, data = self._done(self._pool.submit(self._remote.read, ino, index * BLOCK, BLOCK))
        return data

    def _done(self, fetch: "Future[T]") -> T:
        """The fetch's result, waited for as a killed caller may stop waiting."""
        self._remote.wait(fetch)
        return fetch.result()

    def _start(self, ino: int, version: int, index: int, stop: int) -> "Future[None]":
        """The fetch of block `index`: one under way, else a new one of the run of
        blocks from `index` (up to `stop`) that nobody is fetching yet."""
        with self._lock:
            future = self._fetching.get((ino, index))
            if future is not None:
                return future
            stop = next(
                (
                    i
                    for i in range(index + 1, stop)
                    if (ino, i) in self._fetching or self._cache.get(ino, i) is not None
                ),
                stop,
            )
            future = self._pool.submit(self._fetch, ino, version, index, stop)
            for i in range(index, stop):
                self._fetching[(ino, i)] = future
        return future

    def _fetch(self, ino: int, version: int, start: int, stop: int) -> None:
        try:
            attr, data = self._remote.read(ino, start * BLOCK, (stop - start) * BLOCK)
            # Else the file changed since it was opened, and callers read directly.
            if attr.data_version == version:
                for i in range(start, stop):
                    piece = data[(i - start) * BLOCK : (i - start + 1) * BLOCK]
                    if piece:
                        self._cache.put(ino, version, i, piece)
        finally:
            with self._lock:
                for i in range(start, stop):
                    self._fetching.pop((ino, i), None)

    def _prefetch(self, ino: int, version: int, start: int, stop: int) -> None:
        if self._cache.get(ino, start) is None:
            self._start(ino, version, start, stop)  # joins a fetch under way

    def close(self) -> None:
        """Drop the fetches nobody waits for any more (after stop_reads())."""
        self._pool.shutdown(wait=True, cancel_futures=True)
