"""What the API says about a model: typed summaries and manifests without server paths."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from plray.core.worldmodel import TabularWorldModel
from plray.serve.errors import ApiError
from plray.serve.registry import LoadedModel

_PATH_KEYS = ("agent", "world_model", "members", "path", "source", "artifact", "models", "run_dir")
_ABS_PATH = re.compile(r"^(/|~/|[A-Za-z]:[\\/]|\\\\|[A-Za-z][A-Za-z0-9+.-]*://)")


def _is_path(value: Any) -> bool:
    """A server-side location: an absolute path, a home path, a URI, or a list of them."""
    if isinstance(value, str):
        return bool(_ABS_PATH.match(value))
    if isinstance(value, list) and value:
        return all(_is_path(v) for v in value)
    return False


def public(value: Any, key: str | None = None) -> Any:
    """A manifest without server-side locations: keys whose values are paths (or named like paths) dropped."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if _is_path(v) or (k in _PATH_KEYS and (isinstance(v, str) or _is_path(v) or isinstance(v, list))):
                continue
            out[k] = public(v, k)
        return out
    if isinstance(value, list):
        return [public(v) for v in value if not _is_path(v)]
    return value


def _goal_meaning(task: Any) -> str:
    if hasattr(task, "goals") and hasattr(task, "mdp"):
        return (
            f"one_hot(goal index, {task.goal_dim}) into the task's {task.goal_dim} training goals "
            "(a goal of kind `task`); a cell as goal: kind `region`, target [state index], tolerance 0.5"
        )
    mixture = getattr(task, "goal_mixture", None)
    if mixture is not None:
        kinds = list(mixture.kinds)
        return (
            f"a goal mixture: g = [target ({task.goal_dim - len(kinds)}), one_hot(kind, {len(kinds)})] with kinds "
            f"{kinds} in that order; s reaches g when its achieved goal of g's kind lies within that kind's "
            "tolerance of the target (angle kinds: wrapped differences)"
        )
    return (
        f"the target of the task's achieved goal: a state s reaches g when ‖achieved_goal(s) − g‖ < "
        f"{float(getattr(task, 'goal_tolerance', 0.0)):g} (the task's goal_tolerance)"
    )


_TASK_FIELDS = ("state_low", "state_high", "action_low", "action_high", "goal_dim", "goal_meaning", "cells")


def summary(entry: LoadedModel) -> dict[str, Any]:
    """The registry's summary plus what the model's task knows: state box, action bounds, goal_dim, cell layout."""
    out = entry.summary()
    out.update(dict.fromkeys(_TASK_FIELDS))
    try:
        task = entry.task()
    except ApiError:
        return out
    box = lambda x: None if x is None else [float(v) for v in np.asarray(x).reshape(-1)]  # noqa: E731
    out.update(
        state_low=box(getattr(task, "state_low", None)),
        state_high=box(getattr(task, "state_high", None)),
        goal_dim=int(task.goal_dim),
        goal_meaning=_goal_meaning(task),
    )
    if not entry.model.discrete_actions:
        out.update(action_low=box(task.action_low), action_high=box(task.action_high))
    cells = getattr(getattr(task, "mdp", None), "cells", None)
    if cells is not None and len(cells) == out.get("num_states"):
        out["cells"] = [[int(r), int(c)] for r, c in np.asarray(cells)]
    return out


def kernel_facts(model: TabularWorldModel) -> dict[str, Any]:
    P = model.P
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(P > 0, P * np.log(P), 0.0).sum(-1)
    return {
        "num_states": model.num_states,
        "num_actions": model.num_actions,
        "deterministic_fraction": float((P.max(-1) > 1 - 1e-9).mean()),
        "mean_row_entropy": float(ent.mean()),
    }
