"""Making a staged volume's mounts live again after its FUSE process ended.

A FUSE mount is a kernel mount plus the process that answers for it. The
process runs in a session of its own, so a plugin that stops or restarts
leaves it running and finds the mount again (mount table and node state). If
the process itself ends (killed, crashed, out of memory), the kernel mount
stays but every access fails with ENOTCONN, and so does every bind mount made
from it: a bind shares the dead connection, so mounting the staging path again
does not revive the pods' target paths. Repair therefore has two steps, both
driven by what the node state recorded:

1. the staging path: unmount the dead FUSE mount (fusermount3 -u; never a lazy
   unmount) and start a new mount process there, as NodeStageVolume does;
2. each recorded target path: unmount its dead bind and bind the new staging
   mount again with the same flags. While a process still holds files open in
   the dead bind, the kernel refuses that unmount (busy); the new bind is then
   stacked on top, and NodeUnpublishVolume later removes both.

What a container sees afterwards depends on its mount namespace: one that got
the target by mount propagation (HostToContainer, as kubelet offers) sees the
new bind; one holding a private copy of the dead mount sees ENOTCONN until it
restarts. Open descriptors on the dead mount stay dead; reopening the path works.

A mount that is alive but slow (waiting for the storage server, as a hard mount
does) is never replaced: its process may hold writes it has not flushed yet.
Repair runs when the plugin starts, and when NodeStageVolume,
NodePublishVolume or NodeGetVolumeStats finds a mount it needs dead (stats then
report the volume abnormal, with what was found and what was done). Repairs at
start and from stats use the plugin's own token: secrets from calls are not kept.
"""

import logging
from pathlib import Path

import grpc

from csi import mounter
from csi.errors import CsiError
from csi.mounter import Health
from csi.nodestate import Staged
from storage_server.client import ClientSettings

log = logging.getLogger(__name__)


def _unavailable(detail: str) -> CsiError:
    return CsiError(grpc.StatusCode.UNAVAILABLE, detail)


def ensure_staged(staged: Staged, client: ClientSettings, log_file: Path) -> str:
    """Make the staging mount live; say what was repaired, if anything."""
    found = mounter.probe(staged.staging_path)
    if found.health is Health.LIVE:
        return ""
    if found.health is Health.HUNG:
        raise _unavailable(found.detail)
    if found.health is Health.DEAD:
        mounter.unmount_volume(staged.staging_path)
    mounter.mount_volume(staged.name, staged.staging_path, staged.read_only, client, log_file)
    return f"{found.detail}; mounted again" if found.health is Health.DEAD else ""


def ensure_published(staged: Staged, path: str) -> str:
    """Make the bind at target `path` live; say what was repaired, if anything."""
    target = staged.targets[path]
    found = mounter.probe(path)
    if found.health is Health.LIVE:
        return ""
    if found.health is Health.HUNG:
        raise _unavailable(found.detail)
    if found.health is Health.DEAD:
        try:
            mounter.unbind(path)
        except CsiError as exc:
            log.warning("stacking a new bind on the dead one at %s: %s", path, exc.message)
    mounter.bind(staged.staging_path, path, target.read_only, target.flags)
    return f"{found.detail}; bound again" if found.health is Health.DEAD else ""


def heal(staged: Staged, client: ClientSettings, log_file: Path) -> list[str]:
    """Repair the staging mount (or raise), then every target it can; say what was done."""
    done = [ensure_staged(staged, client, log_file)]
    for path in staged.targets:
        try:
            done.append(ensure_published(staged, path))
        except (CsiError, OSError) as exc:
            done.append(f"{path}: repair failed: {exc}")
    repaired = [line for line in done if line]
    for line in repaired:
        log.warning("volume %s: %s", staged.volume_id, line)
    return repaired
