"""The tabular task pipeline: FourRooms agents (tabular Q-learning, or the exact Q*), inverted by
the kernel methods of :mod:`plray.core` and scored against the true kernel (:class:`TabularPipeline`).

Heavy imports wait inside the methods: the schema reads this module's vocabulary.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from plray.envs.fourrooms import GOAL_FAMILIES, GOAL_PLACEMENTS, VARIANTS
from plray.experiments.taskapi import (
    Extraction,
    Say,
    checkpoints_before,
    gamma_of,
    load_state,
    save_state,
    spearman,
)
from plray.utils.io import finite_or_none
from plray.utils.schema import ConfigError

if TYPE_CHECKING:
    from plray.experiments.jobs import ExtractionJob, SourceCache
    from plray.experiments.rundir import RunLayout
    from plray.experiments.schema import Cell, ExperimentConfig

TABULAR_METHODS = ("closed-form", "simplex", "simplex-local", "column-match", "sampled", "wvf")
"""Extraction methods for FourRooms agents (``simplex-local``: simplex least squares with each
state's successors restricted to its neighbours and the teleport targets)."""


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
    """Q_NMSE (MSE over Var Q*), Q_MSE and max |Q − Q*| of a table (S, A, G) against the exact one."""
    mse = float(((Q - Q_star) ** 2).mean())
    var = float(Q_star.var())
    return {
        "q_mse": mse,
        "q_nmse": mse / var if var > 0 else float("nan"),
        "q_max_error": float(np.abs(Q - Q_star).max()),
    }


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


class TabularPipeline:
    """FourRooms: tabular or exact agents, kernel methods, kernel errors
    (:class:`~plray.experiments.taskapi.TaskPipeline`)."""

    variants: tuple[str, ...] = VARIANTS
    goal_families: tuple[str, ...] = GOAL_FAMILIES
    placements: tuple[str, ...] = GOAL_PLACEMENTS
    agent_kinds: tuple[str, ...] = ("tabular-q", "exact")
    methods: tuple[str, ...] = TABULAR_METHODS
    max_goals: int = 68
    goal_subsets: bool = True
    mixtures: bool = False
    error_metric: str = "kernel_mse"
    summary_columns: tuple[str, ...] = ("tv_mean", "paper_kernel_mse")
    ensemble_columns: tuple[str, ...] = ("member_tv_mean", "return_ratio")
    agent_columns: tuple[str, ...] = ("cell", "q_nmse", "q_max_error", "env_steps", "train_seconds")
    goals_needed: bool = True

    def check(self, cfg: ExperimentConfig) -> None:
        """Per-variant overrides name known variants; every variant's tabular config is valid."""
        for variant in cfg.agent.tabular.by_variant:
            if variant not in self.variants:
                choices = ", ".join(self.variants)
                raise ConfigError(f"agent.tabular.by_variant.{variant}: unknown variant; choose from {choices}")
        for maybe_variant in (None, *cfg.agent.tabular.by_variant):
            cfg.tabular_config(maybe_variant)

    def final_env_steps(self, cfg: ExperimentConfig, cell: Cell) -> int | None:
        """A tabular-q agent's env steps (None for exact agents)."""
        if cfg.agent.kind != "tabular-q":
            return None
        return int(cfg.tabular_config(cell.variant).env_steps)

    def train(self, cfg: ExperimentConfig, cell: Cell, layout: RunLayout, say: Say) -> dict[str, Any]:
        """Q-learning (or Q* with noise for ``exact``): the agent and its snapshots as tabular artifacts.

        Returns:
            Q_NMSE, Q_MSE and max error against Q*, env steps and seconds.
        """
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

            steps = checkpoints_before(cfg.extraction.checkpoints, self.final_env_steps(cfg, cell))
            result = train_tabular_q(mdp, goals, gamma, tcfg, progress=progress, snapshot_steps=steps)
        metadata = {"cell": cell.as_dict(), "experiment": cfg.name, "agent_kind": cfg.agent.kind}
        config = None if cfg.agent.kind == "exact" else tcfg
        save_tabular_agent(layout.agent_dir(cell.key), result, cell.variant, goals, gamma, metadata, config=config)
        for step, Q_step in result.snapshots.items():
            snap = TabularQResult(
                Q=Q_step, visits=result.snapshot_visits[step], env_steps=step, seconds=0.0, steps_per_s=0.0
            )
            save_tabular_agent(
                layout.snapshot_dir(cell.key, step), snap, cell.variant, goals, gamma, metadata, config=config
            )
        return {
            **q_error(result.Q, Q_star),
            "env_steps": int(result.env_steps),
            "train_seconds": time.perf_counter() - start,
        }

    def extract(self, cfg: ExperimentConfig, job: ExtractionJob, layout: RunLayout, cache: SourceCache) -> Extraction:
        """The kernel from the agent's Q (on the job's goal subset), scored against the true kernel."""
        from plray.agents.tabular import load_tabular_agent
        from plray.experiments.fourrooms import invert_fourrooms

        cell, method = job.cell, job.method
        agent = layout.agent_dir(cell.key, job.step)
        Q, _ = cache.get(agent, load_tabular_agent)
        mdp, goals = fourrooms_goals(cfg, cell)
        gamma = gamma_of(cfg)
        used = np.arange(goals.num_goals)
        if job.goals:
            used = np.sort(np.random.default_rng([cell.seed, 7]).choice(goals.num_goals, job.goals, replace=False))
        goal_states = goals.states[used]
        options: dict[str, Any] = {}
        if method == "sampled":
            ckpt = layout.job_checkpoint(job.key)
            options = {
                "num_updates": cfg.extraction.sampled_updates,
                "seed": cell.seed,
                "state": _sampled_from_arrays(load_state(ckpt)),
                "checkpoint": lambda state: save_state(ckpt, _sampled_to_arrays(state)),
                "checkpoint_every": cfg.extraction.checkpoint_every,
            }
        inv = invert_fourrooms(
            mdp,
            Q[:, :, used],
            goals.rewards[:, used],
            goals.dones[:, used],
            goal_states,
            gamma,
            method,
            project=True,
            unseen=cfg.evaluation.unseen,
            options=options,
        )
        metrics: dict[str, Any] = dict(inv.scores)
        if "resumed_from" in inv.result.info:
            metrics["resumed_from"] = int(inv.result.info["resumed_from"])
        metrics |= inv.unseen
        manifest = {
            "task": "fourrooms",
            "task_kwargs": fourrooms_task_kwargs(cfg, cell),
            "variant": cell.variant,
            "method": method,
            "goals": goal_states.tolist(),
            "goal_family": goals.family,
            "gamma": gamma,
            "agent": str(agent),
            "metrics": finite_or_none({k: v for k, v in metrics.items() if k != "unseen"}),
        }
        assert inv.model is not None
        return Extraction(model=inv.model, manifest=manifest, metrics=metrics)

    def ensemble(self, cfg: ExperimentConfig, members: list[dict[str, Any]]) -> Extraction:
        """The mixture of the members' kernels, its error, its disagreement and how well that ranks the error."""
        from plray.core.ensemble import TabularEnsemble
        from plray.core.model_io import load_world_model
        from plray.envs.fourrooms import FourRooms
        from plray.evaluation import kernel_metrics, tv_distance, unseen_summary

        loaded: list[Any] = [load_world_model(m["world_model"])[0] for m in members]  # tabular models
        kernels = np.stack([m.kernel() for m in loaded])
        model = TabularEnsemble(kernels)
        mdp = FourRooms(members[0]["variant"])
        P = mdp.kernel
        gamma = gamma_of(cfg)
        spread = model.disagreement()
        error = tv_distance(model.kernel(), P)
        row: dict[str, Any] = {
            **kernel_metrics(model.kernel(), P),
            "member_tv_mean": float(np.mean([m["tv_mean"] for m in members])),
            "disagreement_mean": float(spread.mean()),
            "disagreement_error_spearman": spearman(spread.ravel(), error.ravel()),
        }
        if cfg.evaluation.unseen:
            row |= {k: v for k, v in unseen_summary(model.kernel(), mdp, gamma).items() if k != "unseen"}
        manifest = {
            "task": "fourrooms",
            "task_kwargs": {"variant": members[0]["variant"]},
            "variant": members[0]["variant"],
            "method": f"ensemble of {members[0]['method']}",
            "members": [m["world_model"] for m in members],
            "gamma": gamma,
            "metrics": finite_or_none(row),
        }
        return Extraction(model=model, manifest=manifest, metrics=row)
