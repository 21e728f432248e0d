"""`kubectl apply -k k8s/` sends what the files say, in the right namespace, with the
right image, and nothing in k8s/ is left out of it by mistake."""

import tomllib
from importlib.metadata import version

from tests.k8s import manifests
from tests.k8s.manifests import Manifest

CLUSTER_SCOPED = {"Namespace", "CSIDriver", "StorageClass", "VolumeSnapshotClass"} | {
    "ClusterRole",
    "ClusterRoleBinding",
}


def test_every_manifest_file_is_a_resource() -> None:
    listed = set(manifests.kustomization()["resources"])
    on_disk = {p.name for p in manifests.manifest_files()}
    assert listed == on_disk, "kustomization.yaml and the files in k8s/ disagree"


def test_render_holds_each_file_object(rendered: list[Manifest]) -> None:
    written = [o for p in manifests.manifest_files() for o in manifests.load_file(p)]
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, rendered)) == sorted(map(key, written))


def test_namespaced_objects_are_in_the_netvol_namespace(rendered: list[Manifest]) -> None:
    namespace = manifests.find(rendered, "Namespace")["metadata"]["name"]
    for obj in rendered:
        where = obj["metadata"].get("namespace")
        if obj["kind"] in CLUSTER_SCOPED:
            assert where is None, f"{obj['kind']} is cluster-scoped"
        else:
            assert where == namespace, f"{obj['kind']}/{obj['metadata']['name']}"
    for binding in manifests.of_kind(rendered, "ClusterRoleBinding") + manifests.of_kind(
        rendered, "RoleBinding"
    ):
        for subject in binding["subjects"]:
            assert subject["namespace"] == namespace


def test_netvol_image_tag_is_the_package_version(rendered: list[Manifest]) -> None:
    with (manifests.REPO / "pyproject.toml").open("rb") as f:
        project_version = tomllib.load(f)["project"]["version"]
    assert project_version == version("netvol")
    (mapping,) = [
        i for i in manifests.kustomization()["images"] if i["name"] == manifests.NETVOL_IMAGE
    ]
    assert mapping["newTag"] == project_version
    netvol = [c for _, c in manifests.all_containers(rendered) if manifests.is_netvol(c)]
    assert len(netvol) == 3, "server, controller and node run the netvol image"
    for c in netvol:
        assert c["image"] == f"{mapping['newName']}:{project_version}"


def test_every_image_is_pinned(rendered: list[Manifest]) -> None:
    for _, c in manifests.all_containers(rendered):
        name, _, tag = c["image"].rpartition(":")
        assert name and tag and tag != "latest", f"{c['name']} uses an unpinned image"
        assert c.get("imagePullPolicy") == "IfNotPresent"


def test_every_container_has_requests_and_a_memory_limit(rendered: list[Manifest]) -> None:
    for w, c in manifests.all_containers(rendered):
        where = f"{w['metadata']['name']}/{c['name']}"
        resources = c.get("resources", {})
        assert {"cpu", "memory"} <= set(resources.get("requests", {})), where
        assert "memory" in resources.get("limits", {}), where


def test_pod_security_admits_the_privileged_node_plugin(rendered: list[Manifest]) -> None:
    labels = manifests.find(rendered, "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
