"""Offline validation of manifests: core kinds against Kubernetes' own strict schemas (kubernetes-validate),
the operators' kinds against JSON Schemas kept in ``schemas/``, written from the CRDs' documented fields.

Strict means an unknown (e.g. misspelled) field or a value of the wrong type is an error, as it would be for
a server-side ``kubectl apply --validate=strict``. The CRD schemas refer to the Kubernetes definitions for the
pod templates they embed, so those are checked as strictly as a core Pod.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate.utils import VersionNotSupportedError
from referencing import Registry, Resource

SCHEMAS = resources.files(__package__) / "schemas"
CRDS = {
    ("kubeflow.org/v1", "PyTorchJob"): "pytorchjob.json",
    ("trainer.kubeflow.org/v1alpha1", "TrainJob"): "trainjob.json",
    ("trainer.kubeflow.org/v1alpha1", "TrainingRuntime"): "trainingruntime.json",
    ("ray.io/v1", "RayJob"): "rayjob.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "podmonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule.json",
}


class ManifestError(ValueError):
    """A manifest that a cluster would refuse; the message names the object and the offending field."""


# The grammar of resource.Quantity's parser. kubernetes-validate's definitions accept any string as a quantity;
# the API server (and every CRD schema, through controller-gen) refuses "64 Gi" or "8-X".
QUANTITY = {
    "oneOf": [
        {
            "type": "string",
            "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+"
            r"(\.[0-9]*)?)|(\.[0-9]+))))?$",
        },
        {"type": "number"},
    ]
}


@functools.cache
def _k8s_definitions(version: str) -> Resource:
    folder = resources.files(kubernetes_validate) / "kubernetes-json-schema" / f"v{version}.0-local-strict"
    try:
        definitions = json.loads((folder / "_definitions.json").read_text())
    except FileNotFoundError:
        raise ManifestError(f"kubernetes-validate has no schemas for Kubernetes {version}") from None
    definitions["$defs"]["io.k8s.apimachinery.pkg.api.resource.Quantity"] = QUANTITY
    return Resource.from_contents(definitions)


@functools.cache
def _crd_validator(schema_file: str, version: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / schema_file).read_text())
    registry: Registry = _k8s_definitions(version) @ Registry()
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _where(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind', '?')} {obj.get('metadata', {}).get('name', '?')}"


def _describe(errors: list[Any]) -> str:
    return "; ".join(f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors[:5])


def validate(obj: dict[str, Any], version: str) -> None:
    """Raise :class:`ManifestError` unless ``obj`` is a valid object of its kind for Kubernetes ``version``."""
    schema_file = CRDS.get((obj.get("apiVersion"), obj.get("kind")))
    if schema_file is None:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            raise ManifestError(f"{_where(obj)}: {_describe([e])}") from None
        except (kubernetes_validate.SchemaNotFoundError, VersionNotSupportedError) as e:
            raise ManifestError(f"{_where(obj)}: {e.message}") from None
        return
    validator = _crd_validator(schema_file, version)
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    if errors:
        raise ManifestError(f"{_where(obj)}: {_describe(errors)}")


def validate_all(objs: list[dict[str, Any]], version: str) -> str:
    """Validate every object; the Kubernetes version they were checked against."""
    for obj in objs:
        validate(obj, version)
    return version
