"""The link between node B and the storage server is cut for a few seconds:
node B's I/O waits and resumes, node A carries on meanwhile, nothing
acknowledged is lost, and node B's locks outlive a cut shorter than the lease."""

import time

from tests.harness.netns import Cluster
from tests.multinode.conftest import (
    LEASE,
    Pair,
    both_hold,
    new_dir,
    start_writers,
    stop_writers,
    wait_for_more,
)

CUT_SECONDS = 3.0


def test_a_node_cut_off_from_storage_waits_and_resumes(cluster: Cluster, shared: Pair) -> None:
    assert CUT_SECONDS < LEASE / 2
    directory = new_dir(shared)
    locked = f"{directory}/locked"
    (shared.a.path / locked).write_bytes(b"")
    holder = shared.run(shared.b, "lock", f"{shared.b.inside(locked)}=write:0:0")
    holder.wait_for("locked")
    writers = start_writers(shared, directory)
    on_a, on_b = writers
    wait_for_more(writers, 3)

    cluster.network.cut("node-b")
    try:
        time.sleep(0.5)  # what was in flight at the cut is waiting now
        stalled, a_before = len(on_b.said), len(on_a.said)
        time.sleep(CUT_SECONDS - 0.5)
        assert len(on_b.said) == stalled, "node B acknowledged writes while cut off"
        assert len(on_a.said) > a_before + 3, "node A stalled while node B was cut off"
    finally:
        cluster.network.restore("node-b")
    wait_for_more([on_b], stalled + 3)

    # Node B's lock session outlived the cut: its lock still keeps node A out.
    probe = shared.run(shared.a, "lock", f"{shared.a.inside(locked)}=write:0:0")
    probe.finish()
    assert probe.said == ["busy"]
    both_hold(shared, directory, stop_writers(writers))
