"""Every manifest, as written and as rendered, is valid for the Kubernetes API.

Checked offline against the OpenAPI-derived schemas that kubernetes-validate ships
(strict: unknown fields are errors), and against tests/k8s/snapshot_schemas.py for
the snapshot CRDs.
"""

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate.utils as kv  # type: ignore[import-untyped]
import pytest
from referencing import Registry, Resource

from tests.k8s import manifests
from tests.k8s.manifests import KUBERNETES_VERSION, Manifest
from tests.k8s.snapshot_schemas import SCHEMAS


def _definitions() -> Resource[Any]:
    path = (
        resources.files("kubernetes_validate")
        / "kubernetes-json-schema"
        / f"v{KUBERNETES_VERSION}-local-strict"
        / "_definitions.json"
    )
    return Resource.from_contents(json.loads(path.read_text()))


def validate(obj: Manifest) -> None:
    """Raise jsonschema.ValidationError (or AssertionError) when obj is not valid."""
    crd_schema = SCHEMAS.get((obj["apiVersion"], obj["kind"]))
    if crd_schema is not None:
        registry: Registry[Any] = _definitions() @ Registry()
        jsonschema.Draft202012Validator(crd_schema, registry=registry).validate(obj)
        return
    try:
        kv.validate(obj, KUBERNETES_VERSION, strict=True)
    except kv.SchemaNotFoundError as exc:
        raise AssertionError(exc.message) from exc


def _label(obj: Manifest) -> str:
    return f"{obj['kind']}/{obj['metadata'].get('name', '?')}"


def _assert_valid(objects: list[Manifest], where: str) -> None:
    errors = []
    for obj in objects:
        try:
            validate(obj)
        except jsonschema.ValidationError as exc:
            path = ".".join(str(p) for p in exc.absolute_path)
            errors.append(f"{where}: {_label(obj)}: {path}: {exc.message}")
        except AssertionError as exc:
            errors.append(f"{where}: {_label(obj)}: {exc}")
    assert not errors, "\n".join(errors)


def test_validator_has_the_kubernetes_release() -> None:
    assert KUBERNETES_VERSION in kv.all_versions()


@pytest.mark.parametrize(
    "path",
    manifests.manifest_files() + manifests.example_files(),
    ids=lambda p: str(p.relative_to(manifests.K8S)),
)
def test_manifest_file_is_valid(path: Path) -> None:
    objects = manifests.load_file(path)
    assert objects, f"{path} holds no object"
    _assert_valid(objects, path.name)


def test_rendered_objects_are_valid(rendered: list[Manifest]) -> None:
    _assert_valid(rendered, "kustomize build")


def _must_fail(obj: Manifest) -> None:
    with pytest.raises((jsonschema.ValidationError, AssertionError)):
        validate(obj)


def test_validation_catches_mistakes(rendered: list[Manifest]) -> None:
    """The checks above mean something: typical mistakes are rejected."""
    controller = manifests.find(rendered, "Deployment", "netvol-controller")

    misspelled = copy.deepcopy(controller)
    manifests.containers(misspelled)[0]["imagePullPolcy"] = "Always"
    _must_fail(misspelled)

    wrong_type = copy.deepcopy(controller)
    wrong_type["spec"]["replicas"] = "two"
    _must_fail(wrong_type)

    misplaced = copy.deepcopy(manifests.find(rendered, "CSIDriver"))
    misplaced["spec"]["driverName"] = "csi.netvol.dev"
    _must_fail(misplaced)

    unknown_kind = {"apiVersion": "netvol.dev/v1", "kind": "Volume", "metadata": {"name": "x"}}
    _must_fail(unknown_kind)

    no_driver = copy.deepcopy(manifests.find(rendered, "VolumeSnapshotClass"))
    del no_driver["driver"]
    _must_fail(no_driver)

    snapshot = manifests.find(
        manifests.load_file(manifests.EXAMPLES / "snapshot.yaml"), "VolumeSnapshot"
    )
    two_sources = copy.deepcopy(snapshot)
    two_sources["spec"]["source"]["volumeSnapshotContentName"] = "content"
    _must_fail(two_sources)
    bad_metadata = copy.deepcopy(snapshot)
    bad_metadata["metadata"]["labels"] = ["not", "a", "map"]
    _must_fail(bad_metadata)
