"""RBAC grants each sidecar exactly what it uses, and nothing to pods that need nothing.

The expected rules are written out here, with the reason for each, from the
sidecars' published RBAC at the pinned versions, narrowed to netvol's capabilities
and to the flags in k8s/controller.yaml:
- no ControllerPublishVolume, so the provisioner never watches VolumeAttachments;
- no topology, so it never reads Nodes or CSINodes;
- no storage capacity tracking, so no CSIStorageCapacity, Pods or ReplicaSets;
- no StorageClass secrets, so no Secrets anywhere;
- no group snapshots, so the snapshotter only watches (as it always does) the
  group snapshot objects and never creates or changes them;
- --handle-volume-inuse-error=false, so the resizer never watches Pods;
- events come from client-go's recorder, which only creates and patches them.
"""

from collections import defaultdict

from tests.k8s import manifests
from tests.k8s.manifests import Manifest, find

Rules = dict[tuple[str, str], set[str]]

EVENTS: Rules = {("", "events"): {"create", "patch"}}
READ = {"get", "list", "watch"}

SIDECAR_RULES: dict[str, Rules] = {
    "csi-provisioner": {
        # Creates and deletes PVs; patches them to drop the deletion-protection finalizer.
        ("", "persistentvolumes"): READ | {"create", "patch", "delete"},
        # Annotates the claims it provisions.
        ("", "persistentvolumeclaims"): READ | {"update"},
        ("storage.k8s.io", "storageclasses"): READ,
        # Restores: watches snapshots, keeps a finalizer on the source while restoring.
        ("snapshot.storage.k8s.io", "volumesnapshots"): READ | {"update"},
        ("snapshot.storage.k8s.io", "volumesnapshotcontents"): {"get", "list"},
        # Gets the VolumeAttributesClass a claim names.
        ("storage.k8s.io", "volumeattributesclasses"): {"get"},
        **EVENTS,
    },
    "csi-resizer": {
        ("", "persistentvolumes"): READ | {"patch"},
        ("", "persistentvolumeclaims"): READ,
        ("", "persistentvolumeclaims/status"): {"patch"},
        # Its modify controller's informer.
        ("storage.k8s.io", "volumeattributesclasses"): READ,
        **EVENTS,
    },
    "csi-snapshotter": {
        ("snapshot.storage.k8s.io", "volumesnapshotclasses"): READ,
        ("snapshot.storage.k8s.io", "volumesnapshotcontents"): READ | {"update", "patch"},
        ("snapshot.storage.k8s.io", "volumesnapshotcontents/status"): {"update", "patch"},
        ("groupsnapshot.storage.k8s.io", "volumegroupsnapshotclasses"): READ,
        ("groupsnapshot.storage.k8s.io", "volumegroupsnapshotcontents"): READ,
        **EVENTS,
    },
}
# Each electing sidecar keeps a Lease: client-go's lease lock gets, creates, updates.
LEADER_ELECTION: Rules = {("coordination.k8s.io", "leases"): {"get", "create", "update"}}

# The ClusterRole written for each sidecar.
SIDECAR_ROLE = {
    "csi-provisioner": "netvol-external-provisioner",
    "csi-resizer": "netvol-external-resizer",
    "csi-snapshotter": "netvol-external-snapshotter",
}


def normalize(role: Manifest) -> Rules:
    rules: Rules = defaultdict(set)
    for rule in role.get("rules", []):
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                rules[(group, resource)] |= set(rule["verbs"])
    return dict(rules)


def bindings_of(objects: list[Manifest], namespace: str, account: str) -> list[Manifest]:
    """Every (Cluster)RoleBinding that names this ServiceAccount."""
    return [
        b
        for b in objects
        if b["kind"] in ("RoleBinding", "ClusterRoleBinding")
        and {"kind": "ServiceAccount", "name": account, "namespace": namespace} in b["subjects"]
    ]


def service_account(objects: list[Manifest], workload: Manifest) -> Manifest:
    name = manifests.pod_spec(workload)["serviceAccountName"]
    return find(objects, "ServiceAccount", name)


def test_each_sidecar_role_has_exactly_its_rules(rendered: list[Manifest]) -> None:
    for sidecar, role_name in SIDECAR_ROLE.items():
        role = find(rendered, "ClusterRole", role_name)
        assert normalize(role) == SIDECAR_RULES[sidecar], role_name


def test_controller_account_holds_the_roles_of_its_sidecars(rendered: list[Manifest]) -> None:
    deployment = find(rendered, "Deployment", "netvol-controller")
    account = service_account(rendered, deployment)
    namespace = account["metadata"]["namespace"]
    present = {
        manifests.image_name(c)
        for c in manifests.containers(deployment)
        if not manifests.is_netvol(c) and manifests.image_name(c) != "livenessprobe"
    }
    assert present == set(SIDECAR_ROLE), "a sidecar without a role, or a role without one"

    cluster_roles: set[str] = set()
    roles: list[Manifest] = []
    for binding in bindings_of(rendered, namespace, account["metadata"]["name"]):
        ref = binding["roleRef"]
        if binding["kind"] == "ClusterRoleBinding":
            assert ref["kind"] == "ClusterRole"
            cluster_roles.add(ref["name"])
        else:
            assert binding["metadata"]["namespace"] == namespace
            assert ref["kind"] == "Role"
            roles.append(find(rendered, "Role", ref["name"]))
    assert cluster_roles == {SIDECAR_ROLE[s] for s in present}
    assert len(roles) == 1
    assert roles[0]["metadata"]["namespace"] == namespace
    assert normalize(roles[0]) == LEADER_ELECTION


def test_pods_that_need_no_api_get_no_access(rendered: list[Manifest]) -> None:
    for kind, name in (("DaemonSet", "netvol-node"), ("StatefulSet", "netvol-server")):
        workload = find(rendered, kind, name)
        account = service_account(rendered, workload)
        namespace = account["metadata"]["namespace"]
        assert not bindings_of(rendered, namespace, account["metadata"]["name"]), name
        assert account["automountServiceAccountToken"] is False
        assert manifests.pod_spec(workload)["automountServiceAccountToken"] is False


def test_every_role_is_one_we_meant(rendered: list[Manifest]) -> None:
    cluster_roles = {r["metadata"]["name"] for r in manifests.of_kind(rendered, "ClusterRole")}
    assert cluster_roles == set(SIDECAR_ROLE.values())
    roles = manifests.of_kind(rendered, "Role")
    assert [normalize(r) for r in roles] == [LEADER_ELECTION]
    for role in [*manifests.of_kind(rendered, "ClusterRole"), *roles]:
        for (group, resource), verbs in normalize(role).items():
            assert "*" not in verbs and "*" not in (group, resource)
            assert resource != "secrets", "netvol's sidecars read no Secrets"
