"""The storage server's settings: one typed object fed by flags, env and file."""

import os
from dataclasses import dataclass, field
from pathlib import Path

from storage_server.config import Size


def default_data_dir() -> Path:
    """/var/lib/netvol for root, else the user's XDG data directory."""
    if os.geteuid() == 0:
        return Path("/var/lib/netvol")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "netvol"


DEFAULT_LISTEN = "127.0.0.1:7450"
DEFAULT_MAX_VOLUME_SIZE = Size(2**50)
DEFAULT_INLINE_MAX = Size(64 * 1024)


@dataclass(frozen=True)
class ServerSettings:
    listen: str = DEFAULT_LISTEN
    data_dir: Path = field(default_factory=default_data_dir)
    # Any SQLAlchemy URL; empty means a SQLite file in data_dir.
    database_url: str = ""
    # Where blobs are kept; empty means data_dir/blobs.
    blob_dir: Path | None = None
    # The bearer token; when empty it is read from (or generated into) token_file.
    token: str = field(default="", repr=False)
    token_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_volume_size: Size = DEFAULT_MAX_VOLUME_SIZE
    # Written extents of at most this many bytes are kept in the metadata row
    # instead of a blob: a small file then costs one commit, not three fsyncs.
    # 0 puts all data in blobs.
    inline_max: Size = DEFAULT_INLINE_MAX
    # Unreferenced blobs younger than this are kept: they may belong to a Write
    # stream that has not committed yet.
    blob_grace_seconds: float = 600.0
    collect_interval_seconds: float = 60.0
    # How long a request id is remembered, so a retried call is applied once.
    request_ttl_seconds: float = 3600.0
    # A mount that does not renew its lock session for this long (dead, or cut
    # off) loses its advisory locks; it renews every quarter of this.
    lock_lease_seconds: float = 30.0
    # A session whose lease ran out keeps its claim to its mount's orphans (files
    # unlinked while open) this much longer, so that a mount that was only cut
    # off finds them when it is back.
    orphan_grace_seconds: float = 3600.0
    log_level: str = "INFO"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'metadata.db'}"

    @property
    def resolved_blob_dir(self) -> Path:
        return self.blob_dir or self.data_dir / "blobs"

    @property
    def resolved_token_file(self) -> Path:
        return self.token_file or self.data_dir / "token"
