"""One mount, in the foreground: connect, open the volume, serve FUSE until unmounted."""

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from fuse_client import mounts
from fuse_client.adapter import Fuse, Operations, interrupted, killed
from fuse_client.filesystem import NetvolFS
from fuse_client.locks import FUSE_THREADS, LockRemote, Locks, LockSession
from fuse_client.remote import Remote, open_volume
from storage_server.client import ClientSettings, connect
from storage_server.memory import keep_large_buffers

log = logging.getLogger(__name__)

# Arenas of the C allocator (storage_server.memory): one per thread would each
# keep free memory of their own.
MOUNT_ARENAS = 2


@dataclass(frozen=True)
class MountOptions:
    volume: str
    mountpoint: str
    # The attribute-cache bound: how long another node's change may stay unseen.
    attr_ttl: float = 1.0
    # How long I/O waits for an unreachable server before EIO; 0 waits for ever.
    io_timeout: float = 0.0
    read_only: bool = False
    cache_bytes: int = 256 << 20
    log_file: str = ""


def serve(client: ClientSettings, options: MountOptions) -> None:
    """Mount and serve until unmounted; OSError if the volume cannot be opened."""
    keep_large_buffers(arenas=MOUNT_ARENAS)
    channel = connect(client)
    volume = open_volume(channel, options.volume, client.timeout)
    remote = Remote(
        channel, volume.volume_id, options.io_timeout, killed, durable_names=volume.durable_names
    )
    # The kernel keeps, for its own timeout, what NetvolFS answered from its
    # cache: each of the two caches gets half of the bound.
    layer_ttl = options.attr_ttl / 2
    mountpoint = str(Path(options.mountpoint).resolve())
    operations = Operations(mountpoint, layer_ttl)
    lock_remote = LockRemote(channel, volume.volume_id, options.io_timeout, killed)
    session = LockSession(lock_remote, client=f"{socket.gethostname()}:{mountpoint}")
    fs = NetvolFS(
        remote,
        volume.root_ino,
        layer_ttl,
        options.cache_bytes,
        session=session,
        invalidate_path=operations.invalidate_path,
    )
    operations.fs = fs
    fs.sweep_orphans()
    locks = Locks(lock_remote, session, ino_of=fs.ino_of, interrupted=interrupted)
    operations.locks = locks
    mounts.save(mounts.MountRecord(mountpoint, options.volume, os.getpid(), options.log_file))
    log.info("mounting volume %s at %s", options.volume, mountpoint)
    try:
        Fuse(
            operations,
            mountpoint,
            raw_fi=True,
            foreground=True,
            allow_other=True,
            default_permissions=True,
            ro=options.read_only,
            fsname=f"netvol:{options.volume}",
            subtype="netvol",
            max_threads=FUSE_THREADS,
            # libfuse 3.14 takes an unset idle limit for a thread count of
            # 4294967295, logs that as invalid and drops it; as many as may run
            # never tears a thread down.
            max_idle_threads=FUSE_THREADS,
        )
    finally:
        mounts.forget(mountpoint)
        locks.close()
        # Every file is closed by now: no orphan of this mount needs the session.
        session.close()
        channel.close()
    log.info("unmounted %s", mountpoint)
