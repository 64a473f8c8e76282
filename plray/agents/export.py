"""The pickle-free agent artifact: what ``plray train`` leaves for P-learning to read.

A directory with ``manifest.json`` (format version, task and its arguments, discount, algorithm,
network configuration, training metrics, and the SHA-256 of every tensor file) and
``weights.npz`` (the network's tensors as plain arrays, read with ``allow_pickle=False``). It is
written to a temporary directory and renamed into place, and it is refused on load when the
manifest is malformed, a checksum does not match, or a tensor is missing, extra or misshapen.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from plray.core.validation import PlrayInputError

FORMAT = "plray-agent"
FORMAT_VERSION = 1
WEIGHTS = "weights.npz"
MANIFEST = "manifest.json"


class ArtifactError(PlrayInputError):
    """An artifact is missing, corrupt, tampered with or of an unknown format."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_agent(
    out_dir: str | os.PathLike[str],
    tensors: dict[str, dict[str, torch.Tensor]],
    manifest: dict[str, Any],
) -> Path:
    """Write an agent artifact atomically.

    Args:
        out_dir: the artifact directory to create (replaced if it exists).
        tensors: per component (e.g. ``"q"``, ``"actor"``), a torch state dict.
        manifest: JSON-ready fields (task, task_kwargs, gamma, algorithm, network, metrics, ...).

    Returns:
        the artifact directory.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        arrays = {
            f"{component}/{name}": t.detach().cpu().numpy()
            for component, state in tensors.items()
            for name, t in state.items()
        }
        np.savez(tmp / WEIGHTS, **arrays)
        full = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            **manifest,
            "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
            "sha256": {WEIGHTS: sha256_file(tmp / WEIGHTS)},
        }
        (tmp / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_agent(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, dict[str, torch.Tensor]]]:
    """Read and verify an agent artifact: (manifest, per-component state dicts)."""
    root = Path(path)
    if not (root / MANIFEST).is_file():
        raise ArtifactError(f"{root}: not a plray agent artifact (no {MANIFEST})")
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{root / MANIFEST}: unreadable manifest ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{root / MANIFEST}: format is not {FORMAT!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{root / MANIFEST}: format version {manifest.get('format_version')!r} is not supported "
            f"(this plray reads version {FORMAT_VERSION})"
        )
    weights = root / WEIGHTS
    if not weights.is_file():
        raise ArtifactError(f"{root}: {WEIGHTS} is missing")
    expected = manifest.get("sha256", {}).get(WEIGHTS)
    actual = sha256_file(weights)
    if expected != actual:
        raise ArtifactError(
            f"{weights}: checksum mismatch (manifest {expected}, file {actual}); the file is corrupt or was modified"
        )
    try:
        with np.load(weights, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{weights}: unreadable tensors ({exc})") from exc
    spec = manifest.get("tensors", {})
    if set(spec) != set(arrays):
        raise ArtifactError(f"{weights}: tensors {sorted(arrays)} do not match the manifest's {sorted(spec)}")
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, arr in arrays.items():
        if list(arr.shape) != spec[key]["shape"]:
            raise ArtifactError(f"{weights}: tensor {key} has shape {arr.shape}, manifest says {spec[key]['shape']}")
        component, _, name = key.partition("/")
        out.setdefault(component, {})[name] = torch.from_numpy(np.array(arr))
    return manifest, out
