"""Strict validation against the operators' own CRDs in ../shared/crds (reference data, never in the product).

As ../shared/crds/README.md prescribes: the version matching ``apiVersion``, ``additionalProperties: false``
wherever ``properties`` is given without ``x-kubernetes-preserve-unknown-fields`` (unknown fields are errors, as
with ``kubectl apply --validate=strict``), ``x-kubernetes-int-or-string`` as integer-or-string, and the top-level
``metadata`` left to the API server's own rules.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

CRDS = Path(__file__).resolve().parents[2].parent / "shared" / "crds"
FILES = {
    "PyTorchJob": "kubeflow.org_pytorchjobs.yaml",
    "TrainJob": "trainer.kubeflow.org_trainjobs.yaml",
    "TrainingRuntime": "trainer.kubeflow.org_trainingruntimes.yaml",
    "ClusterTrainingRuntime": "trainer.kubeflow.org_clustertrainingruntimes.yaml",
    "RayJob": "ray.io_rayjobs.yaml",
    "RayCluster": "ray.io_rayclusters.yaml",
    "PodMonitor": "monitoring.coreos.com_podmonitors.yaml",
    "PrometheusRule": "monitoring.coreos.com_prometheusrules.yaml",
}
needs_crds = pytest.mark.skipif(
    not CRDS.is_dir(), reason="../shared/crds (the operators' CRDs, reference data) is absent"
)


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    return out


def schema(kind: str, api_version: str) -> dict[str, Any]:
    crd = yaml.load((CRDS / FILES[kind]).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    group, version = api_version.split("/")
    assert crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind
    (found,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    strict = _strict(found["schema"]["openAPIV3Schema"])
    strict["properties"]["metadata"] = {"type": "object"}  # the API server's ObjectMeta rules, not the CRD's
    return strict


@functools.cache
def validator(kind: str, api_version: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(schema(kind, api_version))


def errors(obj: dict[str, Any]) -> list[str]:
    """What the strict CRD schema of ``obj``'s kind finds wrong with it (empty: valid)."""
    found = validator(obj["kind"], obj["apiVersion"]).iter_errors(obj)
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in found]


def rename(path: list, new: str):
    """A mutation of a manifest: the key at ``path`` renamed to ``new`` (a misspelled field)."""

    def mutate(obj):
        *parents, leaf = path
        for p in parents:
            obj = obj[p]
        obj[new] = obj.pop(leaf)

    return mutate
