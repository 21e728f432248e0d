"""Directory listings from the server, a page at a time as the kernel asks.

A pass reads a listing in name order from its first entry. Every page's
entries go to the metadata cache (stat storms answer from it); a complete
listing small enough to keep answers the next pass within the bound, or after
it once a GetAttr shows the directory as it was when the listing was read (or
as our own additions left it, see MetaCache.put_added). The page after the
current one is fetched while the kernel takes this one.
"""

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from fuse_client import orphans
from fuse_client.cache import DirItem, MetaCache, Stamp, stamp_of
from fuse_client.remote import Remote
from proto.netvol.v1 import filesystem_pb2 as pb

# Entries per ReadDir call, and at most per readdir answer to the kernel.
LISTING_PAGE = 2000
# A listing is kept whole (for the next readdir within the bound) up to this size.
KEEP_LISTING_MAX = 100_000


@dataclass
class Pass:
    """One read of a directory's listing, page by page, from its first entry."""

    ino: int
    hidden: str  # a name not to show ("" for none)
    since: float = field(default_factory=time.monotonic)
    after: str = ""  # the last name read, where the next page starts
    more: bool = True  # whether the server has entries after `after`
    start: int = 0  # the index in the listing of page[0]
    page: list[DirItem] = field(default_factory=list)
    # Every entry so far, while the listing is small enough to keep.
    seen: list[DirItem] | None = field(default_factory=list)
    # The page after `page`, on its way while the kernel takes this one, and
    # when it was asked for.
    ahead: "Future[pb.ReadDirResponse] | None" = None
    ahead_asked: float = 0.0
    pages: int = 0  # read from the server so far
    # The directory's stamp at every page read; None once they differ.
    stamp: Stamp | None = None


class Lister:
    def __init__(
        self, remote: Remote, meta: MetaCache, executor: ThreadPoolExecutor, root_ino: int
    ) -> None:
        self._remote = remote
        self._meta = meta
        self._executor = executor
        self._root = root_ino

    def _pass(self, ino: int) -> Pass:
        # The root hides the directory of files unlinked while open.
        return Pass(ino, orphans.NAME if ino == self._root else "")

    def fetch_all(self, ino: int) -> None:
        """Read `ino`'s whole listing into the cache."""
        listing = self._pass(ino)
        while listing.more:
            self._next_page(listing)

    def begin(self, ino: int) -> Pass:
        """A new pass: from the kept listing if there is one, else from the server."""
        listing = self._pass(ino)
        kept = self.kept(ino)
        if kept is not None:
            listing.page, listing.more, listing.seen = kept, False, None
        return listing

    def kept(self, ino: int) -> list[DirItem] | None:
        """`ino`'s kept listing: within its bound, or past it if the directory
        is unchanged since (or changed only by us, see MetaCache.put_added):
        one GetAttr instead of reading the listing again."""
        kept = self._meta.listing(ino)
        if kept is not None:
            return kept
        if self._meta.listing_stamp(ino) is None:
            return None
        asked = time.monotonic()
        return self._meta.recheck_listing(ino, stamp_of(self._remote.getattr(ino)), asked)

    def entries(self, listing: Pass, index: int) -> list[DirItem]:
        """At most a page of entries from the `index`-th on (empty at the end),
        reading on from the server as far as needed; `index` is not before
        listing.start."""
        while index >= listing.start + len(listing.page) and listing.more:
            self._next_page(listing)
        first = index - listing.start
        return listing.page[first : first + LISTING_PAGE]

    def _next_page(self, listing: Pass) -> None:
        """Read the page after listing.page; the last one completes the listing."""
        if listing.ahead is not None:
            asked = listing.ahead_asked
            self._remote.wait(listing.ahead)
            reply, listing.ahead = listing.ahead.result(), None
        else:
            asked = time.monotonic()
            reply = self._remote.readdir_page(listing.ino, listing.after, LISTING_PAGE)
        # A server that does not send the directory's times leaves the stamp unknown.
        stamp = stamp_of(reply.directory) if reply.HasField("directory") else None
        if listing.pages == 0:
            listing.stamp = stamp
        elif stamp != listing.stamp:
            listing.stamp = None
        listing.pages += 1
        entries = reply.entries
        attrs = [e.attr for e in entries]  # read once: each access costs
        page = [(e.name, attr.ino, attr.mode) for e, attr in zip(entries, attrs, strict=True)]
        self._meta.put_entries(listing.ino, page, attrs, asked)
        if listing.hidden:
            page = [item for item in page if item[0] != listing.hidden]
        listing.start += len(listing.page)
        listing.page = page
        listing.more = reply.more and len(entries) > 0
        if entries:
            listing.after = entries[-1].name
        if listing.seen is not None:
            listing.seen += listing.page
            if len(listing.seen) > KEEP_LISTING_MAX:
                listing.seen = None
        if listing.more:
            listing.ahead_asked = time.monotonic()
            listing.ahead = self._executor.submit(
                self._remote.readdir_page, listing.ino, listing.after, LISTING_PAGE
            )
        else:
            self._meta.put_listing(listing.ino, listing.since, listing.seen, listing.stamp)
