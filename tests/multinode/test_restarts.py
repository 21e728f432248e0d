"""Restarts under two nodes: the storage server killed with -9 while both write,
a node plugin restarted, and the volume unpublished everywhere and published
again; no fsync-acknowledged byte is lost."""

import time

from proto.csi.v1 import csi_pb2 as csi
from tests.harness.netns import Cluster
from tests.multinode.conftest import (
    Pair,
    both_hold,
    new_dir,
    pair_on,
    start_writers,
    stop_writers,
    wait_for_more,
)


def test_a_server_killed_with_9_loses_no_acknowledged_write(cluster: Cluster, shared: Pair) -> None:
    directory = new_dir(shared)
    writers = start_writers(shared, directory)
    wait_for_more(writers, 3)
    cluster.server.kill9()
    time.sleep(0.5)  # calls in flight at the kill have failed over to waiting
    stalled = [len(writer.said) for writer in writers]
    time.sleep(1.5)
    assert [len(writer.said) for writer in writers] == stalled, "acknowledged without a server"
    cluster.server.start()
    wait_for_more(writers, max(stalled) + 3)
    both_hold(shared, directory, stop_writers(writers))


def test_restarting_a_node_plugin_leaves_both_nodes_working(cluster: Cluster, shared: Pair) -> None:
    plugin = cluster.nodes["node-a"].plugin
    mount_pid = shared.a.mount_pid()
    directory = new_dir(shared)
    writers = start_writers(shared, directory)
    wait_for_more(writers, 3)
    plugin.stop()
    (shared.a.path / directory / "while-down").write_text("node A's mount outlives its plugin")
    before = [len(writer.said) for writer in writers]
    wait_for_more(writers, max(before) + 3)
    plugin.start()
    stats = shared.a.node.plugin.node.NodeGetVolumeStats(
        csi.NodeGetVolumeStatsRequest(volume_id=shared.a.volume_id, volume_path=shared.a.target)
    )
    assert not stats.volume_condition.abnormal, stats.volume_condition.message
    assert shared.a.mount_pid() == mount_pid, "node A's volume was mounted again"
    both_hold(shared, directory, stop_writers(writers))
    assert (shared.b.path / directory / "while-down").read_text().startswith("node A's")


def test_data_outlives_unpublishing_everywhere(cluster: Cluster) -> None:
    with cluster.volume() as volume_id:
        with pair_on(cluster, volume_id) as pair:
            directory = new_dir(pair)
            writers = start_writers(pair, directory)
            wait_for_more(writers, 3)
            acknowledged = stop_writers(writers)
        # Unpublished and unstaged on both nodes: no mount of the volume is left.
        with pair_on(cluster, volume_id) as pair:
            both_hold(pair, directory, acknowledged)
