"""Agent artifacts: what ``plray train`` leaves for P-learning to read (kind ``"agent"``).

The format is plray's one artifact format (:mod:`plray.utils.artifact`): ``manifest.json``
(task and its arguments, discount, algorithm, network configuration, training metrics, library
versions, checksums, and the training goals: :func:`goal_set_record`) and ``tensors.npz`` (state
dicts as plain arrays, named ``<component>/<parameter>``), written atomically and verified on load; never unpickled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from plray.envs.base import GoalTask
from plray.utils.artifact import ArtifactError, load_artifact, save_artifact, sha256_file

__all__ = ["ArtifactError", "goal_set_record", "load_agent", "save_agent", "sha256_file"]


def goal_set_record(task: GoalTask) -> dict[str, Any]:
    """The manifest fields that record an agent's training goals (JSON-ready).

    Returns:
        ``{"goal_set": spec | None, "goal_kind": str | None, "training_goals": G lists of k floats,
        "unseen_overlap": names | None}``: the goal set's plain-dict spec
        (:meth:`~plray.envs.goalsets.GoalSet.to_spec`; None for a task's built-in set), its goal
        kind, the goals array (G, k) the agent was trained and evaluated on (with a distribution:
        the finite set drawn from it, episodes sampled the rest), and the unseen goals whose
        success regions those goals meet (None where the task declares no goal kinds; a
        goal-set-built set is always ``[]``; the paper's velocity set gives ``["fast_car"]``).
        A mixture (:class:`~plray.envs.goalsets.GoalMixture`) records ``goal_kind`` ``"mixture"``,
        its spec with every part, the goals ``[target, one-hot]`` (G, k + K), the unseen goals any
        part meets, and ``mixture_kinds``: the kinds in one-hot order.
    """
    mix = task.goal_mixture
    if mix is not None:
        return {
            "goal_set": mix.to_spec(),
            "goal_kind": mix.kind,
            "mixture_kinds": list(mix.kinds),
            "training_goals": np.asarray(task.training_goals, dtype=np.float64).tolist(),
            "unseen_overlap": mix.overlaps(task),
        }
    gs = task.goal_set
    kinds = task.goal_kinds
    name = gs.kind if gs is not None else getattr(task, "goal_kind", None)
    if name is None and len(kinds) == 1:
        name = next(iter(kinds))
    goals = np.asarray(task.training_goals, dtype=np.float64)
    kind = kinds.get(name) if name is not None else None
    return {
        "goal_set": None if gs is None else gs.to_spec(),
        "goal_kind": name,
        "training_goals": goals.tolist(),
        "unseen_overlap": None if kind is None else kind.overlaps(goals),
    }


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
