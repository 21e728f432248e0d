"""NetvolFS in the test's own process, without FUSE, against a real server."""

from typing import Any

import grpc

from fuse_client.filesystem import NetvolFS
from fuse_client.locks import LockRemote, LockSession
from fuse_client.remote import Remote


def netvol_fs(
    channel: grpc.Channel, remote: Remote, root: int, attr_ttl: float, **options: Any
) -> NetvolFS:
    """A NetvolFS over `remote`, with a lock session of its own on `channel`."""
    session = LockSession(LockRemote(channel, remote.volume_id, io_timeout=10), client="test")
    return NetvolFS(remote, root, attr_ttl, session=session, **options)
