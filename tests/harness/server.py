"""A real storage server process for tests, and volctl run against it."""

import json
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from proto.netvol.v1 import admin_pb2_grpc, filesystem_pb2_grpc
from storage_server.client import ClientSettings, connect
from tests.harness.processes import command, free_port, stop_process, wait_until


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def short_sessions(lease: float, orphan_grace: float) -> tuple[str, ...]:
    """Server flags: lock sessions lapse after `lease` seconds of silence and
    are forgotten `orphan_grace` seconds later."""
    return ("--lock-lease-seconds", str(lease), "--orphan-grace-seconds", str(orphan_grace))


class StorageServer:
    """One `netvol-server` process on a free loopback port with its own data dir."""

    def __init__(
        self,
        data_dir: Path,
        database_url: str = "",
        extra_args: tuple[str, ...] = (),
        program: tuple[str, ...] = ("netvol-server",),
        tls_ca: Path | None = None,
    ):
        self.tls_ca = tls_ca
        self.program = [command(program[0]), *program[1:]]
        self.data_dir = data_dir
        self.database_url = database_url
        self.extra_args = extra_args
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log_path = data_dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [*self.program, "--data-dir", str(self.data_dir), "--listen", self.address]
        # Every call in the log, so tests can count them; extra_args may say otherwise.
        args += ["--log-level", "debug"]
        if self.database_url:
            args += ["--database-url", self.database_url]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(args + list(self.extra_args), stdout=log, stderr=log)
        wait_until(self._serving, 30, f"storage server on {self.address}")

    def _channel(self) -> grpc.Channel:
        if self.tls_ca:
            credentials = grpc.ssl_channel_credentials(self.tls_ca.read_bytes())
            return grpc.secure_channel(self.address, credentials)
        return grpc.insecure_channel(self.address)

    def _serving(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"storage server exited early:\n{self.log_path.read_text()}")
        with self._channel() as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
            except grpc.RpcError:
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc is None:
            return None
        stop_process(self.proc, sig)
        code = self.proc.returncode
        self.proc = None
        return code

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)

    @property
    def token_file(self) -> Path:
        return self.data_dir / "token"

    def client_settings(self, token: str | None = None) -> ClientSettings:
        if token is not None:
            return ClientSettings(server=self.address, token=token, tls_ca=self.tls_ca)
        return ClientSettings(server=self.address, token_file=self.token_file, tls_ca=self.tls_ca)

    def admin(self, token: str | None = None) -> admin_pb2_grpc.VolumeAdminStub:
        return admin_pb2_grpc.VolumeAdminStub(connect(self.client_settings(token)))

    def filesystem(self, token: str | None = None) -> filesystem_pb2_grpc.FilesystemStub:
        return filesystem_pb2_grpc.FilesystemStub(connect(self.client_settings(token)))

    @property
    def resolved_database_url(self) -> str:
        """The server's metadata database, for tests that look at it directly."""
        return self.database_url or f"sqlite:///{self.data_dir / 'metadata.db'}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NETVOL_")}
        env.update(NETVOL_SERVER=self.address, NETVOL_TOKEN_FILE=str(self.token_file))
        if self.tls_ca:
            env["NETVOL_TLS_CA"] = str(self.tls_ca)
        return env

    def volctl(self, *args: str, env: dict[str, str] | None = None) -> CliResult:
        proc = subprocess.run(
            [command("volctl"), *args],
            env=env if env is not None else self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)
