"""volctl against a real storage server: output, exit codes, configuration."""

from pathlib import Path

import pytest

from proto.netvol.v1 import admin_pb2 as pb
from tests.harness.processes import free_port
from tests.harness.server import StorageServer
from tests.harness.volume import Volume


def test_lifecycle_through_volctl(server: StorageServer) -> None:
    created = server.volctl("-o", "json", "create", "data", "--size", "5G", "-p", "tier=fast")
    assert created.code == 0, created.err
    assert created.json()["size_bytes"] == 5 * 10**9
    assert created.json()["parameters"] == {"tier": "fast"}

    again = server.volctl("create", "data", "--size", "5G", "-p", "tier=fast")
    assert again.code == 0, again.err
    assert "data" in again.out

    conflict = server.volctl("create", "data", "--size", "6G", "-p", "tier=fast")
    assert conflict.code == 4
    assert conflict.err.startswith("volctl: ") and "exists" in conflict.err
    assert "Traceback" not in conflict.err

    listing = server.volctl("ls")
    assert listing.code == 0
    header, row = listing.out.splitlines()
    assert header.split()[:3] == ["NAME", "SIZE", "USED"]
    assert row.split()[:3] == ["data", "4.7Gi", "0"]

    info = server.volctl("-o", "json", "info", "data")
    assert info.code == 0 and info.json()["name"] == "data"

    resized = server.volctl("-o", "json", "resize", "data", "--size", "10Gi")
    assert resized.code == 0 and resized.json()["size_bytes"] == 10 * 2**30

    shrink = server.volctl("resize", "data", "--size", "1G")
    assert shrink.code == 2 and "shrink" in shrink.err

    df = server.volctl("-o", "json", "df")
    assert df.code == 0
    assert df.json()["volume_count"] == 1
    assert df.json()["provisioned_bytes"] == 10 * 2**30
    assert "AVAILABLE" in server.volctl("df").out

    assert server.volctl("rm", "data").code == 0
    assert server.volctl("rm", "data").code == 0
    gone = server.volctl("info", "data")
    assert gone.code == 3
    assert gone.err.strip() == "volctl: volume 'data' does not exist"
    assert server.volctl("-o", "json", "ls").json() == []


def test_snapshots_and_copies_through_volctl(server: StorageServer) -> None:
    vol = Volume(server, "data", size=10**9)
    vol.create("f", b"hello")
    taken = server.volctl("-o", "json", "snapshot", "create", "daily", "--from", "data")
    assert taken.code == 0, taken.err
    snapshot = taken.json()
    assert (snapshot["name"], snapshot["source_volume_id"]) == ("daily", vol.id)
    assert (snapshot["size_bytes"], snapshot["used_bytes"], snapshot["ready_to_use"]) == (
        10**9,
        5,
        True,
    )
    again = server.volctl("snapshot", "create", "daily", "--from", "data")
    assert again.code == 0 and f"data ({vol.id})" in again.out
    assert server.volctl("create", "other", "--size", "1G").code == 0
    conflict = server.volctl("snapshot", "create", "daily", "--from", "other")
    assert conflict.code == 4 and "of another volume" in conflict.err

    header, row = server.volctl("snapshot", "ls").out.splitlines()
    assert header.split() == ["NAME", "VOLUME", "SIZE", "USED", "CREATED", "ID"]
    assert row.split()[:4] == ["daily", "data", "953.7Mi", "5"]
    assert server.volctl("-o", "json", "snapshot", "ls", "--volume", "other").json() == []
    assert server.volctl("snapshot", "ls", "--volume", "nope").code == 3

    restored = server.volctl(
        "-o", "json", "create", "restored", "--size", "1G", "--from-snapshot", "daily"
    )
    assert restored.code == 0, restored.err
    assert restored.json()["source"] == {"snapshot_id": snapshot["id"]}
    assert restored.json()["used_bytes"] == 5
    clone = server.volctl("create", "clone", "--size", "1G", "--from-volume", "data")
    assert clone.code == 0, clone.err
    assert "copied from:" in clone.out and f"volume {vol.id}" in clone.out
    for args, code in (
        (["--size", "4", "--from-snapshot", "daily"], 2),
        (["--size", "1G", "--from-snapshot", "nope"], 3),
        (["--size", "1G", "--from-volume", "nope"], 3),
        (["--size", "1G", "--from-volume", "data", "--from-snapshot", "daily"], 2),
    ):
        result = server.volctl("create", "copy", *args)
        assert result.code == code, result
        assert "Traceback" not in result.err

    assert server.volctl("rm", "data").code == 0
    assert f"{vol.id} (deleted)" in server.volctl("snapshot", "ls").out
    assert server.volctl("snapshot", "rm", "daily").code == 0
    assert server.volctl("snapshot", "rm", "daily").code == 0
    assert server.volctl("-o", "json", "snapshot", "ls").json() == []
    names = [v["name"] for v in server.volctl("-o", "json", "ls").json()]
    assert names == ["clone", "other", "restored"]


def test_ls_walks_every_page(server: StorageServer) -> None:
    admin = server.admin()
    for i in range(250):
        admin.CreateVolume(pb.CreateVolumeRequest(name=f"v{i:03d}", size_bytes=2**30))
    listing = server.volctl("-o", "json", "ls")
    assert listing.code == 0
    assert [v["name"] for v in listing.json()] == [f"v{i:03d}" for i in range(250)]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["create", "x", "--size", "5GB"], 2, "invalid size '5GB'"),
        (["create", "x", "--size=-1G"], 2, "invalid size '-1G'"),
        (["create", "x", "--size", "0"], 2, "volume size must be positive"),
        (["create", "x", "--size", "0.5"], 2, "not a whole number of bytes"),
        (["create", "x", "--size", "2Ei"], 2, "exceeds the server's maximum"),
        (["create", "../x", "--size", "1G"], 2, "invalid volume name '../x'"),
        (["create", "a/b", "--size", "1G"], 2, "invalid volume name 'a/b'"),
        (["create", "x" * 129, "--size", "1G"], 2, "longer than 128 bytes"),
        (["create", "x"], 2, "--size"),
        (["info", "nope"], 3, "volume 'nope' does not exist"),
        (["resize", "nope", "--size", "1G"], 3, "volume 'nope' does not exist"),
        (["create", "x", "-p", "novalue"], 2, "expected KEY=VALUE"),
    ],
)
def test_bad_input_gets_one_clear_line(
    server: StorageServer, args: list[str], code: int, message: str
) -> None:
    result = server.volctl(*args)
    assert result.code == code, result
    assert message in result.err
    assert "Traceback" not in result.err
    assert server.volctl("-o", "json", "ls").json() == []


def test_missing_and_wrong_token(server: StorageServer, tmp_path: Path) -> None:
    env = server.env()
    env["NETVOL_TOKEN"] = "wrong"
    wrong = server.volctl("create", "x", "--size", "1G", env=env)
    assert wrong.code == 5
    assert wrong.err.strip() == "volctl: missing or wrong access token"

    env = server.env()
    env["NETVOL_TOKEN_FILE"] = str(tmp_path / "absent")
    missing = server.volctl("ls", env=env)
    assert missing.code == 2
    assert "does not exist" in missing.err
    assert server.volctl("-o", "json", "ls").json() == []


def test_unreachable_server(server: StorageServer) -> None:
    env = server.env()
    env["NETVOL_SERVER"] = f"127.0.0.1:{free_port()}"
    env["NETVOL_TIMEOUT"] = "3"
    result = server.volctl("ls", env=env)
    assert result.code == 6
    assert result.err.startswith("volctl: cannot reach the storage server at 127.0.0.1:")
    assert len(result.err.strip().splitlines()) == 1


def test_settings_from_config_file_and_flags(server: StorageServer, tmp_path: Path) -> None:
    config = tmp_path / "netvol.toml"
    config.write_text(
        f'[client]\nserver = "{server.address}"\ntoken_file = "{server.token_file}"\n'
    )
    env = {k: v for k, v in server.env().items() if not k.startswith("NETVOL_")}
    env["NETVOL_CONFIG"] = str(config)
    assert server.volctl("create", "fromfile", "--size", "1G", env=env).code == 0

    # A flag beats the file: pointing --server elsewhere fails to connect.
    elsewhere = f"127.0.0.1:{free_port()}"
    env["NETVOL_TIMEOUT"] = "3"
    assert server.volctl("--server", elsewhere, "ls", env=env).code == 6

    config.write_text('[client]\nbogus = "x"\n')
    bad = server.volctl("ls", env=env)
    assert bad.code == 2 and "unknown setting(s) in [client]: bogus" in bad.err
