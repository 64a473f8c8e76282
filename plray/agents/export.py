"""Agent artifacts: what ``plray train`` leaves for P-learning to read (kind ``"agent"``).

The format is plray's one artifact format (:mod:`plray.utils.artifact`): ``manifest.json``
(task and its arguments, discount, algorithm, network configuration, training metrics, library
versions, checksums) and ``tensors.npz`` (state dicts as plain arrays, named
``<component>/<parameter>``), written atomically and verified on load; never unpickled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from plray.utils.artifact import ArtifactError, load_artifact, save_artifact, sha256_file

__all__ = ["ArtifactError", "load_agent", "save_agent", "sha256_file"]


def save_agent(
    out_dir: str | os.PathLike[str],
    tensors: dict[str, dict[str, torch.Tensor]],
    manifest: dict[str, Any],
) -> Path:
    """Write an agent artifact atomically.

    Args:
        out_dir: the artifact directory to create (replaced if it exists).
        tensors: per component (e.g. ``"q"``, ``"module"``), a torch state dict.
        manifest: JSON-ready fields (task, task_kwargs, gamma, algorithm, network, metrics, ...).
    """
    arrays = {
        f"{component}/{name}": t.detach().cpu().numpy()
        for component, state in tensors.items()
        for name, t in state.items()
    }
    return save_artifact(out_dir, "agent", arrays, manifest)


def load_agent(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, dict[str, torch.Tensor]]]:
    """Read and verify an agent artifact: (manifest, per-component state dicts)."""
    manifest, arrays = load_artifact(path, kind="agent")
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, arr in arrays.items():
        component, _, name = key.partition("/")
        out.setdefault(component, {})[name] = torch.from_numpy(arr.copy())
    return manifest, out
