"""Shared helpers for benchmarks: machine description and result files (JSON + markdown)."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from plray import __version__
from plray.utils.io import atomic_write_json, atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"

WM_ROW_KEYS: tuple[str, ...] = ("task", "source", "algorithm", "goal_set", "num_goals", "wm_nmse")
"""What every world-model row of a ``bench/results/*.json`` carries, so figures read back by machine.

``source``: where the Q-values inverted came from (``agent``, ``oracle``: the true Q* by value
iteration, ``supervised``: the same network fitted to true transitions, a reference line; ``truth``
and ``constructed`` for the true and hand-built models some tables score); ``algorithm``: the agent's
learner (``pqn``, ``dqn``, ``sac``, ``q-learning``) or, without an agent, what produced the Q-values
(``value-iteration``) or the model (``regression``, ``dynamics``); ``goal_set``:
:func:`plray.envs.goalsets.goal_set_label`; ``wm_nmse``: None where a table's error is another
(FourRooms: kernel MSE and total variation).
"""
WM_METRIC_KEYS: tuple[str, ...] = ("wm_nmse", "kernel_mse", "tv_mean", "W2")
"""A row holding any of these reports a world model, and must carry :data:`WM_ROW_KEYS`."""


def wm_fields(task: Any, source: str, algorithm: str) -> dict[str, Any]:
    """The identifying :data:`WM_ROW_KEYS` of a row (all but ``wm_nmse``) for a continuous ``task``."""
    from plray.envs.goalsets import task_goal_set_label

    return {
        "task": task.name,
        "source": source,
        "algorithm": algorithm,
        "goal_set": task_goal_set_label(task),
        "num_goals": len(task.training_goals),
    }


def agent_fields(agent: str | Path) -> dict[str, Any]:
    """:func:`wm_fields` of a trained agent artifact (``plray train``'s), from its manifest: its task and goals."""
    import json

    from plray.envs.registry import make_task

    manifest = json.loads((Path(agent) / "manifest.json").read_text())
    task = make_task(manifest["task"], **(manifest.get("task_kwargs") or {}))
    return wm_fields(task, "agent", str(manifest.get("algorithm")))


def model_fields(world_model: str | Path) -> dict[str, Any]:
    """:func:`wm_fields` of an extracted world-model artifact: the oracle's, or its agent's (from the manifests)."""
    import json

    from plray.envs.registry import make_task

    manifest = json.loads((Path(world_model) / "manifest.json").read_text())
    agent = (manifest.get("source") or {}).get("agent")
    if isinstance(agent, str) and agent != "oracle" and (Path(agent) / "manifest.json").is_file():
        return agent_fields(agent)
    source = "oracle" if agent == "oracle" else "agent"
    return wm_fields(make_task(manifest["task"]), source, "value-iteration" if source == "oracle" else "unknown")


def check_rows(name: str, rows: Any) -> None:
    """Refuse world-model rows that lack a :data:`WM_ROW_KEYS` field (naming the file, row and keys)."""
    for i, row in enumerate(rows if isinstance(rows, list) else []):
        if isinstance(row, dict) and any(k in row for k in WM_METRIC_KEYS):
            missing = [k for k in WM_ROW_KEYS if k not in row]
            if missing:
                raise ValueError(f"bench/results/{name}.json rows[{i}]: a world-model row without {missing}")


def machine() -> dict[str, Any]:
    """Where and with what a benchmark ran."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                "plray",
                "bench",
                "configs",
                ":!bench/results",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if changed:  # code not yet committed ran: say so rather than name a commit it differs from
            commit += "+uncommitted"
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "plray": __version__,
        "commit": commit,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def write_results(name: str, payload: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write ``bench/results/<name>.json`` and ``<name>.md`` atomically (world-model rows checked first)."""
    check_rows(name, payload.get("rows"))
    json_path = atomic_write_json(RESULTS / f"{name}.json", payload)
    md_path = atomic_write_text(RESULTS / f"{name}.md", markdown)
    return json_path, md_path


def timed(fn: Any, repeats: int) -> tuple[Any, list[float]]:
    """Run ``fn`` ``repeats`` times; return the last result and every wall-clock time (s)."""
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, times
