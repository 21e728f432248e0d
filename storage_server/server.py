"""Assembles and runs the storage server: database, services, health, signals."""

import logging
import signal
import threading
from concurrent import futures
from dataclasses import dataclass
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from proto.netvol.v1 import admin_pb2, admin_pb2_grpc, filesystem_pb2, filesystem_pb2_grpc
from storage_server import sessions
from storage_server.admin_service import VolumeAdminService
from storage_server.auth import load_or_create_token
from storage_server.config import ConfigError
from storage_server.db import Database, make_engine, migrate
from storage_server.filesystem import collector, requests
from storage_server.filesystem.blobs import LocalBlobStore
from storage_server.filesystem.lock_service import LockService
from storage_server.filesystem.service import FilesystemService
from storage_server.periodic import Periodic
from storage_server.rpc import Boundary
from storage_server.settings import ServerSettings
from storage_server.snapshots import SnapshotStore
from storage_server.volumes import VolumeStore

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
SHUTDOWN_GRACE_SECONDS = 10.0


@dataclass
class Running:
    server: grpc.Server
    health: health.HealthServicer
    db: Database
    port: int
    jobs: list[Periodic]

    def stop(self) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(SHUTDOWN_GRACE_SECONDS).wait()
        for job in self.jobs:
            job.stop()
        self.db.close()


def _bind(server: grpc.Server, settings: ServerSettings) -> int:
    if settings.tls_cert or settings.tls_key:
        if not (settings.tls_cert and settings.tls_key):
            raise ConfigError("TLS needs both tls_cert and tls_key")
        try:
            credentials = grpc.ssl_server_credentials(
                [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())]
            )
        except OSError as exc:
            raise ConfigError(f"cannot read TLS key or certificate: {exc}") from exc
        port = server.add_secure_port(settings.listen, credentials)
    else:
        port = server.add_insecure_port(settings.listen)
    if port == 0:
        raise ConfigError(f"cannot listen on {settings.listen}")
    return port


def start(settings: ServerSettings) -> Running:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.resolved_blob_dir.mkdir(parents=True, exist_ok=True)
    token = load_or_create_token(settings)
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    db = Database(engine)
    # No mount could renew its lock session while no server ran.
    sessions.grace(db, settings.lock_lease_seconds)
    store = VolumeStore(db, settings.resolved_blob_dir, settings.max_volume_size)
    snapshots = SnapshotStore(db)
    blobs = LocalBlobStore(settings.resolved_blob_dir)
    jobs = [
        Periodic(
            "blob-collector",
            settings.collect_interval_seconds,
            lambda: collector.collect(db, blobs, settings.blob_grace_seconds),
        ),
        Periodic(
            "request-expiry",
            settings.collect_interval_seconds,
            lambda: requests.expire(db, settings.request_ttl_seconds),
        ),
        Periodic(
            "lock-session-expiry",
            settings.collect_interval_seconds,
            lambda: sessions.expire(db, settings.orphan_grace_seconds),
        ),
    ]

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="rpc"),
        interceptors=[Boundary(token)],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    admin_pb2_grpc.add_VolumeAdminServicer_to_server(VolumeAdminService(store, snapshots), server)
    filesystem_pb2_grpc.add_FilesystemServicer_to_server(
        FilesystemService(db, store, blobs, settings), server
    )
    filesystem_pb2_grpc.add_LocksServicer_to_server(
        LockService(db, settings.lock_lease_seconds, settings.orphan_grace_seconds), server
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = _bind(server, settings)
    server.start()
    for job in jobs:
        job.start()
    services = (
        admin_pb2.DESCRIPTOR.services_by_name["VolumeAdmin"],
        filesystem_pb2.DESCRIPTOR.services_by_name["Filesystem"],
        filesystem_pb2.DESCRIPTOR.services_by_name["Locks"],
    )
    for service in ("", *(s.full_name for s in services)):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "storage server listening",
        extra={"fields": {"listen": settings.listen, "port": port, "tls": bool(settings.tls_cert)}},
    )
    return Running(server, health_servicer, db, port, jobs)


def serve(settings: ServerSettings) -> None:
    """Run until SIGTERM or SIGINT, then drain calls in flight and exit."""
    stopping = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping on %s", signal.Signals(signum).name)
        stopping.set()

    # Before serving: a SIGTERM right after the first answer must still drain.
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    running = start(settings)
    stopping.wait()
    running.stop()
    log.info("storage server stopped")
