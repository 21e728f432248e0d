"""Machines on one machine: hosts as network namespaces joined by a switch, each
with a mount namespace of its own, and netvol deployed across them.

Each host is a network namespace whose eth0 is a veth into a bridge inside a
"switch" namespace (10.231.0.0/24, never routed anywhere else), plus a mount
namespace held by an anchor process: `ip netns exec` gives the anchor a new
mount namespace in which / is a slave of this machine's, so this machine's
mounts show inside but the host's FUSE mounts and binds never leak out. The
anchor also binds a directory of its own over /run/netvol, so each host keeps
its own record of mount processes, as separate machines would. Everything run
on a host enters the anchor's namespaces with nsenter (and starts in the
host's /: nsenter --wd would open its directory on this machine instead); the
test reaches the host's files through /proc/ANCHOR/root.

Teardown stops the nodes before the storage host, each by killing every
process whose mount namespace is the host's (found through /proc/*/ns/mnt):
that takes the namespace and every mount in it along, with no unmount to wait
for a server that may be gone. Deleting the network namespaces takes the veths
along.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from proto.csi.v1 import csi_pb2 as csi
from tests.harness.csi import AccessMode, CsiPlugin, mount_capability, sweep_mounts
from tests.harness.processes import command, wait_until
from tests.harness.server import StorageServer

SUBNET = "10.231.0"
SERVER_PORT = 7450
STATE_DIR = "/run/netvol"
RWX = mount_capability(AccessMode.MULTI_NODE_MULTI_WRITER)
COMMAND_SECONDS = 30.0
GiB = 2**30


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=COMMAND_SECONDS)


def _mount_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None  # gone, or a zombie


def _processes_in(namespace: str) -> list[int]:
    """The live processes whose mount namespace is `namespace`."""
    pids = (int(p) for p in os.listdir("/proc") if p.isdigit())
    return [pid for pid in pids if _mount_namespace(pid) == namespace]


class Host:
    """One machine: a network namespace, and a mount namespace held by an anchor."""

    def __init__(self, name: str, netns: str, address: str, root: Path) -> None:
        self.name = name
        self.netns = netns
        self.address = address
        self.root = root
        self.anchor: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "run").mkdir(exist_ok=True)
        Path(STATE_DIR).mkdir(parents=True, exist_ok=True)
        hold = f"mount --bind {self.root / 'run'} {STATE_DIR} && exec sleep infinity"
        self.anchor = subprocess.Popen(["ip", "netns", "exec", self.netns, "sh", "-c", hold])
        wait_until(self._anchored, COMMAND_SECONDS, f"the namespaces of {self.name}")

    def _anchored(self) -> bool:
        if self.anchor is None or self.anchor.poll() is not None:
            raise RuntimeError(f"the anchor of {self.name} ended")
        with open(f"/proc/{self.anchor.pid}/mountinfo") as f:
            return any(line.split()[4] == STATE_DIR for line in f)

    @property
    def pid(self) -> int:
        assert self.anchor is not None, f"{self.name} is not started"
        return self.anchor.pid

    def prefix(self) -> list[str]:
        """The command prefix that runs a program on this host."""
        return ["nsenter", f"--target={self.pid}", "--mount", "--net", "--"]

    def spawn(
        self, argv: Sequence[str], stdin: int | None = None, stdout: int | None = None
    ) -> "subprocess.Popen[str]":
        """A process on this host, talking text."""
        return subprocess.Popen([*self.prefix(), *argv], stdin=stdin, stdout=stdout, text=True)

    def run(self, argv: Sequence[str], timeout: float = COMMAND_SECONDS) -> str:
        """Run a command on this host; its output, or CalledProcessError."""
        result = subprocess.run(
            [*self.prefix(), *argv], capture_output=True, text=True, timeout=timeout, check=True
        )
        return result.stdout

    def path(self, inside: str | Path) -> Path:
        """Where a path of this host is seen from this machine."""
        return Path(f"/proc/{self.pid}/root") / Path(inside).relative_to("/")

    def stop(self) -> None:
        """Kill every process of the host: its mount namespace, and every mount in it, go too."""
        if self.anchor is None:
            return
        namespace = _mount_namespace(self.pid)
        if namespace is not None:
            for pid in _processes_in(namespace):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not _processes_in(namespace), COMMAND_SECONDS, f"{self.name} empty")
        self.anchor.wait(COMMAND_SECONDS)
        self.anchor = None


class Network:
    """Hosts joined by a bridge in a switch namespace, named uniquely per run."""

    def __init__(self, root: Path, names: Sequence[str]) -> None:
        tag = "nv" + uuid.uuid4().hex[:6]
        self.switch = f"{tag}-switch"
        self.hosts = {
            name: Host(name, f"{tag}-{name}", f"{SUBNET}.{index}", root / name)
            for index, name in enumerate(names, start=1)
        }
        self._made: list[str] = []

    def _add_namespace(self, netns: str) -> None:
        _ip("netns", "add", netns)
        self._made.append(netns)
        _ip("-n", netns, "link", "set", "lo", "up")

    def start(self) -> None:
        self._add_namespace(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        for host in self.hosts.values():
            self._add_namespace(host.netns)
            # Made inside the namespaces: neither end ever exists on this machine.
            port = self._port(host.name)
            peer = ("peer", "name", "eth0", "netns", host.netns)
            _ip("-n", self.switch, "link", "add", port, "type", "veth", *peer)
            _ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
            _ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
            _ip("-n", host.netns, "link", "set", "eth0", "up")
            host.start()

    @staticmethod
    def _port(name: str) -> str:
        return f"p-{name}"[:15]

    def cut(self, name: str) -> None:
        """Unplug the host's cable: its packets go nowhere until restore()."""
        _ip("-n", self.switch, "link", "set", self._port(name), "down")

    def restore(self, name: str) -> None:
        _ip("-n", self.switch, "link", "set", self._port(name), "up")

    def stop(self) -> None:
        try:
            for host in reversed(self.hosts.values()):
                host.stop()
        finally:
            for netns in reversed(self._made):
                subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
            self._made.clear()


class NetworkedServer(StorageServer):
    """The storage server run on a host, listening on the host's address only."""

    def __init__(self, host: Host, data_dir: Path, *args: str) -> None:
        super().__init__(
            data_dir, extra_args=args, program=(*host.prefix(), command("netvol-server"))
        )
        self.port = SERVER_PORT
        self.address = f"{host.address}:{SERVER_PORT}"
        self._starts_logged = 0

    def _starts(self) -> int:
        if not self.log_path.exists():
            return 0
        return self.log_path.read_text(errors="replace").count("storage server listening")

    def start(self) -> None:
        self._starts_logged = self._starts()
        super().start()

    def _serving(self) -> bool:
        # This machine has no route to the host: the server's log says when it serves.
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"storage server exited early:\n{self.log_path.read_text()}")
        return self._starts() > self._starts_logged


@dataclass(frozen=True)
class Published:
    """A volume staged and published on a node, as kubelet would for a pod."""

    node: "Node"
    volume_id: str
    staging: str
    target: str

    @property
    def path(self) -> Path:
        """The pod's view of the volume, as seen from this machine."""
        return self.node.host.path(self.target)

    def inside(self, name: str) -> str:
        """A file of the volume as programs on the node name it."""
        return f"{self.target}/{name}"

    def mount_pid(self) -> int:
        """The volume's mount process on the node, from the node's own records."""
        find = f"from fuse_client import mounts; print(mounts.load({self.staging!r}).pid)"
        return int(self.node.host.run([command("python"), "-c", find]))


class Node:
    """A node: a host running the CSI node plugin, with kubelet's directories."""

    def __init__(self, host: Host, server: StorageServer) -> None:
        self.host = host
        self.kubelet = host.root / "kubelet"
        self.plugin = CsiPlugin(
            server, host.root / "csi", mode="node", node_id=host.name, prefix=host.prefix()
        )

    @contextlib.contextmanager
    def published(self, volume_id: str) -> Iterator[Published]:
        """The volume staged and published here, unpublished and unstaged afterwards."""
        staging = self.kubelet / volume_id / "staging"
        target = self.kubelet / volume_id / "pod" / "mount"
        staging.mkdir(parents=True, exist_ok=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        published = Published(self, volume_id, str(staging), str(target))
        try:
            self.publish(published)
            yield published
        finally:
            self.unpublish(published)

    def publish(self, published: Published) -> None:
        self.plugin.node.NodeStageVolume(
            csi.NodeStageVolumeRequest(
                volume_id=published.volume_id,
                staging_target_path=published.staging,
                volume_capability=RWX,
            )
        )
        self.plugin.node.NodePublishVolume(
            csi.NodePublishVolumeRequest(
                volume_id=published.volume_id,
                staging_target_path=published.staging,
                target_path=published.target,
                volume_capability=RWX,
            )
        )

    def unpublish(self, published: Published) -> None:
        node = self.plugin.node
        node.NodeUnpublishVolume(
            csi.NodeUnpublishVolumeRequest(
                volume_id=published.volume_id, target_path=published.target
            )
        )
        node.NodeUnstageVolume(
            csi.NodeUnstageVolumeRequest(
                volume_id=published.volume_id, staging_target_path=published.staging
            )
        )


class Cluster:
    """netvol on a started network: the storage server and the CSI controller on
    the host `storage`, and a node plugin on every other host."""

    def __init__(self, network: Network, *server_args: str) -> None:
        self.network = network
        self.storage = network.hosts["storage"]
        self.server = NetworkedServer(self.storage, self.storage.root / "data", *server_args)
        self.controller = CsiPlugin(
            self.server, self.storage.root / "csi", mode="controller", prefix=self.storage.prefix()
        )
        self.nodes = {
            name: Node(host, self.server)
            for name, host in network.hosts.items()
            if host is not self.storage
        }

    def start(self) -> None:
        self.server.start()
        self.controller.start()
        for node in self.nodes.values():
            node.plugin.start()

    def stop(self) -> None:
        """Stop the plugins and the server; the network's teardown ends everything else."""
        try:
            for plugin in [self.controller, *(node.plugin for node in self.nodes.values())]:
                plugin.stop()
        finally:
            self.server.stop()

    @contextlib.contextmanager
    def volume(self, size: int = GiB) -> Iterator[str]:
        """A new volume's id; the volume is deleted afterwards."""
        controller = self.controller.controller
        reply = controller.CreateVolume(
            csi.CreateVolumeRequest(
                name=f"vol-{uuid.uuid4().hex[:10]}",
                capacity_range=csi.CapacityRange(required_bytes=size),
                volume_capabilities=[RWX],
            )
        )
        try:
            yield reply.volume.volume_id
        finally:
            controller.DeleteVolume(csi.DeleteVolumeRequest(volume_id=reply.volume.volume_id))


@contextlib.contextmanager
def running_cluster(nodes: Sequence[str], *server_args: str) -> Iterator[Cluster]:
    """A started cluster in a scratch directory; everything is gone afterwards."""
    root = Path(tempfile.mkdtemp(prefix="netvol-net-"))
    root.chmod(0o755)
    network = Network(root, ["storage", *nodes])
    try:
        network.start()
        cluster = Cluster(network, *server_args)
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()
    finally:
        try:
            network.stop()
        finally:
            sweep_mounts(root)  # nothing should have leaked onto this machine
            shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    """scripts/netns-demo.sh: a volume published on two nodes, until ctrl-c or SIGTERM."""
    # Both unwind the stack, and so tear down, as ctrl-c does.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with (
        running_cluster(["node-a", "node-b"]) as cluster,
        cluster.volume() as volume_id,
        contextlib.ExitStack() as published,
    ):
        print(f"storage: server at {cluster.server.address}, log {cluster.server.log_path}")
        for node in cluster.nodes.values():
            target = published.enter_context(node.published(volume_id)).target
            print(f"{node.host.name} ({node.host.address}): the volume is at {target}")
            print(f"    a shell there: {' '.join(node.host.prefix())} bash")
        print("ctrl-c tears it all down", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            print("tearing down")


if __name__ == "__main__":
    main()
