"""The Node service: a volume's FUSE mount at the staging path, bound into pods.

NodeStageVolume starts the volume's mount process at the staging path;
NodePublishVolume binds the staging path into each target path, read-only
when asked, with the generic mount flags the capability carries. The node
state (csi.nodestate) records both before the mount is made, so that a call
retried after a crash, and a restarted plugin, finish or repair the work
(csi.recovery explains how dead mounts are repaired).
"""

import logging
import os
from collections.abc import Mapping

from csi import mounter, recovery, validate
from csi.backend import Backend
from csi.errors import CsiError, already_exists, invalid, not_found, precondition
from csi.locks import VolumeLocks
from csi.mounter import Health
from csi.nodestate import NodeState, Staged, Target
from fuse_client import mounts
from proto.csi.v1 import csi_pb2 as csi
from proto.csi.v1 import csi_pb2_grpc

log = logging.getLogger(__name__)

RPC = csi.NodeServiceCapability.RPC
CAPABILITIES = [
    RPC.STAGE_UNSTAGE_VOLUME,
    RPC.GET_VOLUME_STATS,
    RPC.VOLUME_CONDITION,
    # Confirms that the mount sees the size the controller gave the volume.
    RPC.EXPAND_VOLUME,
    RPC.SINGLE_NODE_MULTI_WRITER,
]
SINGLE_WRITER = validate.AccessMode.SINGLE_NODE_SINGLE_WRITER


def _usage(stats: os.statvfs_result) -> list[csi.VolumeUsage]:
    fragment = stats.f_frsize
    return [
        csi.VolumeUsage(
            unit=csi.VolumeUsage.BYTES,
            total=stats.f_blocks * fragment,
            available=stats.f_bavail * fragment,
            used=(stats.f_blocks - stats.f_bfree) * fragment,
        ),
        csi.VolumeUsage(
            unit=csi.VolumeUsage.INODES,
            total=stats.f_files,
            available=stats.f_favail,
            used=stats.f_files - stats.f_ffree,
        ),
    ]


class Node(csi_pb2_grpc.NodeServicer):
    def __init__(self, node_id: str, backend: Backend, state: NodeState) -> None:
        self._node_id = node_id
        self._backend = backend
        self._state = state
        self._locks = VolumeLocks()

    def _heal(self, staged: Staged, secrets: Mapping[str, str]) -> list[str]:
        client = self._backend.settings_for(secrets)
        return recovery.heal(staged, client, self._state.log_file(staged))

    def recover(self) -> None:
        """Repair every recorded volume's mounts; run once when the plugin starts."""
        for staged in self._state.all():
            try:
                with self._locks.hold(staged.volume_id):
                    self._heal(staged, {})
            except (CsiError, OSError) as exc:
                log.error("volume %s: cannot repair its mounts: %s", staged.volume_id, exc)

    def _held_path(self, volume_id: str, path: str) -> str:
        """`path` normalised, if the volume is staged or published there. Not
        checked as an absolute path first: for an unknown volume at any path,
        csi-sanity expects NOT_FOUND."""
        staged = self._state.load(volume_id)
        normal = os.path.normpath(path)
        if staged is None or not staged.holds(normal):
            raise not_found(f"volume {volume_id!r} is not staged or published at {path!r}")
        return normal

    def NodeStageVolume(
        self, request: csi.NodeStageVolumeRequest, context: object
    ) -> csi.NodeStageVolumeResponse:
        volume_id = validate.text(request.volume_id, "volume_id")
        staging = validate.path(request.staging_target_path, "staging_target_path")
        read_only = validate.read_only(validate.capability(request.volume_capability))
        secrets = request.secrets
        with self._locks.hold(volume_id):
            staged = self._state.load(volume_id)
            fresh = staged is None
            if staged is None:
                if mounts.mounted_fstype(staging) is not None:
                    raise precondition(f"{staging} is already a mount point")
                name = self._backend.volume(volume_id, secrets).name
                staged = Staged(volume_id, name, staging, read_only)
                self._state.save(staged)
            elif staged.staging_path != staging:
                raise precondition(f"volume {volume_id} is staged at {staged.staging_path}")
            elif staged.read_only != read_only:
                how = "read-only" if staged.read_only else "read-write"
                raise already_exists(f"volume {volume_id} is staged {how}")
            try:
                self._heal(staged, secrets)
            except Exception:
                if fresh:
                    self._state.forget(volume_id)
                raise
        return csi.NodeStageVolumeResponse()

    def NodeUnstageVolume(
        self, request: csi.NodeUnstageVolumeRequest, context: object
    ) -> csi.NodeUnstageVolumeResponse:
        volume_id = validate.text(request.volume_id, "volume_id")
        staging = validate.path(request.staging_target_path, "staging_target_path")
        with self._locks.hold(volume_id):
            staged = self._state.load(volume_id)
            ours = staged if staged is not None and staged.staging_path == staging else None
            published = [p for p in ours.targets if mounts.is_netvol_mount(p)] if ours else []
            if published:
                raise precondition(f"volume {volume_id} is still published at {published}")
            if mounts.is_netvol_mount(staging):
                mounter.unmount_volume(staging)
            if ours:
                self._state.forget(volume_id)
        return csi.NodeUnstageVolumeResponse()

    def NodePublishVolume(
        self, request: csi.NodePublishVolumeRequest, context: object
    ) -> csi.NodePublishVolumeResponse:
        volume_id = validate.text(request.volume_id, "volume_id")
        target = validate.path(request.target_path, "target_path")
        capability = validate.capability(request.volume_capability)
        if not request.staging_target_path:
            # The spec's code for a plugin with STAGE_UNSTAGE_VOLUME.
            raise precondition("staging_target_path is required: stage the volume first")
        staging = validate.path(request.staging_target_path, "staging_target_path")
        if target == staging:
            raise invalid("target_path must differ from staging_target_path")
        wanted = Target(
            read_only=request.readonly or validate.read_only(capability),
            flags=tuple(sorted(set(capability.mount.mount_flags) - {"ro"})),
            mode=capability.access_mode.mode,
        )
        with self._locks.hold(volume_id):
            staged = self._state.load(volume_id)
            if staged is None or staged.staging_path != staging:
                raise precondition(f"volume {volume_id} is not staged at {staging}")
            known = staged.targets.get(target)
            if known is None:
                self._check_new_target(staged, target, wanted)
                staged.targets[target] = wanted
                self._state.save(staged)
            elif known != wanted:
                raise already_exists(f"volume {volume_id} is published at {target} otherwise")
            try:
                self._heal(staged, request.secrets)
                recovery.ensure_published(staged, target)
            except Exception:
                if known is None:
                    del staged.targets[target]
                    self._state.save(staged)
                raise
        return csi.NodePublishVolumeResponse()

    @staticmethod
    def _check_new_target(staged: Staged, target: str, wanted: Target) -> None:
        # Only SINGLE_NODE_SINGLE_WRITER is held to one target: Kubernetes
        # publishes a SINGLE_NODE_WRITER (ReadWriteOnce) volume to every pod on
        # the node that uses it.
        modes = {wanted.mode, *(t.mode for t in staged.targets.values())}
        if staged.targets and SINGLE_WRITER in modes:
            raise precondition(
                f"volume {staged.volume_id} is single-writer and already published "
                f"at {next(iter(staged.targets))}"
            )
        if mounts.mounted_fstype(target) is not None:
            raise precondition(f"{target} is already a mount point")

    def NodeUnpublishVolume(
        self, request: csi.NodeUnpublishVolumeRequest, context: object
    ) -> csi.NodeUnpublishVolumeResponse:
        volume_id = validate.text(request.volume_id, "volume_id")
        target = validate.path(request.target_path, "target_path")
        with self._locks.hold(volume_id):
            mounter.unpublish(target)
            staged = self._state.load(volume_id)
            if staged is not None and staged.targets.pop(target, None) is not None:
                self._state.save(staged)
        return csi.NodeUnpublishVolumeResponse()

    def NodeGetVolumeStats(
        self, request: csi.NodeGetVolumeStatsRequest, context: object
    ) -> csi.NodeGetVolumeStatsResponse:
        volume_id = validate.text(request.volume_id, "volume_id")
        if not request.volume_path:
            raise invalid("volume_path is required")
        path = self._held_path(volume_id, request.volume_path)
        found = mounter.probe(path)
        if found.stats is not None:
            return csi.NodeGetVolumeStatsResponse(
                usage=_usage(found.stats), volume_condition=csi.VolumeCondition()
            )
        problem = found.detail
        if found.health is not Health.HUNG:
            problem += "; " + self._repair(volume_id)
            found = mounter.probe(path)
        return csi.NodeGetVolumeStatsResponse(
            usage=_usage(found.stats) if found.stats is not None else [],
            volume_condition=csi.VolumeCondition(abnormal=True, message=problem),
        )

    def _repair(self, volume_id: str) -> str:
        """Repair after a stats call found a mount dead; say how it went."""
        try:
            with self._locks.hold(volume_id):
                staged = self._state.load(volume_id)
                if staged is None:
                    return "unstaged meanwhile"
                done = self._heal(staged, {})
        except (CsiError, OSError) as exc:
            return f"repair failed: {exc}"
        return "; ".join(done) or "mounted again"

    def NodeExpandVolume(
        self, request: csi.NodeExpandVolumeRequest, context: object
    ) -> csi.NodeExpandVolumeResponse:
        volume_id = validate.text(request.volume_id, "volume_id")
        if not request.volume_path:
            raise invalid("volume_path is required")
        validate.optional_capability(request.volume_capability)
        size = validate.capacity(request.capacity_range, 0)
        found = mounter.probe(self._held_path(volume_id, request.volume_path))
        if found.stats is None:
            raise precondition(found.detail)
        total = found.stats.f_blocks * found.stats.f_frsize
        # The mount counts whole fragments, so it may show up to one less.
        if total + found.stats.f_frsize <= size:
            raise precondition(f"the mount shows {total} bytes, less than the {size} asked for")
        return csi.NodeExpandVolumeResponse(capacity_bytes=size or total)

    def NodeGetCapabilities(
        self, request: csi.NodeGetCapabilitiesRequest, context: object
    ) -> csi.NodeGetCapabilitiesResponse:
        return csi.NodeGetCapabilitiesResponse(
            capabilities=[csi.NodeServiceCapability(rpc=RPC(type=c)) for c in CAPABILITIES]
        )

    def NodeGetInfo(
        self, request: csi.NodeGetInfoRequest, context: object
    ) -> csi.NodeGetInfoResponse:
        # 0: no limit of ours; a FUSE mount uses no attachment slot.
        return csi.NodeGetInfoResponse(node_id=self._node_id, max_volumes_per_node=0)
