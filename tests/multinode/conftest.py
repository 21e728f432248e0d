"""Three machines on this one (tests.harness.netns): `storage` runs the storage
server and the CSI controller, node-a and node-b run a CSI node plugin each.
Tests publish volumes on both nodes through CSI and use them from both: files
directly through each node's mount namespace, and programs on the nodes
(tests.multinode.workers) for what must run there (locks, writers)."""

import contextlib
import hashlib
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.harness.netns import Cluster, Published, running_cluster
from tests.harness.processes import command

# The server's --lock-lease-seconds here: longer than the cut in
# test_partition plus TCP's retransmission backoff after it.
LEASE = 10.0
# volctl mount's --attr-ttl default, with which the node plugin mounts: the
# attribute-cache bound within which one node sees another's changes.
ATTR_TTL = 1.0
WORKER_SECONDS = 60.0
WORKERS = Path(__file__).with_name("workers.py")


class Worker:
    """A tests.multinode.workers program on a node, with the lines it printed and
    when each came."""

    def __init__(self, side: Published, *args: str) -> None:
        argv = [command("python"), str(WORKERS), *args]
        self.proc = side.node.host.spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.strip()))

    @property
    def said(self) -> list[str]:
        return [line for _, line in self.lines]

    def wait_for(self, line: str, timeout: float = WORKER_SECONDS) -> float:
        """When the worker said `line`; waits for it up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for when, said in list(self.lines):
                if said == line:
                    return when
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.01)
        raise AssertionError(f"the worker did not say {line!r}; it said {self.said}")

    def finish(self, sig: int | None = None) -> int:
        """Close its stdin (which ends a lock holder), signal it if asked; its exit code."""
        if sig is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        code = self.proc.wait(WORKER_SECONDS)
        self._reader.join(WORKER_SECONDS)
        return code


def acknowledged_files(*writers: Worker) -> dict[str, str]:
    """Name and SHA-256 of every file that write-files workers fsynced and closed."""
    return {name: digest for writer in writers for name, digest in map(str.split, writer.said)}


def checksums(directory: Path, names: Iterable[str]) -> dict[str, str]:
    return {name: hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in names}


def both_hold(pair: "Pair", directory: str, acknowledged: dict[str, str]) -> None:
    """Both nodes read every acknowledged file bit-exact. Each node wrote some of
    them: a node sees the other's newest names once its cached entries and
    listings have expired, within the attribute-cache bound."""
    time.sleep(ATTR_TTL + 0.5)
    for side in (pair.a, pair.b):
        assert checksums(side.path / directory, acknowledged) == acknowledged


@dataclass
class Pair:
    """One volume published on both nodes, and the workers run on it."""

    a: Published
    b: Published
    workers: list[Worker] = field(default_factory=list)

    def run(self, side: Published, *args: str) -> Worker:
        worker = Worker(side, *args)
        self.workers.append(worker)
        return worker

    def end_workers(self) -> None:
        """Kill what is still running: its open files would keep the mounts busy."""
        while self.workers:
            self.workers.pop().finish(signal.SIGKILL)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    # Failing, not skipping: these outcomes must run in CI.
    assert os.geteuid() == 0, "network and mount namespaces need root"
    with running_cluster(["node-a", "node-b"], "--lock-lease-seconds", str(LEASE)) as made:
        yield made


@contextlib.contextmanager
def pair_on(cluster: Cluster, volume_id: str) -> Iterator[Pair]:
    """The volume published on both nodes; unpublished once its workers are ended."""
    node_a, node_b = cluster.nodes["node-a"], cluster.nodes["node-b"]
    with node_a.published(volume_id) as a, node_b.published(volume_id) as b:
        pair = Pair(a, b)
        try:
            yield pair
        finally:
            pair.end_workers()


@pytest.fixture
def pair(cluster: Cluster) -> Iterator[Pair]:
    """A fresh volume on both nodes, for a test that may break its mounts."""
    with cluster.volume() as volume_id, pair_on(cluster, volume_id) as made:
        yield made


@pytest.fixture(scope="session")
def session_pair(cluster: Cluster) -> Iterator[Pair]:
    with cluster.volume() as volume_id, pair_on(cluster, volume_id) as made:
        yield made


@pytest.fixture
def shared(session_pair: Pair) -> Iterator[Pair]:
    """A volume on both nodes that the tests share, each in a directory of its own
    (new_dir); the test's workers end after it."""
    yield session_pair
    session_pair.end_workers()


def seen_on_b(pair: Pair, name: str) -> None:
    """Wait until node B sees what node A made at the root of the volume."""
    deadline = time.monotonic() + ATTR_TTL + 2
    while not (pair.b.path / name).exists():
        assert time.monotonic() < deadline, f"{name} never showed on node B"
        time.sleep(0.02)


def new_dir(pair: Pair) -> str:
    """A new directory at the root of the volume, made on node A and seen on B."""
    name = f"dir-{uuid.uuid4().hex[:10]}"
    (pair.a.path / name).mkdir()
    seen_on_b(pair, name)
    return name


def start_writers(pair: Pair, directory: str) -> list[Worker]:
    """A write-files worker on each node, into the directory: files a-N and b-N."""
    return [
        pair.run(side, "write-files", side.inside(directory), prefix)
        for side, prefix in ((pair.a, "a"), (pair.b, "b"))
    ]


def wait_for_more(writers: list[Worker], than: int, seconds: float = WORKER_SECONDS) -> None:
    """Until every writer has acknowledged more than `than` files."""
    deadline = time.monotonic() + seconds
    while any(len(writer.said) <= than for writer in writers):
        assert time.monotonic() < deadline, [len(writer.said) for writer in writers]
        time.sleep(0.05)


def stop_writers(writers: list[Worker]) -> dict[str, str]:
    """Stop the writers (each must exit cleanly); the files they acknowledged."""
    codes = [writer.finish(signal.SIGTERM) for writer in writers]
    assert codes == [0] * len(writers), "a writer saw an error"
    return acknowledged_files(*writers)
