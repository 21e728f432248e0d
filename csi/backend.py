"""The storage server as the plugin reaches it.

A call uses the token in its CSI secrets (key "token") when the CO sends one,
and the plugin's own configured token otherwise (flags, NETVOL_TOKEN,
NETVOL_TOKEN_FILE or the config file, as for volctl).
"""

import dataclasses
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from proto.netvol.v1 import admin_pb2 as pb
from proto.netvol.v1 import admin_pb2_grpc
from storage_server.client import ClientSettings, connect

TOKEN_KEY = "token"  # noqa: S105 (the name of the secret, not a secret)
# Below the livenessprobe sidecar's own timeout, so a slow server reads "not ready".
HEALTH_SECONDS = 3.0


class Backend:
    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None

    @property
    def timeout(self) -> float:
        return self.settings.timeout

    def settings_for(self, secrets: Mapping[str, str]) -> ClientSettings:
        token = secrets.get(TOKEN_KEY, "")
        return dataclasses.replace(self.settings, token=token) if token else self.settings

    def _shared(self) -> grpc.Channel:
        # Made on first use, so that a plugin whose calls all carry secrets
        # needs no token of its own.
        with self._lock:
            if self._channel is None:
                self._channel = connect(self.settings)
            return self._channel

    @contextmanager
    def admin(self, secrets: Mapping[str, str]) -> Iterator[admin_pb2_grpc.VolumeAdminStub]:
        if not secrets.get(TOKEN_KEY):
            yield admin_pb2_grpc.VolumeAdminStub(self._shared())
            return
        channel = connect(self.settings_for(secrets))
        try:
            yield admin_pb2_grpc.VolumeAdminStub(channel)
        finally:
            channel.close()

    def volume(self, volume_id: str, secrets: Mapping[str, str]) -> pb.Volume:
        """The volume with this id; NOT_FOUND from the server when there is none."""
        request = pb.GetVolumeRequest(volume=pb.VolumeRef(id=volume_id))
        with self.admin(secrets) as admin:
            return admin.GetVolume(request, timeout=self.timeout)

    def serving(self) -> bool:
        """Whether the storage server answers its health check."""
        stub = health_pb2_grpc.HealthStub(self._shared())
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=HEALTH_SECONDS)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def close(self) -> None:
        with self._lock:
            if self._channel is not None:
                self._channel.close()
                self._channel = None
