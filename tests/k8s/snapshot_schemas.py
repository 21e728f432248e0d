"""JSON schemas for the snapshot.storage.k8s.io/v1 objects the manifests use.

Their CRDs come with external-snapshotter, not with Kubernetes, so the schema
validator's bundled API schemas lack them. These follow the CRDs' structure
(required fields, enums, the one-of source) and, like the strict Kubernetes
schemas, reject unknown fields. Metadata is checked against Kubernetes' ObjectMeta.
"""

from typing import Any

OBJECT_META = {
    "$ref": "https://kubernetes.io/api/_definitions.json"
    "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
}

_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}

VOLUME_SNAPSHOT_CLASS: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "driver", "deletionPolicy"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "snapshot.storage.k8s.io/v1"},
        "kind": {"const": "VolumeSnapshotClass"},
        "metadata": OBJECT_META,
        "driver": {"type": "string", "minLength": 1},
        "deletionPolicy": {"enum": ["Delete", "Retain"]},
        "parameters": _STRING_MAP,
    },
}

VOLUME_SNAPSHOT: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "snapshot.storage.k8s.io/v1"},
        "kind": {"const": "VolumeSnapshot"},
        "metadata": OBJECT_META,
        "spec": {
            "type": "object",
            "required": ["source"],
            "additionalProperties": False,
            "properties": {
                "volumeSnapshotClassName": {"type": "string", "minLength": 1},
                "source": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "persistentVolumeClaimName": {"type": "string", "minLength": 1},
                        "volumeSnapshotContentName": {"type": "string", "minLength": 1},
                    },
                    "minProperties": 1,
                    "maxProperties": 1,
                },
            },
        },
    },
}

SCHEMAS = {
    ("snapshot.storage.k8s.io/v1", "VolumeSnapshotClass"): VOLUME_SNAPSHOT_CLASS,
    ("snapshot.storage.k8s.io/v1", "VolumeSnapshot"): VOLUME_SNAPSHOT,
}
