"""What the image and the manifests run is what the package installs.

Each container command (and the Dockerfile's ENTRYPOINT) must be a console script
of the netvol distribution; its arguments must be ones that command accepts.
"""

import argparse
import configparser
import contextlib
import io
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import distribution
from pathlib import Path

import pytest

from storage_server import main as server_main
from tests.k8s import dockerfile, manifests
from tests.k8s.manifests import DOCKERFILE, REPO, Manifest
from volctl import main as volctl_main

NETVOL_WORKLOADS = ["netvol-server", "netvol-controller", "netvol-node"]


def console_scripts() -> set[str]:
    """The commands the package installs, as declared and as installed."""
    with (REPO / "pyproject.toml").open("rb") as f:
        declared = set(tomllib.load(f)["project"]["scripts"])
    installed = {
        ep.name for ep in distribution("netvol").entry_points if ep.group == "console_scripts"
    }
    assert declared == installed, "the installed netvol is stale: pip install -e ."
    return declared


def parses(parser: argparse.ArgumentParser, argv: list[str]) -> str:
    """'' when argparse accepts argv, else argparse's complaint."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            parser.parse_args(argv)
        except SystemExit:
            return stderr.getvalue() or "argparse exited"
    return ""


def server_parser() -> argparse.ArgumentParser:
    """netvol-server's command line, as storage_server.main builds it."""
    parser = argparse.ArgumentParser(prog="netvol-server")
    parser.add_argument("--config")
    server_main.add_arguments(parser)
    return parser


def volctl_subcommands() -> set[str]:
    parser = volctl_main._parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(sub.choices)


def netvol_container(objects: list[Manifest], workload: str) -> Manifest:
    (found,) = [
        c
        for w, c in manifests.all_containers(objects)
        if w["metadata"]["name"] == workload and manifests.is_netvol(c)
    ]
    return found


def test_dockerfile_entrypoint_is_an_installed_command() -> None:
    final = dockerfile.stages(dockerfile.parse(DOCKERFILE))[-1]
    (entrypoint,) = [i.exec_form() for i in final if i.keyword == "ENTRYPOINT"]
    (cmd,) = [i.exec_form() for i in final if i.keyword == "CMD"]
    assert entrypoint == ["netvol-server"]
    assert entrypoint[0] in console_scripts()
    assert parses(server_parser(), cmd) == ""
    # The scripts are installed into the virtual environment that PATH leads to.
    (path,) = [i.arguments for i in final if i.keyword == "ENV" and "PATH=" in i.arguments]
    assert "PATH=/opt/netvol/bin:" in path
    build = dockerfile.stages(dockerfile.parse(DOCKERFILE))[0]
    assert any(i.keyword == "RUN" and "/opt/netvol/bin/pip install" in i.arguments for i in build)


@pytest.mark.parametrize("workload", NETVOL_WORKLOADS)
def test_manifest_command_is_an_installed_command(rendered: list[Manifest], workload: str) -> None:
    command = netvol_container(rendered, workload)["command"]
    assert len(command) == 1 and command[0] in console_scripts(), command


def test_server_accepts_its_arguments(rendered: list[Manifest]) -> None:
    c = netvol_container(rendered, "netvol-server")
    assert c["command"] == ["netvol-server"]
    assert parses(server_parser(), c["args"]) == ""


@pytest.mark.parametrize("workload", ["netvol-controller", "netvol-node"])
def test_volctl_accepts_its_subcommand_and_arguments(
    rendered: list[Manifest], workload: str
) -> None:
    c = netvol_container(rendered, workload)
    assert c["command"] == ["volctl"]
    subcommand = c["args"][0]
    assert subcommand in volctl_subcommands(), f"volctl has no `{subcommand}` subcommand"
    assert parses(volctl_main._parser(), c["args"]) == ""


@pytest.mark.parametrize("script", sorted(console_scripts()))
def test_console_script_runs(script: str) -> None:
    """The installed command starts: its imports and entry point work."""
    result = subprocess.run(
        [str(manifests.tool(script)), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _build_context(target: Path) -> Path:
    """Lay out /src as the Dockerfile's build stage does, from what .dockerignore sends."""
    build = dockerfile.stages(dockerfile.parse(DOCKERFILE))[0]
    (workdir,) = [i.arguments for i in build if i.keyword == "WORKDIR"]
    for sources, destination in dockerfile.copies(build):
        dest = target / Path(workdir, destination).relative_to(workdir)
        for source in sources:
            root = REPO / source
            files = [root] if root.is_file() else sorted(root.rglob("*"))
            for f in files:
                relative = f.relative_to(REPO).as_posix()
                if not f.is_file() or not dockerfile.dockerignore_sends(
                    REPO / ".dockerignore", relative
                ):
                    continue
                into = dest / f.name if root.is_file() else dest / f.relative_to(root)
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, into)
    return target


def test_image_build_installs_the_commands_it_runs(
    rendered: list[Manifest], tmp_path: Path
) -> None:
    """`pip install .` on the files the image gets yields the commands it runs.

    Built offline with this environment's setuptools: the image's build does the
    same with a fresh one."""
    context = _build_context(tmp_path / "src")
    out = tmp_path / "wheels"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index"),
            *("--no-build-isolation", "--wheel-dir", str(out), str(context)),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = out.glob("netvol-*.whl")
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt")]
        entry_points = configparser.ConfigParser()
        entry_points.read_string(z.read(name).decode())
    built = set(entry_points["console_scripts"])
    assert built == console_scripts()
    final = dockerfile.stages(dockerfile.parse(DOCKERFILE))[-1]
    (entrypoint,) = [i.exec_form() for i in final if i.keyword == "ENTRYPOINT"]
    used = {entrypoint[0]} | {netvol_container(rendered, w)["command"][0] for w in NETVOL_WORKLOADS}
    assert used <= built
