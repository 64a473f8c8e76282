"""The units of work of an experiment, as plain functions (no Ray here; the Ray layer calls them).

* :func:`train_cell`: obtain one cell's agent (the task's :meth:`TaskPipeline.train`) and write
  its agent artifact and result (``agents/<cell>/``, see :class:`~plray.experiments.rundir.RunLayout`).
* :func:`run_job`: invert one agent with one method (the task's :meth:`TaskPipeline.extract`),
  save the world model it returns under ``models/<job>`` and the job's result under
  ``extractions/<job>/``. ``<run>/models`` is a model registry directory: ``plray serve --models
  <run>/models`` serves every extracted world model.

Both are idempotent: a unit whose result exists returns it without running again, and every file
is written under a temporary name and renamed into place, so an interrupted run leaves either a
finished result or none. Iterative methods also keep a checkpoint next to the result while they
run, and a retried job resumes from it. Neither asks which task it runs: the task's pipeline
(:data:`plray.experiments.tasks.PIPELINES`) does what differs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plray.experiments.continuous_task import rllib_agent_config
from plray.experiments.rundir import RunLayout
from plray.experiments.schema import Cell, ExperimentConfig
from plray.experiments.taskapi import checkpoints_before, gamma_of, load_state, save_state
from plray.experiments.tasks import pipeline_for
from plray.utils.io import atomic_write_json

__all__ = [
    "ExtractionJob",
    "SourceCache",
    "embed_agent_config",
    "final_env_steps",
    "gamma_of",
    "jobs_for",
    "load_state",
    "node_info",
    "read_result",
    "rllib_agent_config",
    "run_job",
    "save_state",
    "snapshot_steps",
    "train_cell",
]

Say = Callable[[str], None]


def _quiet(_msg: str) -> None:
    return None


def read_result(path: Path) -> dict[str, Any] | None:
    """A finished unit's ``result.json``, or None if it is absent (or unreadable: the unit reruns)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def node_info() -> dict[str, Any]:
    """Where a unit ran: host, pid and (inside Ray) the node id, so reports show the spread."""
    info: dict[str, Any] = {"host": os.uname().nodename, "pid": os.getpid()}
    try:
        import ray

        if ray.is_initialized():
            info["node_id"] = ray.get_runtime_context().get_node_id()
    except Exception:  # pragma: no cover - Ray missing or not in a Ray process
        pass
    return info


# ====================================================================== agents
def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def embed_agent_config(cfg: ExperimentConfig, base_dir: Path | None = None) -> ExperimentConfig:
    """Read ``agent.rllib.config`` (relative to ``base_dir``) into ``agent.rllib.overrides``.

    The result names no file: trials on any node of a cluster, and a resume from the run
    directory's own ``config.yaml``, need nothing but the experiment config itself.
    """
    from dataclasses import replace

    import yaml

    from plray.utils.schema import ConfigError

    rl = cfg.agent.rllib
    if cfg.agent.kind != "rllib" or not rl.config:
        return cfg
    path = Path(rl.config)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"agent.rllib.config: cannot read {path} ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"agent.rllib.config: {path} does not hold a mapping of agent settings")
    embedded = replace(rl, config="", overrides=_merge(data, rl.overrides))
    return replace(cfg, agent=replace(cfg.agent, rllib=embedded))


def train_cell(cfg: ExperimentConfig, cell: Cell, run_dir: Path, *, say: Say = _quiet) -> dict[str, Any]:
    """Obtain one cell's agent and write its artifact and result (see the module docstring).

    Returns:
        the cell's result: the cell fields, ``agent`` (artifact path), the agent's quality (Q error
        against Q* for FourRooms; success rate for RLlib agents), env steps, seconds, node.
    """
    layout = RunLayout(run_dir)
    done = read_result(layout.cell_result(cell.key))
    if done is not None:
        return done
    layout.cell_dir(cell.key).mkdir(parents=True, exist_ok=True)
    metrics = pipeline_for(cfg.task).train(cfg, cell, layout, say)
    result = {"cell": cell.key, **cell.as_dict(), "agent": str(layout.agent_dir(cell.key)), **metrics, **node_info()}
    atomic_write_json(layout.cell_result(cell.key), result)
    return result


# ====================================================================== extraction jobs
@dataclass(frozen=True)
class ExtractionJob:
    """One extraction: a cell's agent (or one of its training snapshots), a goal subset, a method.

    Attributes:
        cell: whose agent.
        method: the extraction method.
        goals: extract from a seeded random subset of this many of the agent's goals (None: all).
        step: extract from the agent's snapshot at this many env steps (None: the final agent).
    """

    cell: Cell
    method: str
    goals: int | None = None
    step: int | None = None

    @property
    def key(self) -> str:
        suffix = (f"--k{self.goals}" if self.goals else "") + (f"--at{self.step}" if self.step else "")
        return f"{self.cell.key}--{self.method}{suffix}"

    @property
    def ensemble_key(self) -> str:
        """The key without the seed: jobs that differ only in seed form one ensemble."""
        return self.key.replace(self.cell.key, self.cell.group, 1)

    def out_dir(self, run_dir: Path) -> Path:
        """The job's folder: its result, checkpoint and reports."""
        return RunLayout(run_dir).job_dir(self.key)

    def agent_dir(self, run_dir: Path) -> Path:
        """The agent artifact it inverts (the cell's final agent or a training snapshot)."""
        return RunLayout(run_dir).agent_dir(self.cell.key, self.step)

    def model_dir(self, run_dir: Path) -> Path:
        """The world-model artifact, under the model id ``<job key>`` of ``<run>/models``."""
        return RunLayout(run_dir).model_dir(self.key)

    def as_dict(self) -> dict[str, Any]:
        return {"cell": self.cell.as_dict(), "method": self.method, "goals": self.goals, "step": self.step}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ExtractionJob:
        return ExtractionJob(Cell(**data["cell"]), data["method"], data.get("goals"), data.get("step"))


def final_env_steps(cfg: ExperimentConfig, cell: Cell) -> int | None:
    """How long a cell's agent trains, when the config fixes it (tabular agents; None for others)."""
    return pipeline_for(cfg.task).final_env_steps(cfg, cell)


def snapshot_steps(cfg: ExperimentConfig, cell: Cell) -> list[int]:
    """The configured agent checkpoints that fall before the end of this cell's training."""
    return checkpoints_before(cfg.extraction.checkpoints, final_env_steps(cfg, cell))


def jobs_for(cfg: ExperimentConfig, cells: list[Cell]) -> list[ExtractionJob]:
    """Every (cell, method) pair, with every smaller goal subset and earlier agent checkpoint,
    grouped by agent so a worker reuses each loaded agent."""
    jobs = []
    for cell in cells:
        subsets = [None, *sorted({k for k in cfg.extraction.goal_subsets if k < cell.num_goals})]
        for m in cfg.extraction.methods:
            jobs += [ExtractionJob(cell, m, goals=k) for k in subsets]
        for step in snapshot_steps(cfg, cell):
            jobs += [ExtractionJob(cell, m, step=step) for m in cfg.extraction.methods]
    return jobs


class SourceCache:
    """Loaded agents by artifact path, so a worker reads each agent once for all its jobs."""

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self._items: dict[str, Any] = {}
        self.loads = 0

    def get(self, path: Path, load: Callable[[Path], Any]) -> Any:
        key = str(path)
        if key in self._items:
            self._items[key] = self._items.pop(key)  # most recent last
            return self._items[key]
        value = load(path)
        self.loads += 1
        self._items[key] = value
        while len(self._items) > self.capacity:
            self._items.pop(next(iter(self._items)))
        return value


def run_job(
    cfg: ExperimentConfig,
    job: ExtractionJob,
    run_dir: Path,
    cache: SourceCache | None = None,
) -> dict[str, Any]:
    """Run (or return the finished result of) one extraction job; see the module docstring.

    Args:
        cfg: the experiment.
        job: which agent and method.
        run_dir: the run directory.
        cache: loaded agents to reuse.

    Returns:
        the job's result: cell fields, method, kernel or WM errors, R_WM / R*, seconds, node.
    """
    from plray.core.model_io import save_world_model

    layout = RunLayout(run_dir)
    done = read_result(layout.job_result(job.key))
    if done is not None:
        return done
    layout.job_dir(job.key).mkdir(parents=True, exist_ok=True)
    cache = cache or SourceCache()
    start = time.perf_counter()
    extraction = pipeline_for(cfg.task).extract(cfg, job, layout, cache)
    save_world_model(layout.model_dir(job.key), extraction.model, extraction.manifest)
    metrics = dict(extraction.metrics)
    if "return_ratio" in metrics:
        metrics["quasi_optimal"] = bool(metrics["return_ratio"] >= 1.0 - cfg.evaluation.within)
    result = {
        "job": job.key,
        "cell": job.cell.key,
        "group": job.cell.group,
        "ensemble_key": job.ensemble_key,
        **job.cell.as_dict(),
        "method": job.method,
        "goals_used": job.goals or job.cell.num_goals,
        "agent_steps": job.step or final_env_steps(cfg, job.cell),
        **metrics,
        "world_model": str(layout.model_dir(job.key)),
        "seconds": time.perf_counter() - start,
        **node_info(),
    }
    atomic_write_json(layout.job_result(job.key), result)
    layout.job_checkpoint(job.key).unlink(missing_ok=True)
    return result
