"""Complete validation of a world-model artifact before it is served.

:func:`plray.core.worldmodel.load_world_model` checks format, checksum and tensor shapes; a served
artifact must also never make a request fail later. This module adds, for the registry:

- :func:`check_tensor_sizes` (before anything is decompressed): every ``.npz`` member's size from its
  zip header (``file_size``) is bounded by what the manifest declares for it (shape × itemsize plus
  the ``.npy`` header) and by a total cap, so a small compressed member that inflates to hundreds of
  MB is refused without being inflated.
- :func:`check_manifest`: the fields the API reads (``task``, ``gamma``, ``model``) have usable types.
- :func:`check_model`: index ranges (``angle_dims`` within ``[0, state_dim)``), finite kernels with
  rows on the probability simplex (within :data:`SIMPLEX_TOL`), and one probe prediction.

Every failure is an :class:`~plray.utils.artifact.ArtifactError` naming the field and what is wrong.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from plray.core.worldmodel import TabularWorldModel, WorldModel
from plray.utils.artifact import TENSORS, ArtifactError

SIMPLEX_TOL = 1e-6
"""Largest |row sum − 1| (and most negative entry) accepted in a finite model's kernel."""
NPY_HEADER_SLACK = 4096
"""Bytes a ``.npy`` member may hold beyond its data (its header)."""
DEFAULT_MAX_TENSOR_BYTES = 1 << 30
"""Default cap on the decompressed size of one artifact's tensors."""


def _declared_bytes(spec: Any, name: str) -> int:
    if not isinstance(spec, dict) or not isinstance(spec.get("shape"), list):
        raise ArtifactError(f"manifest: tensors[{name!r}] has no shape list")
    shape = spec["shape"]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise ArtifactError(f"manifest: tensors[{name!r}].shape {shape!r} is not a list of non-negative ints")
    try:
        itemsize = np.dtype(str(spec.get("dtype"))).itemsize
    except TypeError as exc:
        raise ArtifactError(f"manifest: tensors[{name!r}].dtype {spec.get('dtype')!r} is not a dtype") from exc
    return math.prod(shape) * itemsize


def check_tensor_sizes(directory: Path, manifest: dict[str, Any], cap: int = DEFAULT_MAX_TENSOR_BYTES) -> None:
    """Refuse ``tensors.npz`` members that would inflate beyond their declared size or ``cap`` in total.

    Reads only the zip's central directory; nothing is decompressed.
    """
    spec = manifest.get("tensors")
    if not isinstance(spec, dict):
        raise ArtifactError("manifest: 'tensors' is not an object")
    path = directory / TENSORS
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise ArtifactError(f"{TENSORS}: not a readable zip archive ({exc})") from exc
    total = 0
    for info in infos:
        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if name not in spec:
            raise ArtifactError(f"{TENSORS}: member {info.filename!r} is not listed in the manifest")
        allowed = _declared_bytes(spec[name], name) + NPY_HEADER_SLACK
        if info.file_size > allowed:
            raise ArtifactError(
                f"{TENSORS}: member {info.filename!r} inflates to {info.file_size:,} bytes, more than the "
                f"{allowed:,} its declared shape and dtype allow"
            )
        total += info.file_size
    if total > cap:
        raise ArtifactError(f"{TENSORS}: tensors inflate to {total:,} bytes, over this server's cap of {cap:,}")


def check_manifest(manifest: dict[str, Any]) -> None:
    """Types of the manifest fields the API reads: ``task`` (str/None), ``gamma`` (in (0, 1]), ``model``."""
    task = manifest.get("task")
    if task is not None and not isinstance(task, str):
        raise ArtifactError(f"manifest: task {task!r} is not a string")
    if not isinstance(manifest.get("task_kwargs") or {}, dict):
        raise ArtifactError("manifest: task_kwargs is not an object")
    gamma = manifest.get("gamma")
    if gamma is not None:
        if isinstance(gamma, bool) or not isinstance(gamma, int | float) or not math.isfinite(gamma):
            raise ArtifactError(f"manifest: gamma {gamma!r} is not a finite number")
        if not 0.0 < float(gamma) <= 1.0:
            raise ArtifactError(f"manifest: gamma {gamma!r} is not in (0, 1]")
    if not isinstance(manifest.get("model"), dict):
        raise ArtifactError("manifest: 'model' is not an object")


def _check_kernel(model: TabularWorldModel) -> None:
    P = model.P
    if not np.isfinite(P).all():
        raise ArtifactError("kernel: holds NaN or infinity")
    low = float(P.min()) if P.size else 0.0
    if low < -SIMPLEX_TOL:
        raise ArtifactError(f"kernel: has negative entries (down to {low:.3g}); rows must be distributions")
    sums = P.sum(axis=-1)
    worst = float(np.abs(sums - 1.0).max()) if sums.size else 0.0
    if worst > SIMPLEX_TOL:
        s, a = np.unravel_index(int(np.abs(sums - 1.0).argmax()), sums.shape)
        raise ArtifactError(
            f"kernel: row (state {s}, action {a}) sums to {float(sums[s, a]):.6g}, not 1 (tolerance {SIMPLEX_TOL:g})"
        )


def check_model(model: WorldModel) -> None:
    """Index ranges, kernel rows on the simplex, and one probe prediction that must give finite numbers."""
    d = int(model.state_dim)
    dims = list(model.angle_dims)
    if not all(isinstance(i, int | np.integer) and not isinstance(i, bool) and 0 <= int(i) < d for i in dims):
        raise ArtifactError(f"model: angle_dims {dims!r} must be distinct integers in [0, {d})")
    if len(set(int(i) for i in dims)) != len(dims):
        raise ArtifactError(f"model: angle_dims {dims!r} repeats an index")
    if isinstance(model, TabularWorldModel):
        _check_kernel(model)
    states = np.zeros((1, d))
    actions = np.zeros(1, dtype=np.int64) if model.discrete_actions else np.zeros((1, model.action_dim))
    out = np.asarray(model.predict(states, actions))
    if out.shape != (1, d) or not np.isfinite(out).all():
        raise ArtifactError(f"model: a probe prediction gave shape {out.shape} or non-finite numbers")
