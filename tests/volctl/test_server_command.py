"""`volctl server`: the storage server started through the CLI, on PostgreSQL and TLS."""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from proto.netvol.v1 import admin_pb2 as pb
from proto.netvol.v1 import admin_pb2_grpc
from tests.harness.postgres import fresh_database
from tests.harness.server import StorageServer


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    with fresh_database(postgres_admin_url) as url:
        yield url


def test_volctl_server_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    server = StorageServer(tmp_path / "srv", postgres_url, program=("volctl", "server"))
    try:
        server.start()
        assert server.volctl("create", "data", "--size", "5G").code == 0
        assert server.stop() == 0
        assert not (tmp_path / "srv" / "metadata.db").exists()
        server.start()
        assert server.volctl("-o", "json", "info", "data").json()["size_bytes"] == 5 * 10**9
    finally:
        server.stop()


def test_bad_database_url_is_one_clear_line(tmp_path: Path) -> None:
    server = StorageServer(tmp_path / "srv", "nosuchdb://x", program=("volctl", "server"))
    with pytest.raises(RuntimeError, match="exited early"):
        server.start()
    log = server.log_path.read_text()
    assert "volctl" in log or "netvol-server" in log
    assert "Traceback" not in log


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


def test_tls_server(tmp_path: Path) -> None:
    key, cert = _self_signed(tmp_path)
    server = StorageServer(
        tmp_path / "srv", extra_args=("--tls-cert", str(cert), "--tls-key", str(key)), tls_ca=cert
    )
    try:
        server.start()
        assert server.volctl("create", "secure", "--size", "1G").code == 0
        assert server.admin().GetVolume(pb.GetVolumeRequest(volume=pb.VolumeRef(name="secure")))
        # A plaintext client cannot talk to the TLS port.
        with grpc.insecure_channel(server.address) as plain:
            stub = admin_pb2_grpc.VolumeAdminStub(plain)
            with pytest.raises(grpc.RpcError) as info:
                stub.ListVolumes(pb.ListVolumesRequest(), timeout=5)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop()
