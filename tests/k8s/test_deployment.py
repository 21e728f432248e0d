"""The deployment's logic: the pieces name each other consistently, so that kubelet,
the sidecars, the plugin and the storage server actually find one another."""

import dataclasses

from csi.driver import DRIVER_NAME
from storage_server.client import ClientSettings
from storage_server.settings import ServerSettings
from tests.k8s import manifests
from tests.k8s.manifests import Manifest, container, find, flag, volume
from volctl.csi_command import DEFAULT_STATE_DIR

KUBELET_PODS = "/var/lib/kubelet/pods"
KUBELET_PLUGINS = "/var/lib/kubelet/plugins"
KUBELET_REGISTRY = "/var/lib/kubelet/plugins_registry"
# Where kubelet asks the plugin to stage and publish a volume (kubelet's layout).
STAGING_PATH = f"{KUBELET_PLUGINS}/kubernetes.io/csi/{DRIVER_NAME}/0123abcd/globalmount"
PUBLISH_PATH = f"{KUBELET_PODS}/pod-uid/volumes/kubernetes.io~csi/pvc-1/mount"

PLUGIN = "netvol-csi"


def controller(objects: list[Manifest]) -> Manifest:
    return find(objects, "Deployment", "netvol-controller")


def node(objects: list[Manifest]) -> Manifest:
    return find(objects, "DaemonSet", "netvol-node")


def server(objects: list[Manifest]) -> Manifest:
    return find(objects, "StatefulSet", "netvol-server")


def sidecars(workload: Manifest) -> list[Manifest]:
    return [c for c in manifests.containers(workload) if not manifests.is_netvol(c)]


def sidecar(workload: Manifest, image: str) -> Manifest:
    (found,) = [c for c in sidecars(workload) if manifests.image_name(c) == image]
    return found


def named_port(c: Manifest, port: int | str) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in c.get("ports", []) if p["name"] == port]
    assert isinstance(number, int)
    return number


def http_port(address: str) -> int:
    """The port of a listen address such as :9809 or 0.0.0.0:7450."""
    return int(address.rsplit(":", 1)[1])


# --- the driver's identity ------------------------------------------------------


def test_csidriver_is_the_plugins_driver(rendered: list[Manifest]) -> None:
    driver = find(rendered, "CSIDriver")
    assert driver["metadata"]["name"] == DRIVER_NAME
    spec = driver["spec"]
    assert spec["attachRequired"] is False
    assert spec["podInfoOnMount"] is False
    assert spec["volumeLifecycleModes"] == ["Persistent"]
    # Chosen, not defaulted: kubelet must not chown shared volumes (docs/kubernetes.md).
    assert spec["fsGroupPolicy"] == "None"


def test_no_attacher_since_nothing_is_attached(rendered: list[Manifest]) -> None:
    images = {manifests.image_name(c) for _, c in manifests.all_containers(rendered)}
    assert "csi-attacher" not in images


def test_classes_name_the_driver(rendered: list[Manifest]) -> None:
    storage_class = find(rendered, "StorageClass")
    assert storage_class["provisioner"] == DRIVER_NAME
    assert storage_class["allowVolumeExpansion"] is True
    assert find(rendered, "VolumeSnapshotClass")["driver"] == DRIVER_NAME


# --- sockets between kubelet, the sidecars and the plugin -------------------------


def served_socket(workload: Manifest) -> tuple[str, str]:
    """(volume, path within it) of the socket the plugin serves CSI on."""
    plugin = container(workload, PLUGIN)
    endpoint = flag(plugin, "endpoint")
    assert endpoint is not None and endpoint.startswith("unix://"), endpoint
    return manifests.resolve_in_container(plugin, workload, endpoint.removeprefix("unix://"))


def test_every_sidecar_dials_the_socket_the_plugin_serves(rendered: list[Manifest]) -> None:
    for workload in (controller(rendered), node(rendered)):
        served = served_socket(workload)
        assert sidecars(workload)
        for c in sidecars(workload):
            address = flag(c, "csi-address")
            assert address, f"{c['name']} has no --csi-address"
            dialed = manifests.resolve_in_container(c, workload, address.removeprefix("unix://"))
            assert dialed == served, f"{c['name']} dials {dialed}, plugin serves {served}"


def test_controller_socket_is_private_to_the_pod(rendered: list[Manifest]) -> None:
    name, _ = served_socket(controller(rendered))
    assert "emptyDir" in volume(controller(rendered), name)


def test_registrar_tells_kubelet_where_the_socket_is_on_the_host(
    rendered: list[Manifest],
) -> None:
    ds = node(rendered)
    name, relative = served_socket(ds)
    host_dir = volume(ds, name)["hostPath"]["path"]
    assert host_dir == f"{KUBELET_PLUGINS}/{DRIVER_NAME}"
    registrar = sidecar(ds, "csi-node-driver-registrar")
    assert flag(registrar, "kubelet-registration-path") == f"{host_dir}/{relative}"
    registration = manifests.resolve_in_container(registrar, ds, "/registration/x.sock")
    assert volume(ds, registration[0])["hostPath"]["path"] == KUBELET_REGISTRY


def test_liveness_probes_ask_the_probe_sidecar(rendered: list[Manifest]) -> None:
    for workload in (controller(rendered), node(rendered)):
        probe = sidecar(workload, "livenessprobe")
        port = int(flag(probe, "health-port") or 9808)
        plugin = container(workload, PLUGIN)
        http = plugin["livenessProbe"]["httpGet"]
        assert http["path"] == "/healthz"
        assert named_port(plugin, http["port"]) == port


def test_registrar_liveness_probe_asks_the_registrar(rendered: list[Manifest]) -> None:
    registrar = sidecar(node(rendered), "csi-node-driver-registrar")
    endpoint = flag(registrar, "http-endpoint")
    assert endpoint
    http = registrar["livenessProbe"]["httpGet"]
    assert named_port(registrar, http["port"]) == http_port(endpoint)


def test_controller_sidecars_elect_a_leader(rendered: list[Manifest]) -> None:
    deployment = controller(rendered)
    assert deployment["spec"]["replicas"] >= 2
    for c in sidecars(deployment):
        if manifests.image_name(c) != "livenessprobe":
            assert flag(c, "leader-election") == "", f"{c['name']} runs without election"


# --- the node plugin's mounts -------------------------------------------------------


def test_node_plugin_shares_kubelet_directories_bidirectionally(
    rendered: list[Manifest],
) -> None:
    ds = node(rendered)
    plugin = container(ds, PLUGIN)
    assert plugin["securityContext"]["privileged"] is True
    mounts = {m["mountPath"]: m for m in plugin["volumeMounts"]}
    for path in (KUBELET_PODS, KUBELET_PLUGINS):
        mount = mounts[path]
        assert mount.get("mountPropagation") == "Bidirectional", path
        # kubelet passes host paths: they must mean the same inside the container.
        assert volume(ds, mount["name"])["hostPath"]["path"] == path
    for target in (STAGING_PATH, PUBLISH_PATH):
        name, _ = manifests.resolve_in_container(plugin, ds, target)
        (mount,) = [m for m in plugin["volumeMounts"] if m["name"] == name]
        assert mount.get("mountPropagation") == "Bidirectional", target


def test_only_the_plugin_propagates_mounts(rendered: list[Manifest]) -> None:
    for w, c in manifests.all_containers(rendered):
        if c["name"] == PLUGIN and w["kind"] == "DaemonSet":
            continue
        for m in c.get("volumeMounts", []):
            assert m.get("mountPropagation", "None") == "None", f"{c['name']} {m['mountPath']}"


def test_node_plugin_has_dev_fuse(rendered: list[Manifest]) -> None:
    ds = node(rendered)
    name, relative = manifests.resolve_in_container(container(ds, PLUGIN), ds, "/dev/fuse")
    assert relative == ""
    assert volume(ds, name)["hostPath"] == {"path": "/dev/fuse", "type": "CharDevice"}


def test_node_plugin_keeps_its_state_on_the_host(rendered: list[Manifest]) -> None:
    """The record of staged and published volumes outlives the container, and is
    not the socket's directory, which the CSI spec reserves for the socket."""
    ds = node(rendered)
    plugin = container(ds, PLUGIN)
    state_dir = flag(plugin, "state-dir") or str(DEFAULT_STATE_DIR)
    name, _ = manifests.resolve_in_container(plugin, ds, state_dir)
    assert "hostPath" in volume(ds, name)
    assert name != served_socket(ds)[0]


def test_node_plugin_is_not_replaced_behind_your_back(rendered: list[Manifest]) -> None:
    ds = node(rendered)
    assert ds["spec"]["updateStrategy"]["type"] == "OnDelete"
    spec = manifests.pod_spec(ds)
    assert spec["priorityClassName"] == "system-node-critical"
    assert {"operator": "Exists"} in spec["tolerations"]


# --- the storage server, its address and its token -------------------------------


def test_service_reaches_the_server(rendered: list[Manifest]) -> None:
    sts = server(rendered)
    service = find(rendered, "Service", "netvol-server")
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert sts["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (svc_port,) = service["spec"]["ports"]
    srv = container(sts, "netvol-server")
    listen = flag(srv, "listen")
    assert listen
    assert named_port(srv, svc_port["targetPort"]) == http_port(listen)


def test_server_probes_ask_the_grpc_health_service(rendered: list[Manifest]) -> None:
    srv = container(server(rendered), "netvol-server")
    listen = flag(srv, "listen")
    assert listen
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert srv[probe]["grpc"]["port"] == http_port(listen), probe


def test_plugins_are_given_the_servers_address(rendered: list[Manifest]) -> None:
    service = find(rendered, "Service", "netvol-server")
    (svc_port,) = service["spec"]["ports"]
    namespace = service["metadata"]["namespace"]
    names = {
        service["metadata"]["name"],
        f"{service['metadata']['name']}.{namespace}",
        f"{service['metadata']['name']}.{namespace}.svc",
    }
    variable = f"NETVOL_{'server'.upper()}"
    assert "server" in {f.name for f in dataclasses.fields(ClientSettings)}
    for workload in (controller(rendered), node(rendered)):
        address = manifests.env(container(workload, PLUGIN), variable)["value"]
        host, port = address.rsplit(":", 1)
        assert host in names and int(port) == svc_port["port"], address


def test_everyone_reads_the_same_token_secret(rendered: list[Manifest]) -> None:
    secret = find(rendered, "Secret", "netvol-token")
    # No token is shipped: each cluster makes its own (docs/kubernetes.md).
    assert "data" not in secret and "stringData" not in secret
    assert "token" in {f.name for f in dataclasses.fields(ServerSettings)}
    assert "token" in {f.name for f in dataclasses.fields(ClientSettings)}
    readers = [
        (container(server(rendered), "netvol-server"), "NETVOL_SERVER_TOKEN"),
        (container(controller(rendered), PLUGIN), "NETVOL_TOKEN"),
        (container(node(rendered), PLUGIN), "NETVOL_TOKEN"),
    ]
    keys = set()
    for c, variable in readers:
        ref = manifests.env(c, variable)["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"]
        assert ref.get("optional") is False
        keys.add(ref["key"])
    assert len(keys) == 1


def test_server_keeps_its_data_on_its_own_volume(rendered: list[Manifest]) -> None:
    sts = server(rendered)
    srv = container(sts, "netvol-server")
    data_dir = flag(srv, "data-dir")
    assert data_dir
    mounts = {m["mountPath"]: m["name"] for m in srv["volumeMounts"]}
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert mounts[data_dir] == claim["metadata"]["name"]
    assert sts["spec"]["replicas"] == 1, "SQLite has one writer"
    policy = sts["spec"]["persistentVolumeClaimRetentionPolicy"]
    assert policy == {"whenDeleted": "Retain", "whenScaled": "Retain"}


def test_only_the_node_plugin_is_privileged(rendered: list[Manifest]) -> None:
    for w, c in manifests.all_containers(rendered):
        privileged = c.get("securityContext", {}).get("privileged", False)
        assert privileged == (w["kind"] == "DaemonSet" and c["name"] == PLUGIN), c["name"]
    for workload in (controller(rendered), server(rendered)):
        assert manifests.pod_spec(workload)["securityContext"]["runAsNonRoot"] is True


# --- the examples -----------------------------------------------------------------


def test_examples_use_the_shipped_classes(rendered: list[Manifest]) -> None:
    examples = [o for p in manifests.example_files() for o in manifests.load_file(p)]
    storage_class = find(rendered, "StorageClass")["metadata"]["name"]
    snapshot_class = find(rendered, "VolumeSnapshotClass")["metadata"]["name"]
    claims = {
        c["metadata"]["name"]: c for c in manifests.of_kind(examples, "PersistentVolumeClaim")
    }
    snapshots = {s["metadata"]["name"]: s for s in manifests.of_kind(examples, "VolumeSnapshot")}
    for claim in claims.values():
        assert claim["spec"]["storageClassName"] == storage_class
        source = claim["spec"].get("dataSource")
        if source:
            assert source["kind"] == "VolumeSnapshot" and source["name"] in snapshots
    for snapshot in snapshots.values():
        assert snapshot["spec"]["volumeSnapshotClassName"] == snapshot_class
        assert snapshot["spec"]["source"]["persistentVolumeClaimName"] in claims
    for pod in manifests.of_kind(examples, "Pod"):
        for v in pod["spec"]["volumes"]:
            assert v["persistentVolumeClaim"]["claimName"] in claims


def test_shared_example_spans_two_nodes() -> None:
    objects = manifests.load_file(manifests.EXAMPLES / "shared-volume.yaml")
    (claim,) = manifests.of_kind(objects, "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    pods = manifests.of_kind(objects, "Pod")
    assert len(pods) == 2
    for pod in pods:
        (v,) = pod["spec"]["volumes"]
        assert v["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    writer, reader = pods
    (term,) = reader["spec"]["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= writer["metadata"]["labels"].items()
    assert not term["labelSelector"]["matchLabels"].items() <= reader["metadata"]["labels"].items()
