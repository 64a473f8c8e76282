"""Train one goal-conditioned agent on RLlib: ``plray train CONFIG.yaml``.

A run directory holds::

    config.yaml          the validated configuration (resuming checks it is unchanged)
    checkpoints/         RLlib checkpoints (iter_000020, ...), newest named in latest.json
    agent/               the pickle-free agent artifact (manifest.json, tensors.npz)
    metrics.json         final metrics: env steps, wall clock, steps/s, success per goal
    progress.jsonl       one line of training metrics per iteration

Interrupted runs resume from the newest checkpoint when started again with the same directory.
Every file is written under a temporary name and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from plray.agents.config import AgentConfig
from plray.agents.export import goal_set_record, save_agent
from plray.agents.modules import GoalQNetwork
from plray.agents.qsource import NetworkQSource, QSource, SACQSource
from plray.envs.base import GoalTask
from plray.envs.registry import make_task
from plray.evaluation.goals import task_goal
from plray.evaluation.rollout import rollout
from plray.utils import ray_runtime
from plray.utils.io import atomic_write_json
from plray.utils.stored_config import check_stored_config, write_stored_config
from plray.utils.validation import PlrayInputError

ENV_NAME = "plray-goal-env"
DEFAULT_POLICY = "default_policy"
"""The module id of RLlib's single-agent module."""
BUFFER_TYPE = "plray.agents.her.HindsightEpisodeReplayBuffer"


def input_index(cfg: AgentConfig, task: GoalTask) -> list[int]:
    """Observation entries the Q-network reads: the configured state dims, then every goal dim."""
    dims = list(range(task.obs_dim)) if cfg.network.input_dims is None else list(cfg.network.input_dims)
    return dims + list(range(task.obs_dim, task.obs_dim + task.goal_dim))


def input_ranges(task: GoalTask, index: list[int], n: int = 4096) -> tuple[list[float], list[float]]:
    """Range of each network input: observations of states uniform over the state box, and goals.

    Goal entries span the training goals and (where the task has them) achieved goals, since
    hindsight relabelling feeds achieved goals as goals.
    """
    rng = np.random.default_rng(0)
    states = task.sample_states(n, rng)
    obs = task.observe(states)
    try:
        goals = np.concatenate([np.asarray(task.training_goals), task.achieved_goal(states)])
    except PlrayInputError:  # goals that are not states (FourRooms' reward functions) have no achieved goal
        goals = np.asarray(task.training_goals)
    low = np.concatenate([obs.min(0), goals.min(0)])
    high = np.concatenate([obs.max(0), goals.max(0)])
    return [float(low[i]) for i in index], [float(high[i]) for i in index]


def network_config(cfg: AgentConfig, task: GoalTask) -> dict[str, Any]:
    """The :class:`GoalQNetwork` keyword arguments of a run (stored in the agent artifact)."""
    index = input_index(cfg, task)
    out: dict[str, Any] = {
        "input_index": index,
        "hiddens": list(cfg.network.hiddens),
        "layernorm": cfg.network.layernorm,
        "activation": cfg.network.activation,
        "sigmoid": cfg.network.sigmoid,
    }
    if cfg.network.normalize_inputs:
        out["input_low"], out["input_high"] = input_ranges(task, index)
    return out


def algorithm_config(cfg: AgentConfig) -> Any:
    """The RLlib ``AlgorithmConfig`` of a run (DQN or SAC with the HER buffer, or PQN; vectorised goal env)."""
    from ray.tune.registry import register_env

    from plray.envs.registry import make_env

    register_env(ENV_NAME, make_env)
    task = make_task(cfg.task, **cfg.task_kwargs)
    gamma = cfg.gamma or task.gamma
    tr = cfg.training
    her = {
        "task": cfg.task,
        "task_kwargs": dict(cfg.task_kwargs),
        "strategy": cfg.her.strategy,
        "k": cfg.her.k,
        "seed": cfg.seed,
    }
    buffer = {"type": BUFFER_TYPE, "capacity": tr.replay_capacity, **her}
    lr: Any = tr.lr if tr.lr_final is None else [[0, tr.lr], [tr.total_env_steps, tr.lr_final]]
    common_training: dict[str, Any] = {
        "lr": lr,
        "gamma": gamma,
        "train_batch_size_per_learner": tr.train_batch_size,
        "replay_buffer_config": buffer,
        "num_steps_sampled_before_learning_starts": tr.learning_starts,
        "n_step": 1,
        "tau": tr.tau,
        "grad_clip": tr.grad_clip,
        "grad_clip_by": "global_norm",
    }
    if tr.training_intensity is not None:
        common_training["training_intensity"] = tr.training_intensity
    decay_steps = max(1, int(tr.epsilon_fraction * tr.total_env_steps))
    epsilon = [(0, tr.epsilon_start), (decay_steps, tr.epsilon_end)]
    builders = {"pqn": _pqn_config, "dqn": _dqn_config, "sac": _sac_config}
    algo_cfg = builders[cfg.algorithm](cfg, task, common_training, her, epsilon)
    rounds = 1 if cfg.algorithm == "pqn" else 8  # sampling rounds per iteration (pqn: one rollout)
    return (
        algo_cfg.environment(
            ENV_NAME,
            env_config={
                "task": cfg.task,
                "task_kwargs": dict(cfg.task_kwargs),
                "seed": cfg.seed,
                "start_states": tr.start_states,
            },
        )
        .env_runners(
            num_env_runners=tr.num_env_runners,
            num_envs_per_env_runner=tr.num_envs,
            gym_env_vectorize_mode="vector_entry_point",
            rollout_fragment_length=tr.rollout_fragment_length,
        )
        .fault_tolerance(restart_failed_env_runners=False)
        # iterations of a fixed number of rounds, never of wall-clock (RLlib's SAC default is >= 1 s),
        # so the same seed trains the same agent whatever the machine's speed
        .reporting(
            min_sample_timesteps_per_iteration=tr.num_envs * tr.rollout_fragment_length * rounds,
            min_time_s_per_iteration=0,
        )
        .debugging(seed=cfg.seed, log_level="ERROR")
    )


def _pqn_config(cfg: AgentConfig, task: GoalTask, common: dict[str, Any], her: dict[str, Any], epsilon: list) -> Any:
    """PQN: on-policy Q(λ)-style updates over the vectorised env, relabelling inside the learner."""
    from plray.agents.pqn import PQNConfig

    tr = cfg.training
    algo_cfg = PQNConfig().training(
        lr=common["lr"],
        gamma=common["gamma"],
        grad_clip=tr.grad_clip,
        grad_clip_by="global_norm",
        her=her,
        epsilon=epsilon,
        num_epochs=tr.num_epochs,
        minibatch_size=tr.train_batch_size,
        optimizer=tr.optimizer or "radam",
    )
    return algo_cfg.rl_module(model_config=network_config(cfg, task))


def _dqn_config(cfg: AgentConfig, task: GoalTask, common: dict[str, Any], her: dict[str, Any], epsilon: list) -> Any:
    """DQN with the goal Q-network module and the hindsight replay buffer."""
    from ray.rllib.algorithms.dqn import DQNConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from plray.agents.rllib_module import GoalQTorchRLModule

    tr = cfg.training
    return (
        DQNConfig()
        .rl_module(rl_module_spec=RLModuleSpec(module_class=GoalQTorchRLModule, model_config=network_config(cfg, task)))
        .training(
            **common,
            double_q=tr.double_q,
            dueling=False,
            num_atoms=1,
            epsilon=epsilon,
            target_network_update_freq=tr.target_update_freq,
        )
    )


def _sac_config(cfg: AgentConfig, task: GoalTask, common: dict[str, Any], her: dict[str, Any], epsilon: list) -> Any:
    """SAC for continuous actions: RLlib's SAC module and losses, batches from plray's flat hindsight store.

    (:mod:`plray.agents.sac`; SAC's config validation accepts only RLlib's own buffer names, so the
    config names RLlib's ``EpisodeReplayBuffer`` and the algorithm's setup puts the store in its place.)
    """
    from plray.agents.sac import HindsightSACConfig

    tr = cfg.training
    lr = common["lr"]
    training = common | {
        "replay_buffer_config": {"type": "EpisodeReplayBuffer", "capacity": tr.replay_capacity},
        "lr": None,
        "actor_lr": lr,
        "critic_lr": lr,
        "alpha_lr": lr,
    }
    if tr.initial_alpha is not None:
        training["initial_alpha"] = tr.initial_alpha
    return (
        HindsightSACConfig()
        .rl_module(
            model_config={
                "fcnet_hiddens": list(cfg.network.hiddens),
                "fcnet_activation": cfg.network.activation,
                "fcnet_use_layernorm": cfg.network.layernorm,
            }
        )
        .training(**training, her=her, target_network_update_freq=0)
    )


# --------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate_greedy(source: QSource, episodes_per_goal: int, seed: int) -> dict[str, Any]:
    """Greedy rollouts of an agent (DQN: argmax Q; SAC: the policy mean) on the true task, per training goal.

    Returns ``{"success_rate", "success_per_goal", "mean_return", "mean_steps_to_goal"}``: success
    is reaching the goal (termination) before the episode's step limit.
    """
    goals = np.asarray(source.task.training_goals, dtype=np.float64)
    rng = np.random.default_rng([seed, 7])
    per_goal: list[float] = []
    returns: list[float] = []
    steps: list[float | None] = []
    for g in goals:
        reached, ret, t_reach = _greedy_episodes(source, g, episodes_per_goal, rng)
        per_goal.append(float(reached.mean()))
        returns.append(float(ret.mean()))
        steps.append(float(t_reach[reached].mean()) if reached.any() else None)
    return {
        "success_rate": float(np.mean(per_goal)),
        "success_per_goal": per_goal,
        "mean_return": float(np.mean(returns)),
        "mean_steps_to_goal": steps,
    }


def _greedy_episodes(
    source: QSource, goal: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n greedy episodes for one goal (k,) from reset states, through :func:`plray.evaluation.rollout.rollout`.

    Every episode is stepped until all have ended (successors drawn for the whole batch).

    Returns:
        (reached (n,) bool, discounted returns (n,), steps to the goal (n,), the step limit if never).
    """
    task = source.task
    states = task.reset_states(n, rng)
    goal_rows = np.repeat(goal[None], n, axis=0)

    def act(s: np.ndarray) -> np.ndarray:
        return source.greedy_actions(task.observe(s), goal_rows).numpy()

    def step(s: np.ndarray, a: np.ndarray) -> np.ndarray:
        return task.sample_next_state(s, a, rng)

    out = rollout(
        step, task_goal(task, goal), states, task.max_episode_steps, source.gamma, policy=act, after_done="continue"
    )
    return out.done, out.returns, out.steps


# --------------------------------------------------------------------------- run directory
class Progress:
    """One updating line on stderr (a newline per line when stderr is not a terminal)."""

    def __init__(self, name: str, total: int, enabled: bool = True) -> None:
        self.name, self.total, self.enabled = name, total, enabled
        self.start = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def update(self, steps: int, fields: dict[str, float | None], steps_at_start: int = 0) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        rate = (steps - steps_at_start) / elapsed if elapsed > 0 else 0.0
        eta = max(0.0, self.total - steps) / rate if rate > 0 else float("inf")
        extra = "  ".join(f"{k} {v:.3g}" for k, v in fields.items() if v is not None and np.isfinite(v))
        eta_s = f"{int(eta // 60)}m{int(eta % 60):02d}s" if np.isfinite(eta) else "?"
        line = (
            f"[{self.name}] {100 * min(steps, self.total) / self.total:5.1f}%  {steps}/{self.total} steps  "
            f"{rate:.0f} steps/s  eta {eta_s}  {extra}"
        )
        print(("\r" + line.ljust(120)) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=sys.stderr)


def _latest_checkpoint(ckpt_root: Path) -> tuple[Path, dict[str, Any]] | None:
    pointer = ckpt_root / "latest.json"
    if not pointer.is_file():
        return None
    info = json.loads(pointer.read_text(encoding="utf-8"))
    path = ckpt_root / info["name"]
    return (path, info) if path.is_dir() else None


def _save_checkpoint(algo: Any, ckpt_root: Path, iteration: int, env_steps: int, keep: int) -> Path:
    name = f"iter_{iteration:06d}"
    tmp = ckpt_root / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    algo.save_to_path(str(tmp.resolve()))
    final = ckpt_root / name
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    atomic_write_json(ckpt_root / "latest.json", {"name": name, "iteration": iteration, "env_steps": env_steps})
    existing = sorted(p for p in ckpt_root.glob("iter_*") if p.is_dir())
    for old in existing[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def build_algorithm(cfg: AgentConfig) -> Any:
    """Build the RLlib algorithm of a run, with the hindsight replay buffer in place (dqn)."""
    from plray.agents.her import HindsightEpisodeReplayBuffer

    algo = algorithm_config(cfg).build_algo()
    if cfg.algorithm in ("pqn", "sac"):  # relabelling inside the algorithm (plray.agents.pqn, plray.agents.sac)
        return algo
    if not isinstance(algo.local_replay_buffer, HindsightEpisodeReplayBuffer):
        algo.local_replay_buffer = HindsightEpisodeReplayBuffer(
            task=cfg.task,
            task_kwargs=dict(cfg.task_kwargs),
            strategy=cfg.her.strategy,
            k=cfg.her.k,
            seed=cfg.seed,
            capacity=cfg.training.replay_capacity,
        )
    return algo


def _on_learner(algo: Any, fn: Callable[[Any], Any]) -> Any:
    """``fn(learner)`` on the (first) learner of the algorithm, through RLlib's public ``foreach_learner``.

    With a local learner (``num_learners=0``, plray's setting) ``fn`` sees the learner itself, so a
    module it returns is the one being trained; remote learners return a copy.
    """
    return next(iter(algo.learner_group.foreach_learner(fn))).get()


def _dqn_network(algo: Any) -> GoalQNetwork:
    return _on_learner(algo, lambda learner: learner.module[DEFAULT_POLICY].to_network())


def load_config(path: str | os.PathLike[str]) -> AgentConfig:
    from plray.utils.schema import load_yaml

    return load_yaml(AgentConfig, path)


def train(
    cfg: AgentConfig,
    out_dir: str | os.PathLike[str],
    *,
    resume: bool = True,
    progress: bool = True,
    address: str | None = None,
    max_iterations: int | None = None,
    on_iteration: Callable[[int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume) one agent and write its run directory; returns the final metrics.

    Args:
        cfg: the validated configuration.
        out_dir: run directory.
        resume: continue from the newest checkpoint in ``out_dir`` if there is one.
        progress: print a progress line per iteration on stderr.
        address: Ray cluster address; None starts (or reuses) a local Ray.
        max_iterations: stop after this many iterations in this call (for tests and interruption).
        on_iteration: called after each iteration with (iteration, result summary).
    """
    out = Path(out_dir)
    ckpt_root = out / "checkpoints"
    latest = _prepare_run_dir(cfg, out, resume)
    torch.set_num_threads(cfg.training.torch_threads)
    with ray_runtime.connect(address, num_cpus=max(2, cfg.training.num_env_runners + 1)):
        task = make_task(cfg.task, **cfg.task_kwargs)
        gamma = cfg.gamma or task.gamma
        algo = build_algorithm(cfg)
        try:
            iteration = int(latest[1]["iteration"]) if latest is not None else 0
            if latest is not None:
                algo.restore_from_path(str(latest[0].resolve()))
            steps_at_start = int(latest[1]["env_steps"]) if latest is not None else 0
            wall_start = time.perf_counter()
            iteration, env_steps = _train_loop(
                algo, cfg, out, iteration, steps_at_start, progress, max_iterations, on_iteration
            )
            wall = time.perf_counter() - wall_start
            _save_checkpoint(algo, ckpt_root, iteration, env_steps, cfg.checkpoint.keep)
            metrics: dict[str, Any] = {
                "run": cfg.run_name,
                "task": cfg.task,
                "algorithm": cfg.algorithm,
                "seed": cfg.seed,
                "iterations": iteration,
                "env_steps": env_steps,
                "finished": env_steps >= cfg.training.total_env_steps,
                "wall_clock_s_this_call": wall,
                "env_steps_per_s_this_call": (env_steps - steps_at_start) / wall if wall > 0 else None,
            }
            _export_agent(algo, cfg, task, gamma, out, metrics)
            atomic_write_json(out / "metrics.json", metrics)
            return metrics
        finally:
            algo.stop()


def _prepare_run_dir(cfg: AgentConfig, out: Path, resume: bool) -> tuple[Path, dict[str, Any]] | None:
    """Create the run directory, refuse another config's run, write ``config.yaml``; the newest checkpoint."""
    out.mkdir(parents=True, exist_ok=True)
    ckpt_root = out / "checkpoints"
    ckpt_root.mkdir(exist_ok=True)
    config_file = out / "config.yaml"
    latest = _latest_checkpoint(ckpt_root) if resume else None
    if latest is not None:
        different = (
            f"{out}: holds a run with a different configuration; resume it with its own config.yaml, "
            "or choose another output directory"
        )
        check_stored_config(config_file, cfg, different=different)
    write_stored_config(config_file, cfg)
    return latest


def _train_loop(
    algo: Any,
    cfg: AgentConfig,
    out: Path,
    iteration: int,
    env_steps: int,
    progress: bool,
    max_iterations: int | None,
    on_iteration: Callable[[int, dict[str, Any]], None] | None,
) -> tuple[int, int]:
    """RLlib iterations until the step budget (or ``max_iterations``); returns (iteration, env steps).

    Appends one line per iteration to ``progress.jsonl`` and checkpoints every ``checkpoint.every_iters``.
    """
    steps_at_start = env_steps
    bar = Progress(cfg.run_name, cfg.training.total_env_steps, progress)
    wall_start = time.perf_counter()
    done_iters = 0
    while env_steps < cfg.training.total_env_steps:
        if max_iterations is not None and done_iters >= max_iterations:
            break
        result = algo.train()
        iteration += 1
        done_iters += 1
        runners = result.get("env_runners", {})
        learner = result.get("learners", {}).get("default_policy", {})
        env_steps = int(runners.get("num_env_steps_sampled_lifetime", env_steps))
        summary = {
            "iteration": iteration,
            "env_steps": env_steps,
            "episode_return_mean": runners.get("episode_return_mean"),
            "episode_len_mean": runners.get("episode_len_mean"),
            "loss": learner.get("qf_loss", learner.get("total_loss")),
            "time_s": time.perf_counter() - wall_start,
        }
        with (out / "progress.jsonl").open("a", encoding="utf-8") as fh:
            # strict JSON: no NaN (RLlib reports NaN episode means for rounds where no episode ended)
            finite = {
                k: v for k, v in summary.items() if v is not None and not (isinstance(v, float) and not np.isfinite(v))
            }
            fh.write(json.dumps(finite, allow_nan=False) + "\n")
        bar.update(env_steps, {"return": summary["episode_return_mean"], "loss": summary["loss"]}, steps_at_start)
        if on_iteration is not None:
            on_iteration(iteration, summary)
        if iteration % cfg.checkpoint.every_iters == 0:
            _save_checkpoint(algo, out / "checkpoints", iteration, env_steps, cfg.checkpoint.keep)
    bar.close()
    return iteration, env_steps


def _export_agent(
    algo: Any, cfg: AgentConfig, task: GoalTask, gamma: float, out: Path, metrics: dict[str, Any]
) -> None:
    """Evaluate the greedy agent (into ``metrics``) and write the pickle-free agent artifact."""
    manifest: dict[str, Any] = {
        "task": cfg.task,
        "task_kwargs": dict(cfg.task_kwargs),
        "gamma": gamma,
        "algorithm": cfg.algorithm,
        "env_steps": metrics["env_steps"],
        "seed": cfg.seed,
    }
    if cfg.algorithm in ("dqn", "pqn"):
        net = _dqn_network(algo)
        manifest |= {"value_mode": "max", "network": network_config(cfg, task)}
        source: QSource = NetworkQSource(net, task, gamma)
        tensors: dict[str, Any] = {"q": net.state_dict()}
    else:
        module = _on_learner(algo, lambda learner: learner.module[DEFAULT_POLICY])
        log_alpha = _on_learner(algo, lambda learner: learner.curr_log_alpha[DEFAULT_POLICY])
        alpha = float(torch.exp(log_alpha).detach().reshape(-1)[0])
        tensors, extra = SACQSource.export(module, alpha)
        manifest |= extra
        source = SACQSource(module, task, gamma, alpha)
    metrics |= evaluate_greedy(source, cfg.evaluation.episodes_per_goal, cfg.seed)
    save_agent(out / "agent", tensors, manifest | goal_set_record(task) | {"metrics": metrics})
    if cfg.algorithm == "sac":
        module.train()  # the source froze the learner's module for evaluation; give it back
        for p in module.parameters():
            p.requires_grad_(True)
