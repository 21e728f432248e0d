"""Mounts outlive the plugin, and the plugin repairs mounts whose process died."""

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fuse_client import mounts
from proto.csi.v1 import csi_pb2 as csi
from tests.csi.conftest import plugin_on
from tests.csi.resources import NodePaths, Resources
from tests.harness.csi import AccessMode, CsiPlugin, mount_capability
from tests.harness.processes import wait_until
from tests.harness.server import StorageServer

RWX = mount_capability(AccessMode.MULTI_NODE_MULTI_WRITER)


@pytest.fixture
def own_plugin(sqlite_storage: StorageServer) -> Iterator[CsiPlugin]:
    """A plugin of the test's own, since the test stops and starts it."""
    with plugin_on(sqlite_storage) as plugin:
        yield plugin


@dataclass
class Published:
    """A volume staged and published by a plugin, with what tests do to it."""

    plugin: CsiPlugin
    volume_id: str
    paths: NodePaths

    @property
    def target(self) -> Path:
        return Path(self.paths.target)

    def condition(self) -> csi.VolumeCondition:
        request = csi.NodeGetVolumeStatsRequest(
            volume_id=self.volume_id, volume_path=self.paths.target
        )
        return self.plugin.node.NodeGetVolumeStats(request).volume_condition

    def mount_pid(self) -> int:
        record = mounts.load(self.paths.staging)
        assert record is not None
        return record.pid

    def kill_mount_process(self) -> int:
        pid = self.mount_pid()
        os.kill(pid, signal.SIGKILL)
        assert mounts.wait_for_exit(pid, 10)
        return pid


@contextlib.contextmanager
def publishing(plugin: CsiPlugin, paths: NodePaths) -> Iterator[Published]:
    made = Resources(plugin, paths)
    volume_id = made.create().volume_id
    made.stage(volume_id, RWX)
    made.publish(volume_id, capability=RWX)
    yield Published(plugin, volume_id, paths)
    if plugin.proc is None:
        plugin.start()
    made.undo()


@pytest.fixture
def published(own_plugin: CsiPlugin, node_paths: NodePaths) -> Iterator[Published]:
    with publishing(own_plugin, node_paths) as published:
        yield published


class Writer(threading.Thread):
    """Appends a numbered line every few milliseconds until stopped."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.lines = 0
        self.error: OSError | None = None
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            with self.path.open("a") as f:
                while not self.stopping.is_set():
                    f.write(f"line {self.lines}\n")
                    f.flush()
                    self.lines += 1
                    time.sleep(0.005)
        except OSError as exc:
            self.error = exc

    def finish(self) -> None:
        self.stopping.set()
        self.join(30)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_restarting_the_plugin_leaves_mounts_working(published: Published, sig: int) -> None:
    plugin = published.plugin
    pid = published.mount_pid()
    writer = Writer(published.target / "log")
    writer.start()
    wait_until(lambda: writer.lines > 20, 10, "the writer to start")
    plugin.stop(sig)
    written_while_down = writer.lines
    time.sleep(0.5)
    assert writer.lines > written_while_down, "writes stalled while the plugin was down"
    plugin.start()
    assert plugin.identity.Probe(csi.ProbeRequest()).ready.value
    assert not published.condition().abnormal
    time.sleep(0.2)
    writer.finish()
    assert writer.error is None
    lines = (published.target / "log").read_text().splitlines()
    assert lines == [f"line {i}" for i in range(writer.lines)]
    # The same mount process served throughout: nothing was remounted.
    assert published.mount_pid() == pid


def test_a_dead_mount_is_reported_and_repaired(published: Published) -> None:
    target = published.target
    (target / "kept").write_text("before the crash")
    dead_pid = published.kill_mount_process()
    with pytest.raises(OSError):
        (target / "kept").read_text()

    condition = published.condition()
    assert condition.abnormal
    assert f"mount process {dead_pid}" in condition.message
    assert (target / "kept").read_text() == "before the crash"
    (target / "after").write_text("written after the repair")
    assert Path(published.paths.staging, "after").read_text() == "written after the repair"
    assert not published.condition().abnormal


def test_a_mount_that_died_while_the_plugin_was_down_is_repaired_at_start(
    published: Published,
) -> None:
    kept = published.target / "kept"
    kept.write_text("still here")
    published.plugin.stop()
    published.kill_mount_process()
    published.plugin.start()

    def readable() -> bool:
        try:
            return kept.read_text() == "still here"
        except OSError:
            return False

    wait_until(readable, 60, "the plugin to repair the mount when it starts")


def test_a_busy_dead_bind_gets_a_new_bind_on_top(published: Published) -> None:
    (published.target / "kept").write_text("data")
    # A process with its working directory in the target keeps the dead bind busy.
    holder = subprocess.Popen(["sleep", "120"], cwd=published.target)
    try:
        published.kill_mount_process()
        assert published.condition().abnormal
        assert (published.target / "kept").read_text() == "data"
    finally:
        holder.kill()
        holder.wait()
    # NodeUnpublishVolume (in the fixture) then removes both layers.


def test_a_dead_mount_can_be_undone_without_repair(published: Published) -> None:
    published.kill_mount_process()
    node, paths = published.plugin.node, published.paths
    node.NodeUnpublishVolume(
        csi.NodeUnpublishVolumeRequest(volume_id=published.volume_id, target_path=paths.target)
    )
    node.NodeUnstageVolume(
        csi.NodeUnstageVolumeRequest(
            volume_id=published.volume_id, staging_target_path=paths.staging
        )
    )
    assert mounts.mounted_fstype(paths.staging) is None
    assert not published.target.exists()


def test_a_mount_waiting_for_the_server_is_reported_not_replaced(
    own_server: StorageServer, node_paths: NodePaths
) -> None:
    with plugin_on(own_server) as plugin, publishing(plugin, node_paths) as published:
        pid = published.mount_pid()
        own_server.stop()
        started = time.monotonic()
        condition = published.condition()
        assert time.monotonic() - started < 30, "a hung mount held up the plugin"
        assert condition.abnormal and "does not answer" in condition.message
        own_server.start()
        wait_until(lambda: not published.condition().abnormal, 60, "the mount to answer again")
        assert published.mount_pid() == pid
