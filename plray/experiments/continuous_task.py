"""The continuous task pipeline: RLlib agents (DQN, PQN or, for continuous actions, SAC, with
hindsight relabelling) inverted by neural P-learning and scored by WM errors and unseen-goal
returns (:class:`ContinuousPipeline`).

Continuous-action tasks (``reacher-continuous``) take the same path, dispatched on the task's
declared properties, never its name: the SAC agent's V(s', g) is its soft value from the policy
(:class:`plray.agents.qsource.SACQSource`), P-learning samples actions uniformly over the action box,
WM errors are taken on uniformly drawn actions, and unseen goals are planned on the finite action
subset the task declares (:func:`plray.evaluation.unseen.planning_view`).

Heavy imports (torch, RLlib) wait inside the methods: the schema reads this module's vocabulary.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from plray.core.types import EXTRACTION_METHODS
from plray.envs.goalsets import MIXTURE, mixture_spec_from_label
from plray.envs.reacher import REACHER_GOAL_KINDS
from plray.experiments.taskapi import Extraction, Say, load_state, save_state, spearman
from plray.utils.schema import ConfigError

if TYPE_CHECKING:
    from plray.experiments.jobs import ExtractionJob, SourceCache
    from plray.experiments.rundir import RunLayout
    from plray.experiments.schema import Cell, ExperimentConfig

CONTINUOUS_FAMILIES = ("sparse",)
NEURAL_METHODS = tuple(m for m in EXTRACTION_METHODS if m != "supervised")
"""Neural P-learning methods for continuous agents (``supervised`` is a baseline, not an inversion)."""


def rllib_agent_config(cfg: ExperimentConfig, cell: Cell) -> Any:
    """The :class:`plray.agents.config.AgentConfig` of a cell (``cfg`` after
    :func:`plray.experiments.jobs.embed_agent_config`)."""
    from plray.agents.config import AgentConfig
    from plray.utils.schema import from_mapping

    if cfg.agent.rllib.config:
        raise ConfigError("agent.rllib.config: the agent config file must be embedded before training")
    from plray.experiments.tasks import pipeline_for

    pipe = pipeline_for(cfg.task)
    if not isinstance(pipe, ContinuousPipeline):
        raise ConfigError(f"agent.kind: rllib agents need a continuous task, not {cfg.task!r}")
    data = dict(cfg.agent.rllib.overrides) | {
        "task": cfg.task,
        "name": cell.key,
        "seed": cell.seed,
        "task_kwargs": pipe.task_kwargs(cfg, cell),
    }
    if cfg.gamma is not None:
        data["gamma"] = cfg.gamma
    try:
        return from_mapping(AgentConfig, data)
    except ConfigError as exc:
        raise ConfigError(f"agent.rllib: {exc}") from exc


def _unseen_metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean R_WM, R* and their ratio over the unseen-goal rows of an evaluation, and the rows by goal."""
    return_wm = float(np.mean([r["return_wm"] for r in rows]))
    return_opt = float(np.mean([r["return_opt"] for r in rows]))
    return {
        "return_wm": return_wm,
        "return_opt": return_opt,
        "return_ratio": return_wm / return_opt if return_opt else float("nan"),
        "unseen": {r["goal"]: {"return_wm": r["return_wm"], "return_opt": r["return_opt"]} for r in rows},
    }


class ContinuousPipeline:
    """A continuous task: RLlib agents, neural P-learning, WM errors
    (:class:`~plray.experiments.taskapi.TaskPipeline`)."""

    variants: tuple[str, ...] = ("none",)
    goal_families: tuple[str, ...] = CONTINUOUS_FAMILIES
    placements: tuple[str, ...] = ("random", "spread")
    agent_kinds: tuple[str, ...] = ("rllib",)
    methods: tuple[str, ...] = NEURAL_METHODS
    max_goals: int = 64
    goal_subsets: bool = False
    mixtures: bool = False
    error_metric: str = "wm_nmse"
    summary_columns: tuple[str, ...] = ()
    ensemble_columns: tuple[str, ...] = ("member_wm_nmse_mean",)
    agent_columns: tuple[str, ...] = ("cell", "success_rate", "env_steps", "train_seconds")
    goals_needed: bool = False

    def check(self, cfg: ExperimentConfig) -> None:
        """``extraction.neural`` names only :class:`plray.core.neural.NeuralPConfig` fields."""
        cfg.neural_overrides_check()

    def task_kwargs(self, cfg: ExperimentConfig, cell: Cell) -> dict[str, Any]:
        """The cell's ``task_kwargs`` for :func:`plray.envs.registry.make_task` (MountainCar: |G|, placement, seed)."""
        return {"num_goals": cell.num_goals, "placement": cell.placement, "seed": cell.seed}

    def final_env_steps(self, cfg: ExperimentConfig, cell: Cell) -> int | None:
        """None: an RLlib agent's steps are its trainer's business."""
        return None

    def train(self, cfg: ExperimentConfig, cell: Cell, layout: RunLayout, say: Say) -> dict[str, Any]:
        """:func:`plray.agents.train.train` into the cell's folder, resuming from its checkpoints."""
        from plray.agents.train import train

        agent_cfg = rllib_agent_config(cfg, cell)
        start = time.perf_counter()
        metrics = train(agent_cfg, layout.cell_dir(cell.key), resume=True, progress=False)
        keep = ("env_steps", "success_rate", "mean_return", "env_steps_per_s_this_call")
        return {
            **{k: metrics[k] for k in keep if k in metrics},
            "train_seconds": time.perf_counter() - start,
        }

    def extract(self, cfg: ExperimentConfig, job: ExtractionJob, layout: RunLayout, cache: SourceCache) -> Extraction:
        """Neural P-learning (checkpointed), WM errors and, if asked, unseen-goal returns.

        Writes the extraction and evaluation reports to the job's folder.
        """
        from plray.agents.qsource import load_qsource
        from plray.core.neural import Checkpointing
        from plray.experiments.extraction import (
            ExtractionConfig,
            evaluate_world_model,
            extract_world_model,
            write_extraction_report,
        )

        agent = layout.agent_dir(job.cell.key, job.step)
        source = cache.get(agent, load_qsource)
        ecfg = ExtractionConfig(
            task=cfg.task,
            agent=str(agent),
            method=job.method,  # type: ignore[arg-type]
            p_learning=dict(cfg.extraction.neural),
            seed=job.cell.seed,
        )
        ckpt = layout.job_checkpoint(job.key)
        state = load_state(ckpt)
        checkpointing = Checkpointing(
            save=lambda arrays: save_state(ckpt, arrays), every=cfg.extraction.checkpoint_every, state=state
        )
        model, manifest, task = extract_world_model(ecfg, source=source, checkpoint=checkpointing)
        artifact = layout.model_dir(job.key)
        summary = write_extraction_report(ecfg, task, model, manifest, layout.job_dir(job.key), artifact)
        metrics: dict[str, Any] = {
            "wm_nmse": summary["wm_nmse"],
            "wm_mse": summary["wm_mse_state"],
            "p_learning_steps": summary["steps"],
            "resumed_from": int(state["step"]) if state is not None else 0,
        }
        if cfg.evaluation.unseen:
            ev = evaluate_world_model(
                model,
                manifest,
                artifact,
                layout.job_evaluation_dir(job.key),
                resolution=cfg.evaluation.resolution,
                num_starts=cfg.evaluation.num_starts,
                seed=job.cell.seed,
            )
            metrics |= _unseen_metrics(ev.get("unseen", []))
        return Extraction(model=model, manifest=manifest, metrics=metrics)

    def ensemble(self, cfg: ExperimentConfig, members: list[dict[str, Any]]) -> Extraction:
        """The members' mean prediction, its WM error, and how well the members' spread ranks its error."""
        from plray.core.ensemble import PointEnsemble
        from plray.core.model_io import load_world_model
        from plray.envs.registry import make_task
        from plray.evaluation.wm_metrics import evaluation_actions, evaluation_states, wm_errors
        from plray.utils.io import finite_or_none

        model = PointEnsemble([load_world_model(m["world_model"])[0] for m in members])
        task = make_task(cfg.task)
        states = evaluation_states(task, 4096, np.random.default_rng(11), "uniform")
        rng = np.random.default_rng(12)
        actions: np.ndarray
        if task.num_actions is not None:
            actions = rng.integers(task.num_actions, size=len(states))
        else:  # one uniform action per state (continuous actions)
            low, high = np.asarray(task.action_low, dtype=float), np.asarray(task.action_high, dtype=float)
            actions = rng.uniform(low, high, size=(len(states), task.action_dim))
        action_set = evaluation_actions(task, np.random.default_rng(13))
        errs = wm_errors(model.predict, task, states, space="state", actions=action_set)
        truth = task.next_state(states, actions)
        spread = model.std(states, actions).mean(axis=1)
        error = np.abs(model.predict(states, actions) - truth).mean(axis=1)
        row = {
            "wm_nmse": errs["wm_nmse"],
            "member_wm_nmse_mean": float(np.mean([m["wm_nmse"] for m in members])),
            "disagreement_mean": float(spread.mean()),
            "disagreement_error_spearman": spearman(spread, error),
        }
        manifest = {"task": cfg.task, "method": "ensemble", "metrics": finite_or_none(row)}
        return Extraction(model=model, manifest=manifest, metrics=row)


REACHER_FAMILIES = tuple(REACHER_GOAL_KINDS)
"""Goal kinds of the Reacher's goal sets (fingertip, angle), owned by :mod:`plray.envs.reacher`."""
REACHER_PLACEMENTS = ("paper", "spread", "random", "distribution")


def reacher_goal_spec(cfg: ExperimentConfig, cell: Cell) -> dict[str, Any]:
    """A Reacher cell's goal set as a :class:`plray.envs.goalsets.GoalSet` spec (plain YAML data).

    ``goal_family`` is the goal kind; ``placement`` ``paper`` is the paper's set (|G| must be its
    size), ``spread`` / ``random`` |G| goals on a ring / over the reachable set, ``distribution`` a
    goal drawn per episode from ``goals.region`` (|G| draws make the finite set P-learning uses).
    The seed of the cell seeds every draw. A mixture cell (``goal_family`` ``mixture``, from
    ``sweep[].mixture``) is the mixture its ``placement`` label names
    (:func:`plray.envs.goalsets.mixture_spec_from_label`), every part seeded by the cell.
    """
    if cell.goal_family == MIXTURE:
        return mixture_spec_from_label(cell.placement, seed=cell.seed)
    spec: dict[str, Any] = {"kind": cell.goal_family, "seed": cell.seed}
    if cell.placement == "distribution":
        # default: the kind's whole domain (every reachable fingertip position, the torus of angles)
        spec["distribution"] = dict(cfg.goals.region or REACHER_GOAL_KINDS[cell.goal_family].domain.to_spec())
        spec["count"] = cell.num_goals
    else:
        spec["placement"] = cell.placement
        spec["count"] = cell.num_goals  # the paper's set checks that |G| is its size
        if cell.placement == "spread" and cfg.goals.radius is not None:
            spec["radius"] = cfg.goals.radius
    return spec


class ReacherPipeline(ContinuousPipeline):
    """The kinematic Reacher with goal sets as sweep dimensions (kind, count, placement, distribution, mixtures)."""

    goal_families: tuple[str, ...] = REACHER_FAMILIES
    placements: tuple[str, ...] = REACHER_PLACEMENTS
    mixtures: bool = True

    def check(self, cfg: ExperimentConfig) -> None:
        """Every cell's goal set builds (sizes, kinds, the unseen goals kept out), named by its cell."""
        from plray.envs.registry import make_task
        from plray.utils.validation import PlrayInputError

        super().check(cfg)
        for cell in cfg.cells():
            try:
                make_task(cfg.task, **self.task_kwargs(cfg, cell))
            except PlrayInputError as exc:
                raise ConfigError(f"goal set of cell {cell.key}: {exc}") from exc

    def task_kwargs(self, cfg: ExperimentConfig, cell: Cell) -> dict[str, Any]:
        """``{"goals": <goal-set spec>}`` (:func:`reacher_goal_spec`)."""
        return {"goals": reacher_goal_spec(cfg, cell)}


class MujocoReacherPipeline(ContinuousPipeline):
    """Gymnasium's MuJoCo ``Reacher-v5`` physics (``mujoco-reacher``: SAC; ``mujoco-reacher-discrete``:
    its 9 corner and centre controls, PQN or DQN), with its one goal set: the four fingertip goals
    of :mod:`plray.envs.mujoco_reacher`. The paper defines no unseen goals for it, so a run scores
    WM errors only (``evaluation.unseen: false``)."""

    goal_families: tuple[str, ...] = ("fingertip",)
    placements: tuple[str, ...] = ("paper",)
    max_goals: int = 4

    def check(self, cfg: ExperimentConfig) -> None:
        """Cells use the task's four goals; no unseen-goal evaluation (the task has none)."""
        super().check(cfg)
        for cell in cfg.cells():
            if cell.num_goals != 4:
                raise ConfigError(f"cell {cell.key}: num_goals: {cfg.task} has its four fingertip goals only")
        if cfg.evaluation.unseen:
            raise ConfigError(f"evaluation.unseen: {cfg.task} has no unseen goals; set it to false")

    def task_kwargs(self, cfg: ExperimentConfig, cell: Cell) -> dict[str, Any]:
        """{}: the task takes no arguments."""
        return {}
