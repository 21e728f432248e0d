"""Assembles and runs the plugin: the services of its mode on a unix socket.

Stopping the plugin stops only the plugin: the FUSE mount processes are
separate (a session each) and keep serving; the next start finds them again.
"""

import logging
import signal
import stat
import threading
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc

from csi.backend import Backend
from csi.boundary import Boundary
from csi.controller import Controller
from csi.driver import DRIVER_NAME, DRIVER_VERSION
from csi.identity import Identity
from csi.node import Node
from csi.nodestate import NodeState
from proto.csi.v1 import csi_pb2_grpc
from storage_server.client import ClientSettings
from storage_server.config import ConfigError
from storage_server.logs import FIELDS

log = logging.getLogger(__name__)

MODES = ("controller", "node", "all")
SHUTDOWN_GRACE_SECONDS = 10.0
WORKERS = 16


@dataclass(frozen=True)
class PluginOptions:
    endpoint: str
    mode: str
    node_id: str
    state_dir: Path


def socket_path(endpoint: str) -> Path:
    """The socket file of a unix:///path endpoint, the only kind CSI allows."""
    path = endpoint.removeprefix("unix://")
    if path == endpoint or not path.startswith("/"):
        raise ConfigError(f"endpoint {endpoint!r} must look like unix:///path/to/csi.sock")
    return Path(path)


def _listen(server: grpc.Server, endpoint: str) -> None:
    path = socket_path(endpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A socket left by a plugin that was killed would make the bind fail.
    if path.exists() and stat.S_ISSOCK(path.stat().st_mode):
        path.unlink()
    if server.add_insecure_port(f"unix://{path}") == 0:
        raise ConfigError(f"cannot listen on {endpoint}")


def serve(options: PluginOptions, client: ClientSettings) -> None:
    """Serve until SIGTERM or SIGINT, then finish the calls in flight."""
    if options.mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}")
    if options.mode != "controller" and not options.node_id:
        raise ConfigError(f"--node-id is required in {options.mode} mode")
    # Before serving: a SIGTERM right after the first answer must still drain.
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    backend = Backend(client)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="csi"),
        interceptors=[Boundary()],
    )
    # Only a plugin without a node service depends on the server to be ready.
    identity = Identity(backend, needs_server=options.mode == "controller")
    csi_pb2_grpc.add_IdentityServicer_to_server(identity, server)
    if options.mode in ("controller", "all"):
        csi_pb2_grpc.add_ControllerServicer_to_server(Controller(backend), server)
    if options.mode in ("node", "all"):
        node = Node(options.node_id, backend, NodeState(options.state_dir))
        csi_pb2_grpc.add_NodeServicer_to_server(node, server)
        threading.Thread(target=node.recover, name="recover", daemon=True).start()
    _listen(server, options.endpoint)
    server.start()
    log.info(
        "CSI plugin listening",
        extra={
            FIELDS: {
                "driver": DRIVER_NAME,
                "version": DRIVER_VERSION,
                "mode": options.mode,
                "endpoint": options.endpoint,
            }
        },
    )
    stopping.wait()
    log.info("CSI plugin stopping")
    server.stop(SHUTDOWN_GRACE_SECONDS).wait()
    backend.close()
    log.info("CSI plugin stopped")
