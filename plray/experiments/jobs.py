"""The units of work of an experiment, as plain functions (no Ray here; the Ray layer calls them).

* :func:`train_cell`: obtain one cell's agent (train it, or compute the exact Q*) and write
  ``<run>/agents/<cell>/agent`` (an agent artifact) and ``<run>/agents/<cell>/result.json``.
* :func:`run_job`: invert one agent with one method, evaluate the world model against the true
  dynamics and write ``<run>/models/<job>`` (the world-model artifact) and
  ``<run>/extractions/<job>/result.json``. ``<run>/models`` is a model registry directory:
  ``plray serve --models <run>/models`` serves every extracted world model.

Both are idempotent: a unit whose ``result.json`` exists returns it without running again, and
every file is written under a temporary name and renamed into place, so an interrupted run leaves
either a finished result or none. Iterative methods also keep ``checkpoint.npz`` next to the
result while they run, and a retried job resumes from it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from plray.experiments.schema import Cell, ExperimentConfig
from plray.utils.io import atomic_write_json, finite_or_none

Say = Callable[[str], None]

AGENTS_DIR = "agents"
EXTRACTIONS_DIR = "extractions"
MODELS_DIR = "models"
"""World-model artifacts, laid out as a registry directory (``<models>/<id>/manifest.json``)."""


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


def gamma_of(cfg: ExperimentConfig) -> float:
    if cfg.gamma is not None:
        return cfg.gamma
    from plray.envs.registry import TASKS

    return float(TASKS[cfg.task]().gamma)


# ====================================================================== agents
def fourrooms_goals(cfg: ExperimentConfig, cell: Cell) -> tuple[Any, Any]:
    """The FourRooms MDP and the cell's goal set."""
    from plray.envs.fourrooms import FourRooms

    mdp = FourRooms(cell.variant)
    goals = mdp.goal_set(
        cell.num_goals, cell.goal_family, placement=cell.placement, seed=cell.seed, noise=cfg.goals.noise
    )
    return mdp, goals


def fourrooms_task_kwargs(cfg: ExperimentConfig, cell: Cell) -> dict[str, Any]:
    """The :class:`plray.envs.fourrooms.FourRoomsTask` arguments of a cell (for manifests and Serve)."""
    return {
        "variant": cell.variant,
        "num_goals": cell.num_goals,
        "goal_family": cell.goal_family,
        "placement": cell.placement,
        "seed": cell.seed,
        "noise": cfg.goals.noise,
    }


def q_error(Q: np.ndarray, Q_star: np.ndarray) -> dict[str, float]:
    """Q_NMSE (MSE over Var Q*), Q_MSE and max |Q − Q*| of a table against the exact one."""
    mse = float(((Q - Q_star) ** 2).mean())
    var = float(Q_star.var())
    return {
        "q_mse": mse,
        "q_nmse": mse / var if var > 0 else float("nan"),
        "q_max_error": float(np.abs(Q - Q_star).max()),
    }


def _train_fourrooms(cfg: ExperimentConfig, cell: Cell, out: Path, say: Say) -> dict[str, Any]:
    from dataclasses import replace

    from plray.agents.tabular import TabularQResult, save_tabular_agent, train_tabular_q
    from plray.evaluation import value_iteration
    from plray.experiments.fourrooms import perturb_q

    mdp, goals = fourrooms_goals(cfg, cell)
    gamma = gamma_of(cfg)
    Q_star = value_iteration(mdp.kernel, goals.rewards, goals.dones, gamma).Q
    start = time.perf_counter()
    if cfg.agent.kind == "exact":
        Q = perturb_q(Q_star, cfg.agent.exact_noise, np.random.default_rng([cell.seed, 2]))
        visits = np.zeros(Q.shape[:2], dtype=np.int64)
        result = TabularQResult(Q=Q, visits=visits, env_steps=0, seconds=0.0, steps_per_s=0.0)
    else:
        tcfg = replace(cfg.tabular_config(cell.variant), seed=cell.seed)
        total = tcfg.env_steps
        last = [0.0]

        def progress(step: int) -> None:
            now = time.perf_counter()
            if now - last[0] > 10:
                last[0] = now
                say(f"  {cell.key}: {step:,}/{total:,} env steps")

        result = train_tabular_q(mdp, goals, gamma, tcfg, progress=progress, snapshot_steps=snapshot_steps(cfg, cell))
    metadata = {"cell": cell.as_dict(), "experiment": cfg.name, "agent_kind": cfg.agent.kind}
    config = None if cfg.agent.kind == "exact" else tcfg
    save_tabular_agent(out / "agent", result, cell.variant, goals, gamma, metadata, config=config)
    for step, Q_step in result.snapshots.items():
        snap = TabularQResult(
            Q=Q_step, visits=result.snapshot_visits[step], env_steps=step, seconds=0.0, steps_per_s=0.0
        )
        save_tabular_agent(
            out / "snapshots" / f"step-{step}", snap, cell.variant, goals, gamma, metadata, config=config
        )
    return {
        **q_error(result.Q, Q_star),
        "env_steps": int(result.env_steps),
        "train_seconds": time.perf_counter() - start,
    }


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


def rllib_agent_config(cfg: ExperimentConfig, cell: Cell) -> Any:
    """The :class:`plray.agents.config.AgentConfig` of a cell (``cfg`` after :func:`embed_agent_config`)."""
    from plray.agents.config import AgentConfig
    from plray.utils.schema import ConfigError, from_mapping

    if cfg.agent.rllib.config:
        raise ConfigError("agent.rllib.config: the agent config file must be embedded before training")
    data = dict(cfg.agent.rllib.overrides) | {
        "task": cfg.task,
        "name": cell.key,
        "seed": cell.seed,
        "task_kwargs": {"num_goals": cell.num_goals, "placement": cell.placement, "seed": cell.seed},
    }
    if cfg.gamma is not None:
        data["gamma"] = cfg.gamma
    try:
        return from_mapping(AgentConfig, data)
    except ConfigError as exc:
        raise ConfigError(f"agent.rllib: {exc}") from exc


def _train_rllib(cfg: ExperimentConfig, cell: Cell, out: Path) -> dict[str, Any]:
    from plray.agents.train import train

    agent_cfg = rllib_agent_config(cfg, cell)
    start = time.perf_counter()
    metrics = train(agent_cfg, out, resume=True, progress=False)
    keep = ("env_steps", "success_rate", "mean_return", "env_steps_per_s_this_call")
    return {
        **{k: metrics[k] for k in keep if k in metrics},
        "train_seconds": time.perf_counter() - start,
    }


def train_cell(cfg: ExperimentConfig, cell: Cell, run_dir: Path, *, say: Say = _quiet) -> dict[str, Any]:
    """Obtain one cell's agent and write its artifact and result (see the module docstring).

    Returns:
        the cell's result: the cell fields, ``agent`` (artifact path), the agent's quality (Q error
        against Q* for FourRooms; success rate for RLlib agents), env steps, seconds, node.
    """
    out = Path(run_dir) / AGENTS_DIR / cell.key
    done = read_result(out / "result.json")
    if done is not None:
        return done
    out.mkdir(parents=True, exist_ok=True)
    metrics = _train_fourrooms(cfg, cell, out, say) if cfg.task == "fourrooms" else _train_rllib(cfg, cell, out)
    result = {"cell": cell.key, **cell.as_dict(), "agent": str(out / "agent"), **metrics, **node_info()}
    atomic_write_json(out / "result.json", result)
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
        return Path(run_dir) / EXTRACTIONS_DIR / self.key

    def agent_dir(self, run_dir: Path) -> Path:
        base = Path(run_dir) / AGENTS_DIR / self.cell.key
        return base / "snapshots" / f"step-{self.step}" if self.step else base / "agent"

    def model_dir(self, run_dir: Path) -> Path:
        """The world-model artifact, under the model id ``<job key>`` of ``<run>/models``."""
        return Path(run_dir) / MODELS_DIR / self.key

    def as_dict(self) -> dict[str, Any]:
        return {"cell": self.cell.as_dict(), "method": self.method, "goals": self.goals, "step": self.step}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ExtractionJob:
        return ExtractionJob(Cell(**data["cell"]), data["method"], data.get("goals"), data.get("step"))


def final_env_steps(cfg: ExperimentConfig, cell: Cell) -> int | None:
    """How long a cell's tabular agent trains (None for other agents)."""
    if cfg.task != "fourrooms" or cfg.agent.kind != "tabular-q":
        return None
    return int(cfg.tabular_config(cell.variant).env_steps)


def snapshot_steps(cfg: ExperimentConfig, cell: Cell) -> list[int]:
    """The configured agent checkpoints that fall before the end of this cell's training."""
    final = final_env_steps(cfg, cell)
    return [] if final is None else sorted({s for s in cfg.extraction.checkpoints if s < final})


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


def _sampled_to_arrays(state: dict[str, Any]) -> dict[str, np.ndarray]:
    return {
        **{k: np.asarray(state[k]) for k in ("update", "logits", "m", "v", "kernel_sum")},
        "rng": np.array(json.dumps(state["rng"])),
    }


def _sampled_from_arrays(arrays: dict[str, np.ndarray] | None) -> dict[str, Any] | None:
    if arrays is None:
        return None
    try:
        return {
            "update": int(arrays["update"]),
            **{k: arrays[k] for k in ("logits", "m", "v", "kernel_sum")},
            "rng": json.loads(str(arrays["rng"])),
        }
    except (KeyError, ValueError):
        return None


def _fourrooms_job(
    cfg: ExperimentConfig, job: ExtractionJob, run_dir: Path, cache: SourceCache
) -> tuple[Any, dict[str, Any]]:
    from plray.agents.tabular import load_tabular_agent
    from plray.core import bellman_matrix_from_q, extract
    from plray.core.worldmodel import TabularWorldModel
    from plray.evaluation import kernel_metrics, unseen_summary
    from plray.experiments.fourrooms import method_options

    cell, method = job.cell, job.method
    Q, _ = cache.get(job.agent_dir(run_dir), load_tabular_agent)
    mdp, goals = fourrooms_goals(cfg, cell)
    gamma = gamma_of(cfg)
    used = np.arange(goals.num_goals)
    if job.goals:
        used = np.sort(np.random.default_rng([cell.seed, 7]).choice(goals.num_goals, job.goals, replace=False))
    Q = Q[:, :, used]
    rewards, dones, goal_states = goals.rewards[:, used], goals.dones[:, used], goals.states[used]
    M = bellman_matrix_from_q(Q, rewards, gamma, dones)
    name, options = method_options(mdp, method, goal_states, project=True)
    if method == "sampled":
        ckpt = job.out_dir(run_dir) / "checkpoint.npz"
        options |= {
            "num_updates": cfg.extraction.sampled_updates,
            "seed": cell.seed,
            "state": _sampled_from_arrays(load_state(ckpt)),
            "checkpoint": lambda state: save_state(ckpt, _sampled_to_arrays(state)),
            "checkpoint_every": cfg.extraction.checkpoint_every,
        }
    ext = extract(Q, M, name, gamma=gamma, **options)
    model = TabularWorldModel(ext.kernel)
    P = mdp.kernel
    diag = ext.diagnostics
    metrics: dict[str, Any] = {**kernel_metrics(model.kernel(), P)}
    if diag is not None:
        metrics |= {"rank": diag.rank, "sigma_min": diag.sigma_min, "column_gap": diag.column_gap}
    if "resumed_from" in ext.info:
        metrics["resumed_from"] = int(ext.info["resumed_from"])
    if cfg.evaluation.unseen:
        metrics |= unseen_summary(model.kernel(), mdp, gamma)
    manifest = {
        "task": "fourrooms",
        "task_kwargs": fourrooms_task_kwargs(cfg, cell),
        "variant": cell.variant,
        "method": method,
        "goals": goal_states.tolist(),
        "goal_family": goals.family,
        "gamma": gamma,
        "agent": str(job.agent_dir(run_dir)),
        "metrics": finite_or_none({k: v for k, v in metrics.items() if k != "unseen"}),
    }
    return (model, manifest), metrics


def _continuous_job(
    cfg: ExperimentConfig, job: ExtractionJob, run_dir: Path, cache: SourceCache
) -> tuple[Any, dict[str, Any]]:
    from plray.agents.qsource import load_qsource
    from plray.core.neural import Checkpointing
    from plray.experiments.extraction import ExtractionConfig, run_evaluation, run_extraction

    source = cache.get(job.agent_dir(run_dir), load_qsource)
    out = job.out_dir(run_dir)
    ecfg = ExtractionConfig(
        task=cfg.task,
        agent=str(job.agent_dir(run_dir)),
        method=job.method,  # type: ignore[arg-type]
        p_learning=dict(cfg.extraction.neural),
        seed=job.cell.seed,
    )
    ckpt = out / "checkpoint.npz"
    state = load_state(ckpt)
    checkpointing = Checkpointing(
        save=lambda arrays: save_state(ckpt, arrays), every=cfg.extraction.checkpoint_every, state=state
    )
    summary = run_extraction(ecfg, out, source=source, checkpoint=checkpointing)
    metrics: dict[str, Any] = {
        "wm_nmse": summary["wm_nmse"],
        "wm_mse": summary["wm_mse_state"],
        "p_learning_steps": summary["steps"],
        "resumed_from": int(state["step"]) if state is not None else 0,
    }
    if cfg.evaluation.unseen:
        ev = run_evaluation(
            Path(summary["artifact"]),
            out / "evaluation",
            resolution=cfg.evaluation.resolution,
            num_starts=cfg.evaluation.num_starts,
            seed=job.cell.seed,
        )
        rows = ev.get("unseen", [])
        return_wm = float(np.mean([r["return_wm"] for r in rows]))
        return_opt = float(np.mean([r["return_opt"] for r in rows]))
        metrics |= {
            "return_wm": return_wm,
            "return_opt": return_opt,
            "return_ratio": return_wm / return_opt if return_opt else float("nan"),
            "unseen": {r["goal"]: {"return_wm": r["return_wm"], "return_opt": r["return_opt"]} for r in rows},
        }
    # publish the artifact under the run's model registry (a rerun after a crash replaces it)
    target = job.model_dir(run_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(Path(summary["artifact"]), target)
    return None, metrics


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

    out = job.out_dir(run_dir)
    done = read_result(out / "result.json")
    if done is not None:
        return done
    out.mkdir(parents=True, exist_ok=True)
    cache = cache or SourceCache()
    start = time.perf_counter()
    if cfg.task == "fourrooms":
        (model, manifest), metrics = _fourrooms_job(cfg, job, run_dir, cache)
        save_world_model(job.model_dir(run_dir), model, manifest)
    else:
        _, metrics = _continuous_job(cfg, job, run_dir, cache)
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
        "world_model": str(job.model_dir(run_dir)),
        "seconds": time.perf_counter() - start,
        **node_info(),
    }
    atomic_write_json(out / "result.json", result)
    (out / "checkpoint.npz").unlink(missing_ok=True)
    return result
