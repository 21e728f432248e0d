"""A listing one node keeps (in its client and kernel) shows the other node's
new and deleted names within the attribute-cache bound."""

import functools
import os
import time
from pathlib import Path

from tests.multinode.conftest import Pair
from tests.multinode.test_sharing import seen_in_time, shared_dir


def test_a_kept_listing_shows_the_other_nodes_changes_within_the_bound(shared: Pair) -> None:
    on_a, on_b = shared_dir(shared)
    names = [f"f{i:03d}" for i in range(50)]
    for name in names:
        (on_a / name).write_bytes(b"")
    seen_in_time(lambda: sorted(os.listdir(on_b)) == names, "the files on node B", time.monotonic())
    for name in names:
        os.stat(on_b / name)  # stats as well as listings keep it on node B

    (on_a / "new").write_bytes(b"")
    created = time.monotonic()
    seen_in_time(lambda: "new" in os.listdir(on_b), "new in node B's listing", created)

    os.listdir(on_b)
    (on_a / names[0]).unlink()
    deleted = time.monotonic()
    seen_in_time(lambda: names[0] not in os.listdir(on_b), "the delete on node B", deleted)


def test_names_both_nodes_add_to_one_directory_show_on_both(shared: Pair) -> None:
    """Each node keeps its listing through its own new names, never through the
    other's: neither may go on answering from a listing the other changed."""
    on_a, on_b = shared_dir(shared)
    assert os.listdir(on_a) == [] and os.listdir(on_b) == []  # both keep a listing
    expected: list[str] = []
    for i in range(20):
        for side, root in (("a", on_a), ("b", on_b)):
            (root / f"{side}{i:02d}").write_bytes(b"")
            expected.append(f"{side}{i:02d}")
    written = time.monotonic()

    def lists_all(root: Path) -> bool:
        return sorted(os.listdir(root)) == sorted(expected)

    seen_in_time(functools.partial(lists_all, on_a), "both nodes' files on node A", written)
    seen_in_time(functools.partial(lists_all, on_b), "both nodes' files on node B", written)
    # Node A keeps a listing again; a name node B adds shows by name, then in a listing.
    os.listdir(on_a)
    (on_b / "named").write_bytes(b"")
    created = time.monotonic()
    seen_in_time((on_a / "named").exists, "named on node A", created)
    os.listdir(on_a)
    (on_b / "listed").write_bytes(b"")
    created = time.monotonic()
    seen_in_time(lambda: "listed" in os.listdir(on_a), "listed on node A", created)
