"""The typed schema of one agent-training run (``plray train CONFIG.yaml``).

Example (configs/agents/mountaincar-position.yaml)::

    name: mountaincar-position
    task: mountaincar-position
    algorithm: dqn
    seed: 0
    her: {strategy: random, k: 4}
    network: {hiddens: [256, 256], layernorm: true, sigmoid: true, input_dims: null}
    training: {total_env_steps: 200000, num_envs: 64, lr: 0.0003}

Every field has a default except ``task``; errors name the field and the allowed values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from plray.agents.her import HER_STRATEGIES
from plray.utils.schema import ConfigError, non_negative, open_unit_interval, positive, unit_interval
from plray.utils.validation import PlrayInputError


def _her_strategy(value: str) -> str | None:
    return None if value in HER_STRATEGIES else f"unknown strategy {value!r}; choose one of {', '.join(HER_STRATEGIES)}"


@dataclass(frozen=True)
class HERConfig:
    """Hindsight relabelling."""

    strategy: str = field(default="future", metadata={"check": _her_strategy})
    """future | final | episode | random (a random training goal)."""
    k: int = field(default=4, metadata={"check": non_negative})
    """Relabelled copies per real transition in each train batch (0 disables relabelling)."""


@dataclass(frozen=True)
class NetworkConfig:
    """The Q-network (and, for SAC, the actor and critics' hidden layers)."""

    hiddens: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden layer widths."""
    layernorm: bool = True
    """LayerNorm after each hidden layer (the paper's agents)."""
    activation: Literal["relu", "tanh", "silu", "elu"] = "relu"
    """Hidden activation."""
    sigmoid: bool = True
    """Squash Q into (0, 1): sparse {0, 1} rewards keep Q there (the paper's agents)."""
    input_dims: list[int] | None = None
    """Observation entries the network reads (the goal entries are always added); None: all."""
    normalize_inputs: bool = True
    """Rescale each input to about [-1, 1] from the task's ranges (observations of states sampled over
    the state box, and the goals), so inputs of very different scales train alike."""

    def validate(self) -> None:
        if not self.hiddens or min(self.hiddens) < 1:
            raise ConfigError(f"network.hiddens: need at least one layer of width >= 1, got {self.hiddens}")


@dataclass(frozen=True)
class TrainingConfig:
    """Sampling and optimisation."""

    total_env_steps: int = field(default=200_000, metadata={"check": positive})
    """Environment steps to sample in total."""
    num_envs: int = field(default=64, metadata={"check": positive})
    """Environments stepped together (one numpy-batched vector env) per env runner."""
    num_env_runners: int = field(default=0, metadata={"check": non_negative})
    """Remote sampling actors (0: sample in the driver process)."""
    rollout_fragment_length: int = field(default=4, metadata={"check": positive})
    """Steps per environment per sampling round (pqn: the rollout length, the paper's NUM_STEPS = 64)."""
    train_batch_size: int = field(default=256, metadata={"check": positive})
    """Transitions per gradient step (relabelled copies included); for pqn, the minibatch size."""
    num_epochs: int = field(default=1, metadata={"check": positive})
    """pqn: passes over each relabelled rollout (the paper: 1)."""
    optimizer: Literal["adam", "radam"] | None = None
    """pqn: adam or radam; None: radam for pqn (the paper's agents), RLlib's Adam for dqn and sac."""
    training_intensity: float | None = None
    """dqn, sac: replayed / sampled transitions ratio; None: RLlib's default (one update per round)."""
    lr: float = field(default=3e-4, metadata={"check": positive})
    """Adam learning rate."""
    lr_final: float | None = field(default=None, metadata={"check": lambda v: positive(v) if v is not None else None})
    """Learning rate reached linearly at total_env_steps (the paper decays to ~0); None: constant."""
    start_states: Literal["reset", "uniform"] = "reset"
    """Where training episodes start: the task's reset distribution, or uniform over its state box
    (exploring starts: the agent learns Q on every state P-learning and Q_NMSE query, not only on
    those reachable soon after a reset; evaluation always starts from the reset distribution)."""
    torch_threads: int = field(default=1, metadata={"check": positive})
    """torch intra-op threads in the trainer (one is fastest for these small networks on few cores)."""
    grad_clip: float | None = 10.0
    """Global gradient-norm clip (the paper's agents: 10); None: off."""
    replay_capacity: int = field(default=500_000, metadata={"check": positive})
    """dqn, sac: replay buffer capacity in transitions."""
    learning_starts: int = field(default=2_000, metadata={"check": non_negative})
    """dqn, sac: steps sampled before the first update."""
    epsilon_start: float = field(default=1.0, metadata={"check": unit_interval})
    """dqn, pqn: initial exploration rate."""
    epsilon_end: float = field(default=0.1, metadata={"check": unit_interval})
    """dqn, pqn: final exploration rate (the paper's agents: 0.1)."""
    epsilon_fraction: float = field(default=0.5, metadata={"check": unit_interval})
    """dqn, pqn: fraction of total_env_steps over which epsilon decays linearly (the paper: 0.5)."""
    target_update_freq: int = field(default=500, metadata={"check": positive})
    """DQN: steps between target-network updates."""
    double_q: bool = True
    """DQN: double Q-learning."""
    tau: float = field(default=1.0, metadata={"check": unit_interval})
    """Target-network update rate (1.0: copy)."""
    initial_alpha: float | None = field(
        default=None, metadata={"check": lambda v: positive(v) if v is not None else None}
    )
    """sac: initial entropy weight α (tuned towards the target entropy −action_dim from there); None:
    RLlib's 1.0, which with sparse {0, 1} rewards swamps Q with the entropy bonus for thousands of updates."""


@dataclass(frozen=True)
class CheckpointConfig:
    """Periodic checkpoints (RLlib format, for resuming) under ``<out>/checkpoints``."""

    every_iters: int = field(default=20, metadata={"check": positive})
    """Training iterations between checkpoints."""
    keep: int = field(default=2, metadata={"check": positive})
    """Checkpoints kept on disk (the newest)."""


@dataclass(frozen=True)
class EvaluationConfig:
    """Greedy evaluation after training, on the task's training goals."""

    episodes_per_goal: int = field(default=64, metadata={"check": positive})
    """Greedy episodes per training goal."""


@dataclass(frozen=True)
class AgentConfig:
    """One goal-conditioned agent: task, algorithm, relabelling, network, training."""

    task: str
    """Task name (see ``plray.envs.registry.TASKS``)."""
    name: str = ""
    """Run name (defaults to the task name)."""
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    """Task constructor arguments (``fourrooms``: variant, num_goals, goal_family, seed, ...)."""
    algorithm: Literal["dqn", "pqn", "sac"] = "dqn"
    """dqn (replay buffer, target network) or pqn (the paper's agent: no replay, no target network,
    one pass over each relabelled rollout) for discrete actions; sac for continuous actions."""
    seed: int = 0
    """Seeds RLlib, the environments and the relabelling."""
    gamma: float | None = field(default=None, metadata={"check": lambda v: open_unit_interval(v) if v else None})
    """Discount; None: the task's own (0.99 for the continuous tasks, 0.95 for FourRooms)."""
    her: HERConfig = field(default_factory=HERConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)

    def validate(self) -> None:
        from plray.envs.registry import TASKS, make_task

        if self.task not in TASKS:
            raise ConfigError(f"task: unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        try:
            task = make_task(self.task, **self.task_kwargs)
        except PlrayInputError as exc:
            raise ConfigError(str(exc)) from exc
        discrete = task.num_actions is not None
        if discrete and self.algorithm not in ("dqn", "pqn"):
            raise ConfigError(f"algorithm: task {self.task!r} has discrete actions; use dqn or pqn")
        if not discrete and self.algorithm != "sac":
            raise ConfigError(f"algorithm: task {self.task!r} has continuous actions; use sac")
        if self.her.strategy != "random" and self.her.k > 0:
            try:
                task.achieved_goal(task.reset_states(1, np.random.default_rng(0)))
            except Exception as exc:
                raise ConfigError(f"her.strategy: {self.her.strategy!r} is not available for this task: {exc}") from exc
        if self.network.input_dims is not None:
            bad = [d for d in self.network.input_dims if not 0 <= d < task.obs_dim]
            if bad:
                raise ConfigError(
                    f"network.input_dims: entries must index the task's {task.obs_dim} observation dims, got {bad}"
                )
        if self.training.optimizer == "radam" and self.algorithm != "pqn":
            raise ConfigError("training.optimizer: radam is available for pqn only (dqn and sac use RLlib's Adam)")
        if self.training.train_batch_size < self.her.k + 1:
            raise ConfigError(f"training.train_batch_size: must be at least her.k + 1 = {self.her.k + 1}")

    @property
    def run_name(self) -> str:
        return self.name or self.task
