"""The Dockerfile passes hadolint and agrees with the package and the manifests.

Docker itself is not available where the tests run, so the image is never built
here; these checks cover what a build would depend on."""

import fnmatch
import subprocess
import tomllib

from tests.k8s import dockerfile, manifests
from tests.k8s.manifests import DOCKERFILE, REPO, Manifest, find

DOCKERIGNORE = REPO / ".dockerignore"
# DL3008 asks for apt package versions; they follow the pinned base image tag.
ALLOWED_IGNORES = {"DL3008"}


def hadolint(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(manifests.tool("hadolint")), "--no-color", "--failure-threshold", "style", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_hadolint_passes() -> None:
    result = hadolint(str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_finds_problems_when_there_are_some() -> None:
    result = hadolint("-", stdin="FROM debian\nRUN apt-get install curl\n")
    assert result.returncode != 0
    assert "DL3006" in result.stdout  # untagged base image


def test_only_justified_rules_are_switched_off() -> None:
    assert dockerfile.ignored_rules(DOCKERFILE) <= ALLOWED_IGNORES


def test_multi_stage_build_on_a_slim_python() -> None:
    instructions = dockerfile.parse(DOCKERFILE)
    stages = dockerfile.stages(instructions)
    assert len(stages) >= 2
    args = {
        i.arguments.split("=", 1)[0]: i.arguments.split("=", 1)[1]
        for i in instructions[: instructions.index(stages[0][0])]
        if i.keyword == "ARG" and "=" in i.arguments
    }
    for stage in stages:
        base = stage[0].arguments.split()[0]
        if base.startswith("${") and base.endswith("}"):
            base = args[base[2:-1]]
        image, _, tag = base.partition(":")
        assert image == "python" and "slim" in tag, base
    final = stages[-1]
    assert any(i.keyword == "COPY" and i.arguments.startswith("--from=") for i in final)


def _final(keyword: str) -> list[dockerfile.Instruction]:
    final = dockerfile.stages(dockerfile.parse(DOCKERFILE))[-1]
    return [i for i in final if i.keyword == keyword]


def test_image_user_is_the_pods_user(rendered: list[Manifest]) -> None:
    (user,) = _final("USER")
    uid, _, gid = user.arguments.partition(":")
    for kind, name in (("StatefulSet", "netvol-server"), ("Deployment", "netvol-controller")):
        context = manifests.pod_spec(find(rendered, kind, name))["securityContext"]
        assert (context["runAsUser"], context["runAsGroup"]) == (int(uid), int(gid)), name
    assert int(uid) != 0
    node = find(rendered, "DaemonSet", "netvol-node")
    assert manifests.container(node, "netvol-csi")["securityContext"]["runAsUser"] == 0


def test_exposed_port_is_the_servers(rendered: list[Manifest]) -> None:
    (expose,) = _final("EXPOSE")
    sts = find(rendered, "StatefulSet", "netvol-server")
    ports = [p["containerPort"] for p in manifests.container(sts, "netvol-server")["ports"]]
    assert ports == [int(expose.arguments)]


def _copied_sources() -> set[str]:
    build = dockerfile.stages(dockerfile.parse(DOCKERFILE))[0]
    return {s.rstrip("/") for sources, _ in dockerfile.copies(build) for s in sources}


def test_build_copies_every_package_of_the_project() -> None:
    with (REPO / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {
        p.name
        for p in REPO.iterdir()
        if (p / "__init__.py").exists() and any(fnmatch.fnmatch(p.name, pat) for pat in include)
    }
    copied = _copied_sources()
    assert packages <= copied, f"not copied: {packages - copied}"
    assert {"pyproject.toml", project["project"]["readme"]} <= copied
    for source in copied:
        assert (REPO / source).exists(), source


def test_dockerignore_sends_the_sources_and_nothing_else() -> None:
    for source in _copied_sources():
        path = REPO / source
        files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
        for f in files:
            relative = f.relative_to(REPO).as_posix()
            cached = "__pycache__" in relative or f.suffix in (".pyc", ".pyo")
            assert dockerfile.dockerignore_sends(DOCKERIGNORE, relative) != cached, relative
    for unwanted in (".git/config", ".venv/bin/python", "tests/__init__.py", "k8s/node.yaml"):
        assert not dockerfile.dockerignore_sends(DOCKERIGNORE, unwanted), unwanted
