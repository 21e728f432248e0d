"""docs/kubernetes.md says what the manifests do: the same images, the same Secret."""

import re

from csi.driver import DRIVER_NAME
from tests.k8s import manifests
from tests.k8s.manifests import DOCS, Manifest, find


def test_docs_list_the_pinned_sidecars(rendered: list[Manifest]) -> None:
    text = DOCS.read_text()
    for _, c in manifests.all_containers(rendered):
        if not manifests.is_netvol(c):
            assert f"`{c['image']}`" in text, f"docs/kubernetes.md does not pin {c['image']}"


def test_install_fills_the_secret_the_pods_read(rendered: list[Manifest]) -> None:
    text = DOCS.read_text()
    secret = find(rendered, "Secret", "netvol-token")
    match = re.search(
        r"kubectl -n (\S+) patch secret (\S+) .*\n.*stringData\\\":\{\\\"(\w+)\\\"", text
    )
    assert match, "docs/kubernetes.md has no command that sets the token"
    namespace, name, key = match.groups()
    assert (namespace, name) == (secret["metadata"]["namespace"], secret["metadata"]["name"])
    node = find(rendered, "DaemonSet", "netvol-node")
    ref = manifests.env(manifests.container(node, "netvol-csi"), "NETVOL_TOKEN")
    assert ref["valueFrom"]["secretKeyRef"]["key"] == key


def test_docs_cover_what_operators_need() -> None:
    text = DOCS.read_text()
    headings = set(re.findall(r"^#+ (.+)$", text, re.MULTILINE))
    for heading in (
        "Install",
        "Upgrade",
        "Uninstall",
        "StorageClass",
        "Node plugin restarts, and the mounts they carry",
        "Troubleshooting",
    ):
        assert heading in headings, heading
    assert "transport endpoint is not connected" in text
    assert "Terminating" in text
    assert DRIVER_NAME in text
