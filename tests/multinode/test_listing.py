"""A listing one node keeps (in its client and kernel) shows the other node's
new and deleted names within the attribute-cache bound."""

import os
import time

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
