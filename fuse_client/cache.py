"""What the client remembers between calls: attributes and directory entries for
a short time (the attribute-cache bound), and file data by version.

Entries are keyed by (parent inode, name), so renaming a directory leaves the
entries below it valid. A directory whose whole listing was fetched answers
misses authoritatively until the bound passes (no round trip per stat), and
readdir from the kept listing unless a change has made that stale. A name we
add or rename changes the listing when the server's answer shows the directory
as the listing had it just before (no one else changed it in between), as
NFS's weak cache consistency does. Past the bound, the kept listing answers
readdir and misses again once the server shows the directory at the listing's
stamp.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from proto.netvol.v1 import filesystem_pb2 as pb

NEGATIVE = 0  # an entry cached as "no such name"

K = TypeVar("K")
V = TypeVar("V")

# A directory entry as readdir shows it: name, inode, st_mode.
DirItem = tuple[str, int, int]
# A directory's (mtime_ns, ctime_ns) on the server: every change of its entries
# sets both, and a client cannot set ctime.
Stamp = tuple[int, int]


def stamp_of(times: pb.Attr | pb.DirectoryTimes) -> Stamp:
    return times.mtime_ns, times.ctime_ns


# At most this many entries of kept listings in all.
KEPT_ITEMS_MAX = 200_000
# A directory whose names miss the cache this often, each within the bound of
# the one before, is listed whole: a stat storm costs one listing, not a call
# per name.
LISTING_AFTER_MISSES = 4


class _TTLMap(Generic[K, V]):
    """A bounded LRU map whose items expire `ttl` seconds after they are put;
    `evicted` hears of each key pushed out to keep the bound."""

    def __init__(
        self, ttl: float, max_items: int, evicted: Callable[[K], None] = lambda key: None
    ) -> None:
        self._ttl = ttl
        self._max = max_items
        self._evicted = evicted
        self._items: OrderedDict[K, tuple[V, float]] = OrderedDict()

    def _bound(self) -> None:
        while len(self._items) > self._max:
            self._evicted(self._items.popitem(last=False)[0])

    def put(self, key: K, value: V, at: float | None = None) -> None:
        """Keep `value` until `ttl` after `at` (default: now)."""
        self._items[key] = (value, (time.monotonic() if at is None else at) + self._ttl)
        self._items.move_to_end(key)
        self._bound()

    def put_many(self, pairs: Iterable[tuple[K, V]], at: float) -> None:
        """Keep each value until `ttl` after `at`, unless what the map holds for
        its key is newer."""
        expires = at + self._ttl
        items = self._items
        for key, value in pairs:
            held = items.get(key)
            if held is not None and held[1] > expires:
                continue
            items[key] = (value, expires)
            items.move_to_end(key)
        self._bound()

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


@dataclass
class _Kept:
    items: list[DirItem]
    by_name: dict[str, DirItem]  # the items
    stamp: Stamp | None  # the directory's when the listing was read, if known
    until: float  # monotonic: answers readdir unchecked until then


class _Listings:
    """Complete directory listings in server order, answering for `ttl` after
    they were begun (or last found unchanged); past that, a listing with its
    directory's stamp is kept for a check. LRU, bounded by their entries in all."""

    def __init__(self, ttl: float, max_items: int) -> None:
        self._ttl = ttl
        self._max = max_items
        self._count = 0
        self._listings: OrderedDict[int, _Kept] = OrderedDict()

    def put(self, ino: int, items: list[DirItem], since: float, stamp: Stamp | None) -> None:
        self.pop(ino)
        if len(items) > self._max:
            return
        by_name = {item[0]: item for item in items}
        self._listings[ino] = _Kept(items, by_name, stamp, since + self._ttl)
        self._count += len(items)
        self._bound()

    def _bound(self) -> None:
        while self._count > self._max:
            _, evicted = self._listings.popitem(last=False)
            self._count -= len(evicted.items)

    def get(self, ino: int) -> list[DirItem] | None:
        kept = self._listings.get(ino)
        if kept is None:
            return None
        if kept.until < time.monotonic():
            if kept.stamp is None:
                self.pop(ino)
            return None
        self._listings.move_to_end(ino)
        return kept.items

    def lacks(self, ino: int, name: str) -> bool:
        """Whether a listing of `ino` answers that it has no `name`."""
        kept = self._listings.get(ino)
        return kept is not None and kept.until >= time.monotonic() and name not in kept.by_name

    def holds(self, ino: int, name: str, child: int) -> bool:
        """Whether a listing of `ino`, valid or kept to check, has `name` as `child`."""
        item = self.item(ino, name)
        return item is not None and item[1] == child

    def stamp(self, ino: int) -> Stamp | None:
        kept = self._listings.get(ino)
        return None if kept is None else kept.stamp

    def item(self, ino: int, name: str) -> DirItem | None:
        """`name`'s entry in a listing of `ino`, valid or kept to check."""
        kept = self._listings.get(ino)
        return None if kept is None else kept.by_name.get(name)

    def change(
        self,
        ino: int,
        before: Stamp,
        after: Stamp,
        gone: tuple[str, ...] = (),
        item: DirItem | None = None,
    ) -> None:
        """Take the names `gone` out and put `item` in, if the listing was read
        at `before`, the directory's stamp just before our change, and take
        `after` as its stamp; a listing read at another is dropped."""
        kept = self._listings.get(ino)
        if kept is None or kept.stamp != before:
            self.pop(ino)
            return
        # A new list: passes under way keep reading the one they began with.
        items = [it for it in kept.items if it[0] not in gone] if gone else kept.items[:]
        for name in gone:
            kept.by_name.pop(name, None)
        if item is not None:
            items.append(item)
            kept.by_name[item[0]] = item
        self._count += len(items) - len(kept.items)
        kept.items, kept.stamp = items, after
        self._listings.move_to_end(ino)
        self._bound()

    def renew(self, ino: int, stamp: Stamp, since: float) -> list[DirItem] | None:
        """The listing again for `ttl` from `since` if it was read at `stamp`;
        else None, and a listing read at another stamp is dropped."""
        kept = self._listings.get(ino)
        if kept is None:
            return None
        if kept.stamp != stamp:
            self.pop(ino)
            return None
        kept.until = since + self._ttl
        self._listings.move_to_end(ino)
        return kept.items

    def pop(self, ino: int) -> None:
        kept = self._listings.pop(ino, None)
        if kept is not None:
            self._count -= len(kept.items)


@dataclass(frozen=True)
class Move:
    """A rename of ours: `name` in `parent` is now `new_name` in `new_parent`,
    naming inode `ino` of kind `mode` as the server moved it (mode None: the
    server did not say, and `ino` is only what we took the name for); the
    directories' stamps just before (None: the server did not say) and just
    after, in that order."""

    parent: int
    name: str
    new_parent: int
    new_name: str
    ino: int
    mode: int | None
    before: tuple[Stamp, Stamp] | None
    after: tuple[Stamp, Stamp]


class MetaCache:
    def __init__(self, ttl: float, max_items: int = 200_000) -> None:
        self._lock = threading.Lock()
        self._attrs: _TTLMap[int, pb.Attr] = _TTLMap(ttl, max_items)
        self._entries: _TTLMap[tuple[int, str], int] = _TTLMap(
            ttl, max_items, evicted=self._entry_evicted
        )
        self._listed: _TTLMap[int, bool] = _TTLMap(ttl, max_items)
        # Directories that lost a name to the bound, and when: not complete since.
        self._incomplete: _TTLMap[int, float] = _TTLMap(ttl, max_items)
        # For readdir; a change of ours to a directory drops its listing here
        # (not its mark in _listed) and notes when, so that a listing read
        # across the change is not kept.
        self._listings = _Listings(ttl, KEPT_ITEMS_MAX)
        self._changed: _TTLMap[int, float] = _TTLMap(ttl, max_items)
        self._xattrs: _TTLMap[int, frozenset[str]] = _TTLMap(ttl, max_items)
        self._misses: _TTLMap[int, int] = _TTLMap(ttl, max_items)

    def attr(self, ino: int) -> pb.Attr | None:
        with self._lock:
            return self._attrs.get(ino)

    def put_attr(self, attr: pb.Attr) -> None:
        with self._lock:
            self._put_attr(attr)

    def _put_attr(self, attr: pb.Attr) -> None:
        """Cache `attr`, unless the cached attributes are of a later data version
        (answers may be taken in out of order; the server's data versions only
        grow). Not by ctime: `touch` puts the client's clock in it."""
        cached = self._attrs.get(attr.ino)
        if cached is None or attr.data_version >= cached.data_version:
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
            if self._listed.get(parent) or self._listings.lacks(parent, name):
                return NEGATIVE
            # Of a name in a kept listing only its inode would be known here,
            # not its attributes: the caller asks.
            return None

    def note_miss(self, parent: int) -> bool:
        """Count a name of `parent` that the cache could not answer; True when
        it is time to list `parent` whole."""
        with self._lock:
            misses = (self._misses.get(parent) or 0) + 1
            if misses >= LISTING_AFTER_MISSES:
                self._misses.pop(parent)
                return True
            self._misses.put(parent, misses)
            return False

    def touch(self, ino: int, now_ns: int) -> None:
        """A change of ours to the directory that the server applies later:
        its cached times show it now, and expire when they would have."""
        with self._lock:
            attr = self._attrs.get(ino)
            if attr is not None:
                attr.mtime_ns = attr.ctime_ns = now_ns

    def forget_entry(self, parent: int, name: str) -> None:
        """What we took for the name (and so for the directory) may be wrong:
        ask the server next time."""
        with self._lock:
            self._entries.pop((parent, name))
            self._listed.pop(parent)
            self._attrs.pop(parent)
            self._stale(parent)

    def put_entry(self, parent: int, name: str, attr: pb.Attr) -> None:
        """What the server answered for `name` in `parent`; a kept listing
        without it (someone else's change) is dropped."""
        with self._lock:
            self._entries.put((parent, name), attr.ino)
            self._put_attr(attr)
            if not self._listings.holds(parent, name, attr.ino):
                self._stale(parent)

    def put_added(
        self, parent: int, name: str, attr: pb.Attr, before: Stamp | None, after: Stamp
    ) -> None:
        """`name` in `parent` is new, made by us, and `attr` its inode's; the
        directory was at `before` just before the change (None: the server did
        not say) and at `after` just after. A listing read at `before` is kept,
        with the name in it."""
        with self._lock:
            self._entries.put((parent, name), attr.ino)
            self._put_attr(attr)
            # Passes under way read across the change: none of them is kept.
            self._changed.put(parent, time.monotonic())
            if before is None:
                self._listings.pop(parent)
            else:
                self._listings.change(parent, before, after, item=(name, attr.ino, attr.mode))

    def put_moved(self, move: Move) -> None:
        """Our rename of a name to another (not an exchange): kept listings read
        at the directories' stamps from before it follow it, others are dropped."""
        with self._lock:
            self._entries.put((move.parent, move.name), NEGATIVE)
            self._entries.put((move.new_parent, move.new_name), move.ino)
            now = time.monotonic()
            self._changed.put(move.parent, now)
            self._changed.put(move.new_parent, now)
            if move.before is None or move.mode is None:
                self._listings.pop(move.parent)
                self._listings.pop(move.new_parent)
                return
            item = (move.new_name, move.ino, move.mode)
            # The new name may have named another inode, which the move replaced.
            if move.parent == move.new_parent:
                gone = (move.name, move.new_name)
                self._listings.change(move.parent, move.before[0], move.after[0], gone, item)
                return
            self._listings.change(move.parent, move.before[0], move.after[0], gone=(move.name,))
            self._listings.change(
                move.new_parent, move.before[1], move.after[1], gone=(move.new_name,), item=item
            )

    def put_name(self, parent: int, name: str, ino: int) -> None:
        """`name` in `parent` is `ino` now (NEGATIVE: no such name); a complete
        listing of `parent` stays complete, since we know the change."""
        with self._lock:
            self._entries.put((parent, name), ino)
            self._stale(parent)

    def _entry_evicted(self, key: tuple[int, str]) -> None:
        parent = key[0]
        self._listed.pop(parent)
        self._listings.pop(parent)
        self._incomplete.put(parent, time.monotonic())

    def _stale(self, parent: int) -> None:
        self._listings.pop(parent)
        self._changed.put(parent, time.monotonic())

    def put_entries(
        self, parent: int, items: Sequence[DirItem], attrs: Sequence[pb.Attr], asked: float
    ) -> None:
        """Entries of `parent` as the server listed them in answer to a call made
        at `asked` (monotonic), with their attributes. When a change of ours to
        `parent` came after that, the names may be stale: only the attributes
        are kept. Either expires as if put when asked for: a page read ahead
        may be taken much later."""
        with self._lock:
            changed = self._changed.get(parent)
            if changed is None or changed < asked:
                named = (((parent, name), ino) for name, ino, _mode in items)
                self._entries.put_many(named, asked)
            self._attrs.put_many(((attr.ino, attr) for attr in attrs), asked)

    def put_listing(
        self, parent: int, since: float, items: list[DirItem] | None, stamp: Stamp | None
    ) -> None:
        """`parent`'s complete listing, read from `since` (monotonic) on and its
        entries put with put_entries: every name in it, and no others. `items`,
        its entries in server order, answer readdir until the bound passes, and
        after it while the directory keeps `stamp` (None: the listing spans a
        change, or the server did not say)."""
        with self._lock:
            lost = self._incomplete.get(parent)
            changed = self._changed.get(parent)
            if (lost is not None and lost >= since) or (changed is not None and changed >= since):
                # Names were pushed out, or a change of ours kept some pages'
                # names out (see put_entries): misses must ask the server.
                return
            # Expiring as the first entry read does: a listing must never
            # outlive one of its names.
            self._listed.put(parent, True, at=since)
            if items is not None:
                self._listings.put(parent, items, since, stamp)

    def listing(self, parent: int) -> list[DirItem] | None:
        """`parent`'s complete listing, as put_listing kept it, while still valid."""
        with self._lock:
            return self._listings.get(parent)

    def listing_stamp(self, parent: int) -> Stamp | None:
        """The stamp of a listing of `parent` kept past its bound, to check
        with the server; None when there is nothing to check."""
        with self._lock:
            return self._listings.stamp(parent)

    def recheck_listing(self, parent: int, stamp: Stamp, asked: float) -> list[DirItem] | None:
        """`parent`'s kept listing, valid again for the bound from `asked`
        (monotonic), if the server's answer to a call made then showed the
        directory at the `stamp` the listing was read at; else None."""
        with self._lock:
            return self._listings.renew(parent, stamp, asked)


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

    def advance(self, ino: int, version: int) -> int | None:
        """Follow `version` unless a newer one is followed already (versions only
        grow; blocks of another version are dropped); the version followed
        before, None if none."""
        with self._lock:
            known = self._versions.get(ino)
            if known is None or version > known:
                self._drop(ino)
                self._versions[ino] = version
            return known

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
