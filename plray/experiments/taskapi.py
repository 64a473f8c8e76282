"""The contract between the experiment pipeline and a task family: one :class:`TaskPipeline` per task.

The pipeline (:mod:`plray.experiments.jobs`, ``sweep``, ``results``, ``pipeline``) never asks which
task it runs: it asks the task's pipeline, found in :data:`plray.experiments.tasks.PIPELINES`, to

* say what a config may hold (its vocabulary: variants, goal families, agent kinds, methods, and
  :meth:`TaskPipeline.check` for the rest), which :meth:`ExperimentConfig.validate` enforces;
* train one cell's agent into the run directory (:meth:`TaskPipeline.train`);
* invert one agent, returning the world model, its manifest and its metrics
  (:meth:`TaskPipeline.extract`), which the pipeline saves under ``models/<job>``;
* combine the world models of one cell's seeds (:meth:`TaskPipeline.ensemble`), same contract;
* name the columns of its report.

Adding a task is one implementation and one entry of that registry. This module imports nothing
from the rest of the experiments package at import time, so the schema can read the registry.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from plray.core.worldmodel import WorldModel
    from plray.experiments.jobs import ExtractionJob, SourceCache
    from plray.experiments.rundir import RunLayout
    from plray.experiments.schema import Cell, ExperimentConfig

Say = Callable[[str], None]


@dataclass(frozen=True)
class Extraction:
    """What inverting an agent (or combining world models) produced: the pipeline saves ``model``
    with ``manifest`` as an artifact (:func:`plray.core.model_io.save_world_model`) and records
    ``metrics`` in the job's result.

    Attributes:
        model: the world model.
        manifest: its provenance (task, goals, method, agent, metrics), JSON-ready.
        metrics: the scores of the result row: kernel or WM errors, R_WM and R*, diagnostics.
    """

    model: WorldModel
    manifest: dict[str, Any]
    metrics: dict[str, Any]


class TaskPipeline(Protocol):
    """How ``plray run`` trains, inverts and reports agents of one task family (module docstring)."""

    variants: tuple[str, ...]
    """Allowed ``sweep[].variant`` values."""
    goal_families: tuple[str, ...]
    """Allowed reward families (``goals.family``, ``sweep[].goal_family``)."""
    placements: tuple[str, ...]
    """Allowed goal placements (``goals.placement``, ``sweep[].placement``)."""
    agent_kinds: tuple[str, ...]
    """Allowed ``agent.kind`` values."""
    methods: tuple[str, ...]
    """Allowed ``extraction.methods``."""
    max_goals: int
    """Largest |G| of a cell."""
    goal_subsets: bool
    """Whether an agent can be inverted on a subset of its goals (``extraction.goal_subsets``)."""
    mixtures: bool
    """Whether cells may be goal mixtures (``sweep[].mixture``; :class:`plray.envs.goalsets.GoalMixture`)."""
    error_metric: str
    """The result column of a world model's error (``kernel_mse``, ``wm_nmse``)."""
    summary_columns: tuple[str, ...]
    """Further columns of the report's summary table."""
    ensemble_columns: tuple[str, ...]
    """Further columns of the report's ensemble table."""
    agent_columns: tuple[str, ...]
    """Columns of the report's agent table."""
    goals_needed: bool
    """Whether the report compares the goals needed for quasi-optimal planning with the paper's."""

    def check(self, cfg: ExperimentConfig) -> None:
        """The task's own config checks (after the vocabulary's); raise ``ConfigError`` naming the field."""
        ...

    def final_env_steps(self, cfg: ExperimentConfig, cell: Cell) -> int | None:
        """How many env steps a cell's agent trains for, when the config fixes it (None otherwise)."""
        ...

    def train(self, cfg: ExperimentConfig, cell: Cell, layout: RunLayout, say: Say) -> dict[str, Any]:
        """Train (or resume) the cell's agent into ``layout.cell_dir(cell.key)``; returns its metrics."""
        ...

    def extract(self, cfg: ExperimentConfig, job: ExtractionJob, layout: RunLayout, cache: SourceCache) -> Extraction:
        """Invert the job's agent and score the world model (reports may go to the job's folder)."""
        ...

    def ensemble(self, cfg: ExperimentConfig, members: list[dict[str, Any]]) -> Extraction:
        """One ensemble of the members' world models (their result rows, ``world_model`` paths)."""
        ...


def gamma_of(cfg: ExperimentConfig) -> float:
    """The discount of the experiment's agents and evaluation: ``cfg.gamma``, else the task's."""
    if cfg.gamma is not None:
        return cfg.gamma
    from plray.envs.registry import TASKS

    return float(TASKS[cfg.task]().gamma)


def checkpoints_before(checkpoints: Sequence[int], final: int | None) -> list[int]:
    """The agent checkpoints (env steps) that fall before the end of training, sorted; none if ``final`` is None."""
    return [] if final is None else sorted({s for s in checkpoints if s < final})


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation of two equally long 1-D arrays (NaN when either is constant)."""
    from scipy.stats import spearmanr

    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(spearmanr(x, y).statistic)


def save_state(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an optimiser state (plain arrays, no pickle) atomically."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        np.savez(fh, allow_pickle=False, **arrays)
    os.replace(tmp, path)


def load_state(path: Path) -> dict[str, np.ndarray] | None:
    """A state written by :func:`save_state`, or None if there is none (or it is unreadable)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k].copy() for k in z.files}
    except (OSError, ValueError):
        return None
