"""One volume on two nodes: what one node writes and closes, the other reads
bit-exact, and changes to names show on the other node within the
attribute-cache bound; both nodes writing at once lose and mix nothing."""

import os
import time
from collections.abc import Callable
from pathlib import Path

from tests.harness.volume import sha256
from tests.multinode.conftest import (
    ATTR_TTL,
    Pair,
    both_hold,
    new_dir,
    start_writers,
    stop_writers,
    wait_for_more,
)
from tests.multinode.workers import CHUNK, chunk_data

SIZES = [0, 1, 4097, 2**20 + 1, 9 * 2**20 + 3]
# How much longer than the bound a change is looked for, to tell late from never.
MARGIN = 2.0
POLL = 0.02
# The poll's own granularity, and the scheduling of this process.
SLACK = 0.15


def seen_in_time(check: Callable[[], bool], what: str, since: float) -> None:
    """`check` holds by `since` plus the attribute-cache bound."""
    while not check():
        assert time.monotonic() < since + ATTR_TTL + MARGIN, f"{what}: never seen"
        time.sleep(POLL)
    late = time.monotonic() - since
    assert late <= ATTR_TTL + SLACK, f"{what}: seen after {late:.2f}s, beyond {ATTR_TTL}s"


def shared_dir(pair: Pair) -> tuple[Path, Path]:
    """A new directory of the volume, as node A and as node B see it."""
    name = new_dir(pair)
    return pair.a.path / name, pair.b.path / name


def test_files_closed_on_one_node_are_read_bit_exact_on_the_other(shared: Pair) -> None:
    on_a, on_b = shared_dir(shared)
    for origin, writer, reader in (("a", on_a, on_b), ("b", on_b, on_a)):
        written = {}
        for size in SIZES:
            name = f"from-{origin}-{size}"
            assert not (reader / name).exists()  # the reader now caches "no such file"
            data = os.urandom(size)
            (writer / name).write_bytes(data)
            written[name] = sha256(data)
        closed = time.monotonic()
        for name, digest in written.items():
            seen_in_time((reader / name).exists, f"{name} on the other node", closed)
            assert sha256((reader / name).read_bytes()) == digest, name


def test_a_file_rewritten_on_one_node_is_read_whole_by_the_next_open_on_the_other(
    shared: Pair,
) -> None:
    on_a, on_b = shared_dir(shared)
    (on_a / "doc").write_bytes(b"first version\n" * 1000)
    seen_in_time((on_b / "doc").exists, "doc on node B", time.monotonic())
    assert (on_b / "doc").read_bytes() == b"first version\n" * 1000  # now in B's caches
    for content in (b"second, shorter\n" * 10, b"third, longer than both\n" * 5000):
        (on_a / "doc").write_bytes(content)
        # Close-to-open: the open after the close sees it all, without waiting.
        assert (on_b / "doc").read_bytes() == content


def test_a_file_grown_on_one_node_is_read_whole_where_it_was_just_written(
    shared: Pair,
) -> None:
    on_a, on_b = shared_dir(shared)
    (on_a / "grown").write_bytes(b"a" * 1000)
    seen_in_time((on_b / "grown").exists, "grown on node B", time.monotonic())
    assert (on_a / "grown").stat().st_size == 1000  # node A's kernel caches the size
    with (on_b / "grown").open("ab") as f:
        f.write(b"b" * 1000)
    # Close-to-open: node A's next open sees the new size, not the one it cached.
    assert (on_a / "grown").read_bytes() == b"a" * 1000 + b"b" * 1000


def test_a_cached_listing_hides_a_new_file_no_longer_than_the_bound(shared: Pair) -> None:
    on_a, on_b = shared_dir(shared)
    for delay in (0.5 * ATTR_TTL, 0.95 * ATTR_TTL):
        name = f"after-{delay}"
        os.listdir(on_b)  # node B's client caches the whole listing...
        (on_a / name).write_bytes(b"new")
        created = time.monotonic()
        # ...and node B's kernel first asks for the name just before that expires:
        # the kernel caches the answer, so the two caches must share the bound.
        time.sleep(delay)
        seen_in_time((on_b / name).exists, f"{name} on node B", created)


def test_a_tree_made_on_one_node_is_listed_on_the_other(shared: Pair) -> None:
    on_a, on_b = shared_dir(shared)
    assert os.listdir(on_b) == []  # the reader now caches an empty listing
    expected = []
    for parts in ("x", "x/y", "x/y/z", "w", "w/v"):
        (on_a / parts).mkdir()
        (on_a / parts / "f").write_text(parts)
        expected += [parts, f"{parts}/f"]
    made = time.monotonic()

    def listed() -> list[str]:
        found = []
        for root, dirs, files in os.walk(on_b):
            found += [str(Path(root, name).relative_to(on_b)) for name in dirs + files]
        return sorted(found)

    seen_in_time(lambda: listed() == sorted(expected), "the tree on node B", made)
    assert (on_b / "x/y/z/f").read_text() == "x/y/z"


def test_a_rename_on_one_node_is_seen_on_the_other(shared: Pair) -> None:
    on_a, on_b = shared_dir(shared)
    (on_a / "old").write_bytes(b"moved")
    seen_in_time((on_b / "old").exists, "old on node B", time.monotonic())
    assert not (on_b / "new").exists()
    (on_a / "old").rename(on_a / "new")
    renamed = time.monotonic()
    seen_in_time(
        lambda: (on_b / "new").exists() and not (on_b / "old").exists(),
        "the rename on node B",
        renamed,
    )
    assert (on_b / "new").read_bytes() == b"moved"


def test_a_delete_on_one_node_is_seen_on_the_other(shared: Pair) -> None:
    on_a, on_b = shared_dir(shared)
    (on_a / "victim").write_bytes(b"doomed")
    seen_in_time((on_b / "victim").exists, "victim on node B", time.monotonic())
    assert (on_a / "victim").stat().st_size == 6  # node A caches it as there
    (on_b / "victim").unlink()
    deleted = time.monotonic()
    seen_in_time(lambda: not (on_a / "victim").exists(), "the delete on node A", deleted)


def test_both_nodes_writing_files_at_once_lose_nothing(shared: Pair) -> None:
    directory = new_dir(shared)
    writers = start_writers(shared, directory)
    wait_for_more(writers, 3)
    acknowledged = stop_writers(writers)
    a, b = writers
    # Each acknowledged a file before the other's last one: they wrote at once.
    assert a.lines[0][0] < b.lines[-1][0] and b.lines[0][0] < a.lines[-1][0]
    assert {name[0] for name in acknowledged} == {"a", "b"}
    both_hold(shared, directory, acknowledged)


def test_both_nodes_writing_ranges_of_one_file_at_once_mix_nothing(shared: Pair) -> None:
    on_a, on_b = shared_dir(shared)
    count = 64
    (on_a / "striped").write_bytes(b"")
    seen_in_time((on_b / "striped").exists, "striped on node B", time.monotonic())
    name = f"{on_a.name}/striped"
    # Node A writes the even chunks, node B the odd ones, each fsynced, at once.
    writers = [
        shared.run(side, "write-chunks", side.inside(name), str(first), "2", str(count))
        for side, first in ((shared.a, 0), (shared.b, 1))
    ]
    for writer in writers:
        assert writer.finish() == 0
        assert len(writer.said) == count // 2
    expected = b"".join(chunk_data(index) for index in range(count))
    for view in (on_a, on_b):
        data = (view / "striped").read_bytes()
        assert len(data) == count * CHUNK
        mixed = [i for i in range(count) if data[i * CHUNK : (i + 1) * CHUNK] != chunk_data(i)]
        assert not mixed, f"chunks wrong through {view}: {mixed}"
        assert data == expected
