"""World-model artifacts: save and load any :class:`~plray.core.worldmodel.WorldModel`.

The one place that knows every model type: :func:`model_from_arrays` rebuilds a model from its
``spec()`` and ``to_arrays()`` output, :func:`save_world_model` / :func:`load_world_model` write and
read the artifact (:mod:`plray.utils.artifact`: JSON manifest + ``.npz``, checksummed, never a
pickle).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plray.core.ensemble import PointEnsemble, TabularEnsemble
from plray.core.worldmodel import TabularWorldModel, WorldModel
from plray.core.worldmodel_gaussian import GaussianWorldModel
from plray.core.worldmodel_neural import NeuralWorldModel
from plray.utils.artifact import ArtifactError, load_artifact, save_artifact
from plray.utils.validation import PlrayInputError

MODEL_TYPES: tuple[str, ...] = ("tabular", "deterministic", "gaussian", "ensemble")
"""``spec()["model_type"]`` of the models an artifact can hold."""


def model_from_arrays(spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> WorldModel:
    """Rebuild a model of any type from its ``spec()`` and ``to_arrays()`` output."""
    kind = spec.get("model_type")
    if kind == "tabular":
        if "members" in arrays:
            return TabularEnsemble.from_arrays(spec, arrays)
        return TabularWorldModel.from_arrays(spec, arrays)
    if kind == "ensemble":
        return _point_ensemble(spec, arrays)
    if kind == "deterministic":
        return NeuralWorldModel.from_arrays(spec, arrays)
    if kind == "gaussian":
        return GaussianWorldModel.from_arrays(spec, arrays)
    raise PlrayInputError(f"model_type: unknown {kind!r}; choose one of {', '.join(MODEL_TYPES)}")


def _point_ensemble(spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> PointEnsemble:
    """A :class:`PointEnsemble` from its members' specs and their arrays (prefixed ``m<i>/``)."""
    specs = spec.get("members")
    if not isinstance(specs, list) or not specs:
        raise PlrayInputError("ensemble: manifest lists no members")
    members = []
    for i, member_spec in enumerate(specs):
        if not isinstance(member_spec, dict) or member_spec.get("model_type") == "ensemble":
            raise PlrayInputError(f"ensemble: member {i} has an invalid description")
        prefix = f"m{i}/"
        own = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        members.append(model_from_arrays(member_spec, own))
    extra = sorted(k for k in arrays if not any(k.startswith(f"m{i}/") for i in range(len(specs))))
    if extra:
        raise PlrayInputError(f"ensemble: arrays belong to no member: {extra[:3]}")
    return PointEnsemble(members)


def save_world_model(out_dir: Any, model: WorldModel, manifest: dict[str, Any]) -> Any:
    """Write a world-model artifact (kind ``world-model``): the model's spec and arrays plus ``manifest``.

    ``manifest`` carries the provenance: task, goals, method, agent, metrics.
    """
    return save_artifact(out_dir, "world-model", model.to_arrays(), {**manifest, "model": model.spec()})


def load_world_model(path: Any) -> tuple[WorldModel, dict[str, Any]]:
    """Read and verify a world-model artifact: (model, manifest). Nothing is unpickled."""
    manifest, arrays = load_artifact(path, kind="world-model")
    spec = manifest.get("model")
    if not isinstance(spec, dict):
        raise ArtifactError(f"{path}: manifest has no 'model' description")
    try:
        return model_from_arrays(spec, arrays), manifest
    except PlrayInputError as exc:
        raise ArtifactError(f"{path}: {exc}") from exc
