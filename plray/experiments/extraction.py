"""Extraction pipeline: agent (or oracle) → neural P-learning → world-model artifact → report.

``plray extract`` runs :func:`run_extraction`; ``plray evaluate`` runs :func:`run_evaluation` on an
artifact (WM metrics against the true dynamics and unseen-goal returns). Both write a markdown
report with plots next to their JSON results.

Defaults follow the paper's released configuration except where noted
(docs/method.md#neural-deterministic-p-learning): MountainCar samples states uniformly over the
state box, 4096 per step, cosine decay, 20 000 steps; the Reacher samples reset states, 1024 per
step, linear decay, 1000 steps; both L1 loss, 2 × 256 tanh. Adam's step size is the official 1e-4
for the Reacher and 1e-3 (plray's) for MountainCar, and state inputs are rescaled to [−1, 1] over
the box (``normalize_inputs``; the official code reads raw states).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from plray.core.model_io import load_world_model, save_world_model
from plray.core.neural import Checkpointing, NeuralPConfig
from plray.core.types import ESTIMATORS, EXTRACTION_METHODS
from plray.core.worldmodel import WorldModel
from plray.core.worldmodel_gaussian import GaussianWorldModel
from plray.core.worldmodel_neural import NeuralWorldModel
from plray.envs.base import GoalTask
from plray.envs.registry import make_task
from plray.evaluation.report import markdown_table
from plray.utils.io import atomic_write_json, atomic_write_text
from plray.utils.schema import ConfigError
from plray.utils.validation import PlrayInputError

METHODS = EXTRACTION_METHODS

# per task: (state sampler, P-learning defaults, oracle grid resolution, unseen-goal grid resolution)
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "mountaincar-position": {
        "sampler": "uniform",
        "p": {"batch_size": 4096, "steps": 20_000, "schedule": "cosine", "lr": 1e-3},
        "oracle_resolution": 200,
        "unseen_resolution": 200,
        "eval_states": 250_000,
    },
    "mountaincar-velocity": {
        "sampler": "uniform",
        "p": {"batch_size": 4096, "steps": 20_000, "schedule": "cosine", "lr": 1e-3},
        "oracle_resolution": 200,
        "unseen_resolution": 200,
        "eval_states": 250_000,
    },
    "mountaincar-position-noisy": {  # not in the paper: Gaussian process noise (plray.envs.mountaincar)
        "sampler": "uniform",
        "p": {"batch_size": 4096, "steps": 20_000, "schedule": "cosine", "lr": 1e-3},
        "oracle_resolution": 200,
        "unseen_resolution": 200,
        "eval_states": 250_000,
    },
    "reacher": {
        "sampler": "reset",
        "p": {"batch_size": 1024, "steps": 1000, "schedule": "linear"},
        "oracle_resolution": 20,
        "unseen_resolution": 20,
        "eval_states": 6400,
        "wm_space": "obs",
    },
}
TASK_DEFAULTS["reacher-continuous"] = TASK_DEFAULTS["reacher"]  # not in the paper: actions uniform over [-1, 1]^2
for _name in ("mujoco-reacher", "mujoco-reacher-discrete"):  # not in the paper; no grid oracle (4-D MuJoCo)
    TASK_DEFAULTS[_name] = {k: v for k, v in TASK_DEFAULTS["reacher"].items() if k != "wm_space"}
    # 4000 steps, not the kinematic Reacher's 1000: from the PQN agent of mujoco-reacher-pqn-long
    # (4e6 steps, success 1.0) WM_NMSE was 7.9 at 1000 steps, 0.46 at 4000, 0.50 at 8000, 1.27 at
    # 30000 (docs/experiments.md, "World models from continuous-action agents")
    TASK_DEFAULTS[_name]["p"] = {**TASK_DEFAULTS["reacher"]["p"], "steps": 4000}
"""``wm_space``: the space of the headline WM_NMSE (the Reacher: its 6-D observation, as the paper
reports; default ``state``). Continuous-action tasks sample P-learning's actions uniformly over the
action box, evaluate WM errors on uniform draws (:func:`plray.evaluation.wm_metrics.evaluation_actions`)
and plan unseen goals on their declared finite action subset (:func:`plray.evaluation.unseen.planning_view`)."""


@dataclass(frozen=True)
class ExtractionConfig:
    """One world-model extraction."""

    task: str
    """Task name (a key of :data:`TASK_DEFAULTS`: the MountainCar tasks, reacher, reacher-continuous,
    mujoco-reacher, mujoco-reacher-discrete)."""
    agent: str = "oracle"
    """Path of an agent artifact (``<run>/agent``), or ``oracle`` for ground-truth Q* on a grid."""
    method: Literal["deterministic", "gaussian", "supervised"] = "deterministic"
    """P-learning with a deterministic successor or a diagonal Gaussian; ``supervised``: the reference
    line trained on true transitions (data P-learning never sees)."""
    sampler: Literal["reset", "uniform"] | None = None
    """State distribution d: reset states or uniform over the state box; None: the task's default."""
    oracle_resolution: int | None = None
    """Grid points per dim of the oracle's value iteration; None: the task's default."""
    p_learning: dict[str, Any] = field(default_factory=dict)
    """Overrides of :class:`plray.core.neural.NeuralPConfig` fields (steps, batch_size, lr, ...)."""
    normalize_inputs: bool = True
    """Rescale the successor network's state inputs to [−1, 1] over the task's state box (unless
    ``p_learning`` sets ``input_low``/``input_high`` itself); False: raw states, as the official code."""
    eval_states: int | None = None
    """Evaluation states for WM metrics; None: the paper's count for the task (docs/method.md#world-model-error: 80² =
    6400 reset states for the Reacher, 500² = 250 000 uniform states for MountainCar, whose left-wall
    hits, ~0.9% of pairs and most of its error, need that many for a stable figure)."""
    estimator: Literal["two-sample", "one-sample", "score"] = "two-sample"
    """Gradient estimator of the Gaussian kernel (``method: gaussian``): the unbiased two-sample
    product (default), the biased one-sample square, or the score function
    (:mod:`plray.core.neural_stochastic`)."""
    seed: int = 0
    """Seeds P-learning and the evaluation states."""

    def validate(self) -> ExtractionConfig:
        if self.task not in TASK_DEFAULTS:
            raise ConfigError(f"task: extraction supports {', '.join(TASK_DEFAULTS)}; got {self.task!r}")
        if self.method not in METHODS:
            raise ConfigError(f"method: unknown {self.method!r}; choose one of {', '.join(METHODS)}")
        allowed = set(NeuralPConfig.__dataclass_fields__)
        unknown = sorted(set(self.p_learning) - allowed)
        if unknown:
            raise ConfigError(f"p_learning.{unknown[0]}: unknown field; allowed: {', '.join(sorted(allowed))}")
        if self.estimator not in ESTIMATORS:
            raise ConfigError(f"estimator: unknown {self.estimator!r}; choose one of {', '.join(ESTIMATORS)}")
        if self.eval_states is not None and self.eval_states < 2:
            raise ConfigError(f"eval_states: must be >= 2, got {self.eval_states}")
        self.neural_config()
        return self

    def neural_config(self) -> NeuralPConfig:
        base = {**TASK_DEFAULTS[self.task]["p"], "seed": self.seed, **self.p_learning}
        if self.normalize_inputs and "input_low" not in self.p_learning and "input_high" not in self.p_learning:
            task = make_task(self.task)
            base["input_low"] = [float(x) for x in task.state_low]
            base["input_high"] = [float(x) for x in task.state_high]
        for key in ("input_dims", "output_dims", "input_low", "input_high"):
            if base.get(key) is not None:
                base[key] = tuple(base[key])
        try:
            return NeuralPConfig(**base).validate()
        except (TypeError, PlrayInputError) as exc:
            raise ConfigError(f"p_learning: {exc}") from exc

    @property
    def sampler_name(self) -> Literal["reset", "uniform"]:
        return self.sampler or TASK_DEFAULTS[self.task]["sampler"]

    @property
    def num_eval_states(self) -> int:
        return self.eval_states or TASK_DEFAULTS[self.task]["eval_states"]


MAX_PLANNING_NODES = 27
"""Largest Gauss–Hermite quadrature (3^d nodes per grid node and action) a Gaussian model plans with;
above it (d > 3, e.g. the Reacher) unseen goals are planned with the model's mean."""

KERNEL_EVAL_STATES = 20_000
"""Evaluation states of the kernel metrics on stochastic tasks (Monte Carlo moments per state and action)."""


def state_sampler(task: GoalTask, name: str) -> Callable[[np.random.Generator, int], np.ndarray]:
    """The sampling distribution d over states: ``reset`` or ``uniform``."""
    if name == "reset":
        return lambda rng, n: task.reset_states(n, rng)
    return lambda rng, n: task.sample_states(n, rng)


def load_source(cfg: ExtractionConfig, task: GoalTask) -> tuple[Any, dict[str, Any]]:
    """The Q source to invert and a JSON description of it."""
    if cfg.agent == "oracle":
        from plray.evaluation.oracle import OracleQSource

        res = cfg.oracle_resolution or TASK_DEFAULTS[cfg.task]["oracle_resolution"]
        start = time.perf_counter()
        oracle = OracleQSource(task, res)
        return oracle, {"agent": "oracle", "oracle_resolution": res, "oracle_seconds": time.perf_counter() - start}
    from plray.agents.qsource import load_qsource

    source = load_qsource(cfg.agent)
    meta: dict[str, Any] = getattr(source, "metadata", {})
    trained_on = meta.get("task")
    if trained_on != cfg.task:
        raise ConfigError(f"agent: {cfg.agent} was trained on {trained_on!r}, not {cfg.task!r}")
    return source, {
        "agent": str(cfg.agent),
        "agent_env_steps": meta.get("env_steps"),
        "agent_metrics": meta.get("metrics", {}),
    }


def predict_fn(model: WorldModel) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    return model.predict


def _extract_model(
    cfg: ExtractionConfig,
    task: GoalTask,
    source: Any,
    progress: Callable[[int, float], None] | None,
    checkpoint: Checkpointing | None = None,
) -> tuple[WorldModel, dict[str, Any]]:
    ncfg = cfg.neural_config()
    sampler = state_sampler(task, cfg.sampler_name)
    goals = np.asarray(task.training_goals, dtype=np.float64)
    if cfg.method == "deterministic":
        from plray.core.neural import train_successor

        res = train_successor(source, task, sampler, goals, ncfg, progress=progress, checkpoint=checkpoint)
        return NeuralWorldModel(res.network, ncfg), res.summary()
    if cfg.method == "supervised":
        from plray.core.neural_baselines import train_supervised_successor

        res = train_supervised_successor(task, sampler, ncfg)
        return NeuralWorldModel(res.network, ncfg), res.summary()
    from plray.core.neural_stochastic import train_gaussian_successor

    width = np.asarray(task.state_high) - np.asarray(task.state_low)
    dims = range(task.state_dim) if ncfg.output_dims is None else ncfg.output_dims
    init_std = [0.01 * float(width[j]) for j in dims]  # 1% of the box per predicted dim
    res = train_gaussian_successor(
        source,
        task,
        sampler,
        goals,
        replace(ncfg, loss="l2"),
        estimator=cfg.estimator,
        init_std=init_std,
        progress=progress,
        checkpoint=checkpoint,
    )
    return GaussianWorldModel(res.network, res.config), res.summary()


def wm_metrics(task: GoalTask, model: WorldModel, cfg: ExtractionConfig) -> dict[str, Any]:
    """WM_MSE / WM_NMSE in state and observation space on states from the training distribution."""
    from plray.evaluation.wm_metrics import Space, evaluation_actions, evaluation_states, wm_errors

    states = evaluation_states(task, cfg.num_eval_states, np.random.default_rng([cfg.seed, 11]), cfg.sampler_name)
    actions = evaluation_actions(task, np.random.default_rng([cfg.seed, 12]))  # None: every discrete action
    out: dict[str, Any] = {}
    means: np.ndarray | None = None
    std_fn = getattr(model, "std", None)
    if task.stochastic or std_fn is not None:  # the model's spread against the kernel's (zero if deterministic)
        from plray.evaluation.wm_metrics import kernel_errors, kernel_moments

        n = len(states)
        if task.stochastic:  # the kernel's mean is the truth; its Monte Carlo moments are computed once
            acts = range(int(task.num_actions or 0))
            means = np.stack([kernel_moments(task, states, np.full(n, a))[0] for a in acts])
        kstates = states[: min(n, KERNEL_EVAL_STATES)]
        out["kernel"] = kernel_errors(model.predict, std_fn, task, kstates, seed=cfg.seed, actions=actions)

    def truth(rows: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """The true successor (the kernel's mean on stochastic tasks) of ``states[rows]``."""
        if means is None:
            return task.next_state
        return lambda s, a: means[int(a[0])][rows]

    everything = np.arange(len(states))
    spaces: tuple[Space, ...] = ("state", "obs")
    for space in spaces:
        errs = wm_errors(model.predict, task, states, space=space, actions=actions, reference_fn=truth(everything))
        out[space] = {k: errs[k] for k in ("wm_mse", "wm_nmse", "per_dim_nmse")}
    if actions is not None:
        out["evaluation_actions"] = np.asarray(actions).tolist()
        out |= _planning_action_metrics(task, model, states)
    contact = getattr(task, "left_wall_contact", None)
    if contact is not None:  # MountainCar: the wall's jump, apart from the rest (see left_wall_contact)
        hits = np.zeros(len(states), dtype=bool)
        for a in range(int(task.num_actions or 0)):
            hits |= contact(states, np.full(len(states), a))
        if (~hits).sum() >= 2:
            off = np.flatnonzero(~hits)
            errs = wm_errors(model.predict, task, states[off], space="state", reference_fn=truth(off))
            out["state_off_wall"] = {k: errs[k] for k in ("wm_mse", "wm_nmse", "per_dim_nmse")}
            out["state_off_wall"]["wall_fraction"] = float(hits.mean())
    return out


def _planning_action_metrics(task: GoalTask, model: WorldModel, states: np.ndarray) -> dict[str, Any]:
    """A continuous-action task's WM errors on its finite planning actions (the ones unseen goals are
    planned with; the Reacher's: its 9 discrete torques), in state and observation space; {} if none."""
    from plray.evaluation.wm_metrics import wm_errors

    table = getattr(task, "planning_actions", None)
    if table is None:
        return {}
    acts = np.asarray(table, dtype=np.float64)
    out = {}
    for space in ("state", "obs"):
        errs = wm_errors(model.predict, task, states, space=space, actions=acts)  # type: ignore[arg-type]
        out[f"{space}_planning_actions"] = {k: errs[k] for k in ("wm_mse", "wm_nmse", "per_dim_nmse")}
    return out


def _plots(task: GoalTask, model: WorldModel, out: Path) -> list[str]:
    """The task family's plots (on the planning action subset for continuous-action tasks)."""
    from plray.envs.mountaincar import MountainCarTask
    from plray.envs.reacher import KinematicReacherTask
    from plray.evaluation import plots
    from plray.evaluation.unseen import planning_view

    if task.num_actions is None and getattr(task, "planning_actions", None) is None:
        return []
    view, predict, _ = planning_view(task, model.predict)
    made = []
    if isinstance(view, MountainCarTask):
        made.append(plots.mountaincar_quiver(view, predict, out / "quiver.png").name)
    elif isinstance(view, KinematicReacherTask):
        made.append(plots.reacher_error_heatmap(view, predict, out / "error_heatmap.png").name)
        made.append(plots.reacher_rollouts(view, predict, out / "rollouts.png").name)
    return made


def extract_world_model(
    cfg: ExtractionConfig,
    *,
    progress: Callable[[int, float], None] | None = None,
    source: Any = None,
    checkpoint: Checkpointing | None = None,
) -> tuple[WorldModel, dict[str, Any], GoalTask]:
    """Extract a world model and evaluate its one-step accuracy; nothing is written.

    Arguments as :func:`run_extraction`. Returns the model, its manifest (task, method, config,
    source, goals, training, ``metrics``: :func:`wm_metrics`) and the task it was evaluated on.
    """
    cfg.validate()
    task = make_task(cfg.task)
    torch.manual_seed(cfg.seed)
    if cfg.method == "supervised":  # fitted to true transitions: no agent involved
        source = None
        source_info: dict[str, Any] = {"agent": "none (true transitions)"}
    elif source is not None:
        if source.task.name != cfg.task:
            raise ConfigError(f"agent: the given source was trained on {source.task.name!r}, not {cfg.task!r}")
        task = source.task
        meta = getattr(source, "metadata", {})
        source_info = {"agent": str(cfg.agent), "agent_env_steps": meta.get("env_steps")}
    else:
        source, source_info = load_source(cfg, task)
        task = getattr(source, "task", task)
    start = time.perf_counter()
    model, training = _extract_model(cfg, task, source, progress, checkpoint)
    seconds = time.perf_counter() - start
    metrics = wm_metrics(task, model, cfg)
    manifest = {
        "task": cfg.task,
        "method": cfg.method,
        "config": asdict(cfg),
        "source": source_info,
        "goals": np.asarray(task.training_goals).tolist(),
        "gamma": float(getattr(source, "gamma", task.gamma)),
        "state_sampler": cfg.sampler_name,
        "training": training,
        "extraction_seconds": seconds,
        "metrics": metrics,
    }
    return model, manifest, task


def write_extraction_report(
    cfg: ExtractionConfig, task: GoalTask, model: WorldModel, manifest: dict[str, Any], out: Path, artifact: Path
) -> dict[str, Any]:
    """Plots, ``extraction.json`` and ``report.md`` under ``out`` for a model saved at ``artifact``; the summary."""
    metrics, training = manifest["metrics"], manifest["training"]
    plots = _plots(task, model, out)
    summary = {
        "task": cfg.task,
        "method": cfg.method,
        "agent": manifest["source"]["agent"],
        "wm_nmse": metrics[TASK_DEFAULTS[cfg.task].get("wm_space", "state")]["wm_nmse"],
        "wm_nmse_state": metrics["state"]["wm_nmse"],
        "wm_nmse_off_wall": metrics.get("state_off_wall", {}).get("wm_nmse"),
        "wm_mse_state": metrics["state"]["wm_mse"],
        "steps": training.get("steps"),
        "samples_per_s": training.get("samples_per_s"),
        "seconds": manifest["extraction_seconds"],
        "artifact": str(artifact),
    }
    atomic_write_json(out / "extraction.json", {"summary": summary, "manifest": manifest})
    atomic_write_text(out / "report.md", _extraction_report(summary, metrics, plots))
    return summary


def run_extraction(
    cfg: ExtractionConfig,
    out_dir: str | Path,
    *,
    progress: Callable[[int, float], None] | None = None,
    source: Any = None,
    checkpoint: Checkpointing | None = None,
) -> dict[str, Any]:
    """Extract a world model, evaluate its one-step accuracy, write the artifact and a report.

    Args:
        cfg: the extraction.
        out_dir: where the artifact, ``extraction.json`` and ``report.md`` go.
        progress: called as ``progress(step, loss)`` every 100 P-learning steps.
        source: an already loaded Q source for ``cfg.agent`` (extraction workers load each agent
            once); its task, with the goal set the agent was trained on, is used.
        checkpoint: save P-learning's state periodically / resume from a saved state (P-learning
            methods only; the supervised reference trains from scratch).
    """
    model, manifest, task = extract_world_model(cfg, progress=progress, source=source, checkpoint=checkpoint)
    out = Path(out_dir)
    path = save_world_model(out / "world_model", model, manifest)
    return write_extraction_report(cfg, task, model, manifest, out, Path(path))


def _extraction_report(summary: dict[str, Any], metrics: dict[str, Any], plots: list[str]) -> str:
    lines = [
        f"# World model extracted from {summary['agent']} on {summary['task']}",
        "",
        f"Method: {summary['method']}; {summary['steps']} steps in {summary['seconds']:.1f} s "
        f"({summary['samples_per_s']:.0f} samples/s). Artifact: `{summary['artifact']}`.",
        "",
        "WM_NMSE: per (action, dimension) MSE of the predicted next state divided by the variance of the true",
        "next state, averaged (docs/method.md#world-model-error); angle dims compared with wrapped differences.",
        "",
        *_metrics_tables(metrics),
    ]
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def _metrics_tables(metrics: dict[str, Any]) -> list[str]:
    """Markdown lines: the WM_MSE / WM_NMSE table, and for stochastic tasks the kernel table per state dim."""
    lines = [
        markdown_table(
            [
                {"space": k, **{m: v[m] for m in ("wm_mse", "wm_nmse")}}
                for k, v in metrics.items()
                if k != "kernel" and isinstance(v, dict)
            ],
            ("space", "wm_mse", "wm_nmse"),
        ),
        "",
    ]
    kernel = metrics.get("kernel")
    if kernel:
        lines += [
            "Successor distribution: the model's against the true kernel's Monte Carlo "
            f"moments ({kernel['samples']} draws per pair, {kernel['num_states']} states); mean W2 "
            f"{kernel['w2']:.3g}.",
            "",
            markdown_table(
                [
                    {
                        "dim": j,
                        "mean_nmse": kernel["mean_nmse_per_dim"][j],
                        "std_true": kernel["std_true"][j],
                        "std_model": kernel["std_model"][j],
                        "std_rel_error (median)": kernel["std_rel_error"][j],
                    }
                    for j in range(len(kernel["std_true"]))
                ],
                ("dim", "mean_nmse", "std_true", "std_model", "std_rel_error (median)"),
            ),
            "",
        ]
    return lines


def run_evaluation(
    artifact: str | Path,
    out_dir: str | Path,
    *,
    unseen: bool = True,
    resolution: int | None = None,
    num_starts: int = 512,
    seed: int = 0,
    eval_states: int | None = None,
) -> dict[str, Any]:
    """Evaluate a world-model artifact: WM metrics and (optionally) R_WM vs R* on the unseen goals.

    ``eval_states`` overrides the number of WM evaluation states (default: the task's, as
    :attr:`ExtractionConfig.eval_states`).
    """
    model, manifest = load_world_model(artifact)
    return evaluate_world_model(
        model,
        manifest,
        artifact,
        out_dir,
        unseen=unseen,
        resolution=resolution,
        num_starts=num_starts,
        seed=seed,
        eval_states=eval_states,
    )


def evaluate_world_model(
    model: WorldModel,
    manifest: dict[str, Any],
    artifact: str | Path,
    out_dir: str | Path,
    *,
    unseen: bool = True,
    resolution: int | None = None,
    num_starts: int = 512,
    seed: int = 0,
    eval_states: int | None = None,
) -> dict[str, Any]:
    """:func:`run_evaluation` of a model in memory, with its ``manifest``, named ``artifact`` in reports."""
    task_name = manifest.get("task")
    if task_name not in TASK_DEFAULTS:
        raise PlrayInputError(
            f"{artifact}: evaluation supports {', '.join(TASK_DEFAULTS)}; this model is for {task_name!r}"
        )
    task = make_task(task_name)
    if model.state_dim != task.state_dim:
        raise PlrayInputError(f"{artifact}: model state dim {model.state_dim} does not match task {task_name!r}")
    cfg = ExtractionConfig(task=task_name, sampler=manifest.get("state_sampler"), seed=seed, eval_states=eval_states)
    cfg.validate()
    out = Path(out_dir)
    result: dict[str, Any] = {"artifact": str(artifact), "task": task_name, "metrics": wm_metrics(task, model, cfg)}
    rows: list[dict[str, Any]] = []
    if unseen:
        res = resolution or TASK_DEFAULTS[task_name]["unseen_resolution"]
        start = time.perf_counter()
        rows = _unseen_rows(task, model, result, res, num_starts, seed)
        result["unseen"] = rows
        result["unseen_seconds"] = time.perf_counter() - start
    plots = _plots(task, model, out)
    atomic_write_json(out / "evaluation.json", result)
    lines = [
        f"# Evaluation of `{artifact}` ({task_name})",
        "",
        *_metrics_tables(result["metrics"]),
    ]
    if rows:
        lines += [
            "Unseen goals: grid value iteration inside the model, greedy rollouts on the true dynamics from "
            f"{num_starts} reset states (docs/method.md#unseen-goal-planning). "
            f"Planned with {result['unseen_planning']}.",
            "",
            markdown_table(rows, ("goal", "return_wm", "return_opt", "ratio")),
            "",
        ]
    lines += [f"![{p}]({p})" for p in plots]
    atomic_write_text(out / "report.md", "\n".join(lines) + "\n")
    return result


def _unseen_rows(
    task: GoalTask, model: WorldModel, result: dict[str, Any], resolution: int, num_starts: int, seed: int
) -> list[dict[str, Any]]:
    """R_WM and R* per unseen goal; records in ``result["unseen_planning"]`` what was planned with."""
    from plray.evaluation.unseen import evaluate_all_unseen, planning_view

    kernel = None
    task, predict, subset = planning_view(task, model.predict)  # continuous actions: a finite subset
    result["unseen_planning"] = "the model's point prediction" + (f" on {subset}" if subset else "")
    if isinstance(model, GaussianWorldModel) and subset:  # the quadrature reads integer actions
        result["unseen_planning"] = f"the model's mean on {subset}"
    elif isinstance(model, GaussianWorldModel):  # plan with the model's noise, not just its mean
        from plray.evaluation.unseen import gaussian_quadrature

        if 3**model.state_dim <= MAX_PLANNING_NODES:
            kernel = gaussian_quadrature(model.predict, model.std, model.angle_dims)
            result["unseen_planning"] = f"the model's kernel ({3**model.state_dim}-node quadrature)"
        else:  # every grid node would need 3^d successors: the mean only
            result["unseen_planning"] = (
                f"the model's mean (a 3^{model.state_dim}-node quadrature exceeds {MAX_PLANNING_NODES} nodes)"
            )
    return evaluate_all_unseen(
        task, predict, resolution=resolution, num_starts=num_starts, seed=seed, model_successor_fn=kernel
    )
