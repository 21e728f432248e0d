"""What the client remembers between calls: attributes and directory entries for
a short time (the attribute-cache bound), and file data by version.

Entries are keyed by (parent inode, name), so renaming a directory leaves the
entries below it valid. A directory whose whole listing was fetched answers
misses authoritatively until the bound passes (no round trip per stat).
"""

import threading
import time
from collections import OrderedDict
from typing import Generic, TypeVar

from proto.netvol.v1 import filesystem_pb2 as pb

NEGATIVE = 0  # an entry cached as "no such name"

K = TypeVar("K")
V = TypeVar("V")


class _TTLMap(Generic[K, V]):
    """A bounded LRU map whose items expire `ttl` seconds after they are put."""

    def __init__(self, ttl: float, max_items: int) -> None:
        self._ttl = ttl
        self._max = max_items
        self._items: OrderedDict[K, tuple[V, float]] = OrderedDict()

    def put(self, key: K, value: V) -> None:
        self._items[key] = (value, time.monotonic() + self._ttl)
        self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] < time.monotonic():
            del self._items[key]
            return None
        return item[0]

    def pop(self, key: K) -> None:
        self._items.pop(key, None)


class MetaCache:
    def __init__(self, ttl: float, max_items: int = 200_000) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._attrs: _TTLMap[int, pb.Attr] = _TTLMap(ttl, max_items)
        self._entries: _TTLMap[tuple[int, str], int] = _TTLMap(ttl, max_items)
        self._listed: _TTLMap[int, bool] = _TTLMap(ttl, max_items)
        self._xattrs: _TTLMap[int, frozenset[str]] = _TTLMap(ttl, max_items)

    def attr(self, ino: int) -> pb.Attr | None:
        with self._lock:
            return self._attrs.get(ino)

    def put_attr(self, attr: pb.Attr) -> None:
        with self._lock:
            self._attrs.put(attr.ino, attr)

    def drop_attr(self, ino: int) -> None:
        with self._lock:
            self._attrs.pop(ino)

    def xattr_names(self, ino: int) -> frozenset[str] | None:
        with self._lock:
            return self._xattrs.get(ino)

    def put_xattr_names(self, ino: int, names: frozenset[str]) -> None:
        with self._lock:
            self._xattrs.put(ino, names)

    def drop_xattr_names(self, ino: int) -> None:
        with self._lock:
            self._xattrs.pop(ino)

    def entry(self, parent: int, name: str) -> int | None:
        """The child's inode, NEGATIVE when known absent, None when unknown."""
        with self._lock:
            ino = self._entries.get((parent, name))
            if ino is not None:
                return ino
            return NEGATIVE if self._listed.get(parent) else None

    def put_entry(self, parent: int, name: str, attr: pb.Attr) -> None:
        with self._lock:
            self._entries.put((parent, name), attr.ino)
            self._attrs.put(attr.ino, attr)

    def put_name(self, parent: int, name: str, ino: int) -> None:
        """`name` in `parent` is `ino` now (NEGATIVE: no such name); a complete
        listing of `parent` stays complete, since we know the change."""
        with self._lock:
            self._entries.put((parent, name), ino)

    def put_listing(self, parent: int, entries: list[pb.DirEntry]) -> None:
        """A directory's complete listing: every name in it, and no others."""
        with self._lock:
            # The mark first, so it expires before any entry it vouches for:
            # a listing must never outlive one of its names.
            self._listed.put(parent, True)
            for entry in entries:
                self._entries.put((parent, entry.name), entry.attr.ino)
                self._attrs.put(entry.attr.ino, entry.attr)


class DataCache:
    """File data in fixed blocks, for one data version per inode; LRU by bytes."""

    def __init__(self, block_size: int, max_bytes: int) -> None:
        self.block_size = block_size
        self._max = max_bytes
        self._bytes = 0
        self._lock = threading.Lock()
        self._blocks: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._indexes: dict[int, set[int]] = {}
        self._versions: dict[int, int] = {}

    def version(self, ino: int) -> int | None:
        with self._lock:
            return self._versions.get(ino)

    def set_version(self, ino: int, version: int) -> None:
        """Remember `version` as current; blocks of any other version are dropped."""
        with self._lock:
            if self._versions.get(ino) != version:
                self._drop(ino)
                self._versions[ino] = version

    def forget(self, ino: int) -> None:
        with self._lock:
            self._drop(ino)
            self._versions.pop(ino, None)

    def _drop(self, ino: int) -> None:
        for index in self._indexes.pop(ino, set()):
            self._bytes -= len(self._blocks.pop((ino, index)))

    def get(self, ino: int, index: int) -> bytes | None:
        with self._lock:
            block = self._blocks.get((ino, index))
            if block is not None:
                self._blocks.move_to_end((ino, index))
            return block

    def put(self, ino: int, version: int, index: int, block: bytes) -> None:
        with self._lock:
            if self._versions.get(ino) != version:
                return  # fetched before a newer version was seen
            old = self._blocks.pop((ino, index), b"")
            self._bytes += len(block) - len(old)
            self._blocks[(ino, index)] = block
            self._indexes.setdefault(ino, set()).add(index)
            while self._bytes > self._max:
                (evicted_ino, evicted_index), evicted = self._blocks.popitem(last=False)
                self._bytes -= len(evicted)
                self._indexes[evicted_ino].discard(evicted_index)
