"""The metadata cache on its own: a complete listing answers misses only while
every one of its names is still kept, and readdir past the bound only while the
directory's stamp stays."""

import stat
import time

from fuse_client.cache import LISTING_AFTER_MISSES, NEGATIVE, MetaCache, Move
from proto.netvol.v1 import filesystem_pb2 as pb

DIR = 1


def _list(
    cache: MetaCache,
    parent: int,
    names: list[str],
    first_ino: int,
    stamp: tuple[int, int] | None = None,
) -> list[tuple[str, int, int]]:
    since = time.monotonic()
    items = [(name, first_ino + i, stat.S_IFREG) for i, name in enumerate(names)]
    attrs = [pb.Attr(ino=ino, mode=mode) for _, ino, mode in items]
    cache.put_entries(parent, items, attrs, since)
    cache.put_listing(parent, since, items, stamp)
    return items


def test_a_complete_listing_answers_misses() -> None:
    cache = MetaCache(ttl=60, max_items=10)
    _list(cache, DIR, ["a", "b"], 100)
    assert cache.entry(DIR, "a") == 100
    assert cache.entry(DIR, "missing") == NEGATIVE
    assert cache.listing(DIR) is not None


def test_a_listing_too_big_to_keep_whole_answers_no_miss() -> None:
    cache = MetaCache(ttl=60, max_items=3)
    _list(cache, DIR, ["a", "b", "c", "d", "e"], 100)
    assert cache.entry(DIR, "a") is None  # pushed out: unknown, not absent
    assert cache.entry(DIR, "missing") is None
    assert cache.listing(DIR) is None


def test_a_name_pushed_out_later_ends_the_listing() -> None:
    cache = MetaCache(ttl=60, max_items=3)
    _list(cache, DIR, ["a", "b"], 100)
    cache.put_entry(2, "x", pb.Attr(ino=200))
    cache.put_entry(2, "y", pb.Attr(ino=201))  # pushes "a" out
    assert cache.entry(DIR, "b") == 101
    assert cache.entry(DIR, "a") is None
    assert cache.listing(DIR) is None


def test_a_page_asked_for_before_a_change_of_ours_keeps_no_names() -> None:
    """Our unlink answered between a page's call and its answer: the page still
    shows the name, which must not come back."""
    cache = MetaCache(ttl=60, max_items=10)
    asked = time.monotonic()
    cache.put_name(DIR, "a", NEGATIVE)  # our unlink of "a"
    cache.put_entries(DIR, [("a", 100, stat.S_IFREG)], [pb.Attr(ino=100)], asked)
    cache.put_listing(DIR, asked, [("a", 100, stat.S_IFREG)], None)
    assert cache.entry(DIR, "a") == NEGATIVE
    assert cache.entry(DIR, "other") is None  # not complete: ask the server
    assert cache.listing(DIR) is None


def test_a_page_taken_late_expires_as_when_it_was_asked_for() -> None:
    """Pages are read ahead; what one says is as old as the call that read it,
    and it does not replace what the cache learnt since."""
    cache = MetaCache(ttl=0.2, max_items=10)
    asked = time.monotonic() - 0.15
    cache.put_attr(pb.Attr(ino=101, size=7))  # a getattr after the page was read
    cache.put_entries(
        DIR,
        [("a", 100, stat.S_IFREG), ("b", 101, stat.S_IFREG)],
        [pb.Attr(ino=100), pb.Attr(ino=101, size=1)],
        asked,
    )
    attr = cache.attr(101)
    assert cache.entry(DIR, "a") == 100 and attr is not None and attr.size == 7
    time.sleep(0.08)
    assert cache.entry(DIR, "a") is None and cache.attr(100) is None
    assert cache.attr(101) is not None


def test_misses_within_the_bound_ask_for_a_whole_listing() -> None:
    cache = MetaCache(ttl=60, max_items=10)
    assert [cache.note_miss(DIR) for _ in range(LISTING_AFTER_MISSES)] == [False] * (
        LISTING_AFTER_MISSES - 1
    ) + [True]
    assert not cache.note_miss(DIR)  # counting starts again


def test_misses_further_apart_than_the_bound_do_not_add_up() -> None:
    cache = MetaCache(ttl=0.05, max_items=10)
    for _ in range(2 * LISTING_AFTER_MISSES):
        assert not cache.note_miss(DIR)
        time.sleep(0.06)


def test_a_listing_past_the_bound_answers_again_only_at_its_stamp() -> None:
    cache = MetaCache(ttl=0.05, max_items=10)
    items = _list(cache, DIR, ["a", "b"], 100, stamp=(5, 6))
    _list(cache, 2, ["c"], 200)  # no stamp: nothing to check past the bound
    time.sleep(0.06)
    assert cache.listing(DIR) is None and cache.listing(2) is None
    assert cache.listing_stamp(DIR) == (5, 6) and cache.listing_stamp(2) is None
    assert cache.recheck_listing(DIR, (5, 6), time.monotonic()) == items
    assert cache.listing(DIR) == items  # for the bound again
    time.sleep(0.06)
    assert cache.recheck_listing(DIR, (5, 7), time.monotonic()) is None
    assert cache.listing_stamp(DIR) is None  # dropped, not checked again


def test_a_change_of_ours_drops_a_listing_whatever_its_stamp() -> None:
    """The server may not have applied our change yet: its stamp would not show it."""
    cache = MetaCache(ttl=0.05, max_items=10)
    _list(cache, DIR, ["a", "b"], 100, stamp=(5, 6))
    cache.put_name(DIR, "a", NEGATIVE)
    assert cache.listing_stamp(DIR) is None
    assert cache.recheck_listing(DIR, (5, 6), time.monotonic()) is None


def test_a_name_we_add_at_the_listings_stamp_joins_it() -> None:
    cache = MetaCache(ttl=0.05, max_items=10)
    items = _list(cache, DIR, ["b", "c"], 100, stamp=(5, 6))
    kept = cache.listing(DIR)
    cache.put_added(DIR, "a", pb.Attr(ino=300, mode=stat.S_IFDIR), before=(5, 6), after=(7, 7))
    assert cache.listing(DIR) == [*items, ("a", 300, stat.S_IFDIR)]
    assert kept == items  # a pass that began before keeps what it read
    assert cache.entry(DIR, "a") == 300
    assert cache.listing_stamp(DIR) == (7, 7)
    time.sleep(0.06)
    assert cache.recheck_listing(DIR, (7, 7), time.monotonic()) is not None


def test_a_name_we_add_after_another_change_drops_the_listing() -> None:
    cache = MetaCache(ttl=60, max_items=10)
    _list(cache, DIR, ["b"], 100, stamp=(5, 6))
    _list(cache, 2, ["c"], 200, stamp=(5, 6))
    cache.put_added(DIR, "a", pb.Attr(ino=300), before=(6, 6), after=(7, 7))
    cache.put_added(2, "a", pb.Attr(ino=301), before=None, after=(7, 7))
    assert cache.listing_stamp(DIR) is None and cache.listing(DIR) is None
    assert cache.listing_stamp(2) is None and cache.listing(2) is None
    # The names stay complete: the change is ours and known.
    assert cache.entry(DIR, "a") == 300 and cache.entry(DIR, "missing") == NEGATIVE


def test_a_listing_found_unchanged_answers_misses_again_but_not_names() -> None:
    """Only the listing's absences are known again; of its names, the
    attributes are not, so those are asked for."""
    cache = MetaCache(ttl=0.05, max_items=10)
    _list(cache, DIR, ["a", "b"], 100, stamp=(5, 6))
    time.sleep(0.06)
    assert cache.entry(DIR, "missing") is None and cache.entry(DIR, "a") is None
    cache.recheck_listing(DIR, (5, 6), time.monotonic())
    assert cache.entry(DIR, "missing") == NEGATIVE
    assert cache.entry(DIR, "a") is None
    time.sleep(0.06)
    assert cache.entry(DIR, "missing") is None


def test_a_looked_up_name_drops_a_listing_only_if_the_listing_lacks_it() -> None:
    cache = MetaCache(ttl=60, max_items=10)
    _list(cache, DIR, ["a"], 100, stamp=(5, 6))
    cache.put_entry(DIR, "a", pb.Attr(ino=100))
    assert cache.listing_stamp(DIR) == (5, 6)
    cache.put_entry(DIR, "a", pb.Attr(ino=101))  # replaced by someone else
    assert cache.listing_stamp(DIR) is None


def test_our_rename_within_a_listed_directory_moves_the_name_in_its_listing() -> None:
    cache = MetaCache(ttl=60, max_items=10)
    _list(cache, DIR, ["a", "b", "c"], 100, stamp=(5, 6))
    cache.put_moved(
        Move(DIR, "a", DIR, "c", 100, stat.S_IFREG, before=((5, 6), (5, 6)), after=((7, 7), (7, 7)))
    )
    assert cache.listing(DIR) == [("b", 101, stat.S_IFREG), ("c", 100, stat.S_IFREG)]
    assert cache.listing_stamp(DIR) == (7, 7)
    assert cache.entry(DIR, "a") == NEGATIVE and cache.entry(DIR, "c") == 100


def test_our_rename_across_directories_follows_both_listings_or_drops_them() -> None:
    cache = MetaCache(ttl=60, max_items=10)
    _list(cache, DIR, ["a", "b"], 100, stamp=(5, 6))
    _list(cache, 2, ["c"], 200, stamp=(8, 8))
    cache.put_moved(
        Move(DIR, "a", 2, "d", 100, stat.S_IFREG, before=((5, 6), (8, 8)), after=((9, 9), (9, 9)))
    )
    assert cache.listing(DIR) == [("b", 101, stat.S_IFREG)]
    assert cache.listing(2) == [("c", 200, stat.S_IFREG), ("d", 100, stat.S_IFREG)]
    # The target directory changed in between: its listing goes, the other stays.
    cache.put_moved(
        Move(DIR, "b", 2, "e", 101, stat.S_IFREG, ((9, 9), (8, 8)), after=((10, 10), (10, 10)))
    )
    assert cache.listing(DIR) == [] and cache.listing_stamp(2) is None
    # The new listing takes what the server moved, not what a stale cache held:
    # here another node had replaced x by a directory before our rename.
    _list(cache, 3, ["x"], 300, stamp=(1, 1))
    _list(cache, 4, [], 400, stamp=(3, 3))
    cache.put_moved(
        Move(3, "x", 4, "y", 350, stat.S_IFDIR, before=((2, 2), (3, 3)), after=((4, 4), (4, 4)))
    )
    assert cache.listing_stamp(3) is None
    assert cache.listing(4) == [("y", 350, stat.S_IFDIR)]
    # A server that does not say what it moved: both listings go.
    _list(cache, 5, ["p"], 500, stamp=(1, 1))
    cache.put_moved(Move(5, "p", 5, "q", 500, None, ((1, 1), (1, 1)), after=((2, 2), (2, 2))))
    assert cache.listing_stamp(5) is None


def test_attributes_never_go_back_to_an_older_data_version() -> None:
    cache = MetaCache(ttl=60, max_items=10)
    cache.put_attr(pb.Attr(ino=5, size=8192, data_version=3))
    cache.put_attr(pb.Attr(ino=5, size=4096, data_version=2))  # answered earlier
    cache.put_entry(1, "f", pb.Attr(ino=5, size=4096, data_version=2))
    assert cache.attr(5) == pb.Attr(ino=5, size=8192, data_version=3)
    cache.put_attr(pb.Attr(ino=5, size=8192, data_version=3, mode=0o600))
    assert cache.attr(5) == pb.Attr(ino=5, size=8192, data_version=3, mode=0o600)


def test_a_directory_touched_with_our_clock_takes_the_servers_next_answer() -> None:
    # The client's clock may run ahead of the server's: ctime does not order answers.
    cache = MetaCache(ttl=60, max_items=10)
    cache.put_attr(pb.Attr(ino=2, mode=0o40755, ctime_ns=100))
    cache.touch(2, now_ns=300)
    cache.put_attr(pb.Attr(ino=2, mode=0o40700, ctime_ns=200))
    assert cache.attr(2) == pb.Attr(ino=2, mode=0o40700, ctime_ns=200)
