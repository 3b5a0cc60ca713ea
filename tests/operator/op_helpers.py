"""Builders shared by the operator's unit tests (no cluster needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from anode_operator.model import Cluster, parse_cluster

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"


def cluster_obj(name: str = "demo", namespace: str = "store", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "anode.dev/v1alpha1",
        "kind": "AnodeCluster",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "generation": 1},
        "spec": spec,
    }


def make_cluster(name: str = "demo", namespace: str = "store", **spec: Any) -> Cluster:
    return parse_cluster(cluster_obj(name, namespace, **spec))


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def crd_schema(plural: str) -> dict[str, Any]:
    (doc,) = load_yaml_docs(CRDS / f"{plural}.anode.dev.yaml")
    return doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Structural-schema defaulting as the API server does it (enough for our CRDs)."""
    if schema.get("type") == "object" and isinstance(value, dict):
        out = dict(value)
        for key, sub in (schema.get("properties") or {}).items():
            if key not in out and "default" in sub:
                out[key] = sub["default"]
            if key in out:
                out[key] = apply_defaults(sub, out[key])
        return out
    if schema.get("type") == "array" and isinstance(value, list):
        return [apply_defaults(schema.get("items") or {}, v) for v in value]
    return value


def to_jsonschema(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI v3 (structural) -> JSON Schema: drop x-kubernetes-* and nullable, make objects
    without properties free-form; unknown fields are rejected, as the API server prunes them."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes") or key in ("nullable", "format"):
            continue
        if key == "properties":
            out[key] = {k: to_jsonschema(v) for k, v in value.items()}
        elif key == "items" or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = to_jsonschema(value)
        else:
            out[key] = value
    if schema.get("nullable"):
        out["type"] = [schema["type"], "null"]
    if (
        schema.get("type") == "object"
        and "properties" in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in schema
    ):
        out["additionalProperties"] = False
    return out


