"""Goal-conditioned PQN on RLlib's new API stack: the paper's agent (docs/method.md#agents), with hindsight relabelling.

PQN (Gallici et al. 2024) is Q-learning without a replay buffer or a target network: each
iteration samples a rollout of ``num_envs`` x ``rollout_fragment_length`` steps with ε-greedy
actions, and trains on it once, in minibatches, with the one-step target

    y = r + γ (1 − terminated) max_a' sg(Q(s', a', g))

computed with the current network (LayerNorm keeps that stable). A truncated episode still
bootstraps from its last observation ("partial-episode bootstrapping"). Each rollout is
relabelled before training: every transition is followed by k copies whose goal is an achieved
goal later in the same rollout fragment (``future``, the paper's Reacher agent) or a random
training goal (``random``, its MountainCar agents); see :func:`plray.agents.her.relabel_fragments`.

RLlib pieces: :class:`PQNConfig` (an ``AlgorithmConfig``), :class:`PQN` (an ``Algorithm`` whose
``training_step`` samples from the env runners, relabels, updates the learner group and syncs
weights back), :class:`PQNTorchLearner` (RAdam as :class:`plray.agents.optim.FusedRAdam`, or fused
Adam; the squared TD loss; one finiteness test per step, not RLlib's two per tensor) and
:class:`GoalPQNTorchRLModule` (the goal Q-network of :mod:`plray.agents.rllib_module`, whose train
forward pass also evaluates Q at the next observations without gradient). Checkpoints, resuming,
env runners on a cluster and the learner group are RLlib's own.

Compared with the DQN path (replay buffer, target network), PQN spends its time in a few large
numpy/torch operations per rollout rather than in per-transition episode objects, so it samples
about an order of magnitude more environment steps per second on a CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.algorithms.dqn.default_dqn_rl_module import QF_PREDS
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

from plray.agents.her import HER_STRATEGIES, check_k, relabel_fragments, resolve_task
from plray.agents.optim import FusedRAdam, GlobalFinitenessStep
from plray.agents.rllib_module import GoalQTorchRLModule
from plray.envs.base import GoalTask
from plray.utils.validation import PlrayInputError, check_choice

QF_NEXT_PREDS = "qf_next_preds"
MODULE_ID = "default_policy"
OPTIMIZERS = ("radam", "adam")


class GoalPQNTorchRLModule(GoalQTorchRLModule):
    """:class:`GoalQTorchRLModule` whose train pass returns Q(s, ·, g) and, without gradient, Q(s', ·, g)."""

    def _forward_train(self, batch: dict[str, Any]) -> dict[str, Any]:
        if self.inference_only:
            raise RuntimeError("GoalPQNTorchRLModule: an inference-only module cannot be trained")
        out = {QF_PREDS: self.compute_q_values(batch)[QF_PREDS]}
        with torch.no_grad():
            out[QF_NEXT_PREDS] = self.compute_q_values({Columns.OBS: batch[Columns.NEXT_OBS]})[QF_PREDS]
        return out


class PQNTorchLearner(GlobalFinitenessStep, TorchLearner):
    """Squared one-step TD loss against the current network's own (stop-gradient) next-state values."""

    def configure_optimizers_for_module(self, module_id: str, config: Any = None) -> None:
        module = self._module[module_id]
        params = self.get_parameters(module)
        # both in one fused pass per step (plray.agents.optim): torch's per-tensor RAdam was half of a step
        optimizer = FusedRAdam(params) if config.optimizer == "radam" else torch.optim.Adam(params, fused=True)
        self.register_optimizer(module_id=module_id, optimizer=optimizer, params=params, lr_or_lr_schedule=config.lr)

    def compute_loss_for_module(self, *, module_id: str, config: Any, batch: dict[str, Any], fwd_out: Any) -> Any:
        q = fwd_out[QF_PREDS]  # (B, A)
        actions = batch[Columns.ACTIONS].long().reshape(-1, 1)
        q_sa = q.gather(-1, actions).squeeze(-1)  # (B,)
        not_done = 1.0 - batch[Columns.TERMINATEDS].float()
        target = batch[Columns.REWARDS].float() + config.gamma * not_done * fwd_out[QF_NEXT_PREDS].max(-1).values
        td = q_sa - target.detach()
        loss = 0.5 * (td**2).mean()
        self.metrics.log_dict(
            {"qf_loss": loss.detach(), "qf_mean": q_sa.detach().mean(), "td_error_abs_mean": td.detach().abs().mean()},
            key=module_id,
            window=1,
        )
        return loss


class PQNConfig(AlgorithmConfig):
    """Configuration of :class:`PQN`.

    Beyond RLlib's common settings (``lr`` and its schedules, ``gamma``, ``grad_clip``, env runners):

    * ``her``: ``{"task", "task_kwargs", "strategy", "k", "seed"}``, the relabelling of each rollout;
    * ``epsilon``: ε-greedy schedule ``[(0, 1.0), (steps, end)]`` in global env steps;
    * ``num_epochs`` and ``minibatch_size``: passes over each relabelled rollout, and its minibatch;
    * ``optimizer``: ``radam`` (the paper's agents) or ``adam``.
    """

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or PQN)
        self.lr = 1e-4
        self.gamma = 0.99
        self.grad_clip = 10.0
        self.grad_clip_by = "global_norm"
        self.her: dict[str, Any] = {}
        self.epsilon: Any = [(0, 1.0), (1_000_000, 0.1)]
        self.num_epochs = 1
        self.minibatch_size = 256
        self.optimizer = "radam"

    def training(
        self,
        *,
        her: dict[str, Any] | Any = NotProvided,
        epsilon: Any = NotProvided,
        num_epochs: int | Any = NotProvided,
        minibatch_size: int | Any = NotProvided,
        optimizer: str | Any = NotProvided,
        **kwargs: Any,
    ) -> PQNConfig:
        super().training(**kwargs)
        if her is not NotProvided:
            self.her = dict(her)
        if epsilon is not NotProvided:
            self.epsilon = epsilon
        if num_epochs is not NotProvided:
            self.num_epochs = int(num_epochs)
        if minibatch_size is not NotProvided:
            self.minibatch_size = int(minibatch_size)
        if optimizer is not NotProvided:
            self.optimizer = optimizer
        return self

    def validate(self) -> None:
        super().validate()
        if self.optimizer not in OPTIMIZERS:
            raise PlrayInputError(f"pqn optimizer: unknown {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if "task" not in self.her:
            raise PlrayInputError("pqn her: the relabelling needs a 'task' (its reward function relabels)")
        if self.num_epochs < 1 or self.minibatch_size < 1:
            raise PlrayInputError("pqn: num_epochs and minibatch_size must be >= 1")

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(module_class=GoalPQNTorchRLModule)

    def get_default_learner_class(self) -> type:
        return PQNTorchLearner

    @property
    def _model_config_auto_includes(self) -> dict[str, Any]:
        return super()._model_config_auto_includes | {"epsilon": self.epsilon, "double_q": False}

    @property
    def rollout_env_steps(self) -> int:
        """Env steps sampled per iteration: every env of every runner steps ``rollout_fragment_length`` times."""
        runners = max(1, self.num_env_runners)
        return int(self.num_envs_per_env_runner) * int(self.get_rollout_fragment_length()) * runners


class PQN(Algorithm):
    """Goal-conditioned PQN: sample a rollout, relabel it, train on it once, sync the env runners' weights."""

    @classmethod
    def get_default_config(cls) -> PQNConfig:
        return PQNConfig()

    def setup(self, config: Any) -> None:
        super().setup(config)
        her = self.config.her
        self._her_task: GoalTask = resolve_task(her["task"], her.get("task_kwargs"))
        self._her_strategy = check_choice(her.get("strategy", "future"), "her strategy", HER_STRATEGIES)
        self._her_k = check_k(her.get("k", 4))
        seed = her.get("seed")
        self._her_rng = np.random.default_rng(None if seed is None else [int(seed), 2])

    def training_step(self) -> None:
        cfg = self.config
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, runner_results = synchronous_parallel_sample(
                worker_set=self.env_runner_group,
                max_env_steps=cfg.rollout_env_steps,
                sample_timeout_s=cfg.sample_timeout_s,
                _uses_new_env_runners=True,
                _return_metrics=True,
            )
        if not episodes:
            return
        self.metrics.aggregate(runner_results, key=ENV_RUNNER_RESULTS)
        batch = self._train_batch(episodes)
        lifetime = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            results = self.learner_group.update(
                batch=batch,
                timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: lifetime},
                num_epochs=cfg.num_epochs,
                minibatch_size=min(cfg.minibatch_size, batch.policy_batches[MODULE_ID].count),
                shuffle_batch_per_epoch=cfg.num_epochs > 1,
            )
            self.metrics.aggregate(results, key=LEARNER_RESULTS)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(
                from_worker_or_learner_group=self.learner_group, policies=[MODULE_ID], inference_only=True
            )

    def _train_batch(self, episodes: list[Any]) -> MultiAgentBatch:
        """The rollout's transitions and their relabelled copies, shuffled, as one MultiAgentBatch."""
        episodes = [ep for ep in episodes if len(ep) > 0]
        data = relabel_fragments(
            self._her_task,
            [np.asarray(ep.get_observations()) for ep in episodes],
            [np.asarray(ep.get_actions()) for ep in episodes],
            [np.asarray(ep.get_rewards()) for ep in episodes],
            [bool(ep.is_terminated) for ep in episodes],
            self._her_strategy,
            self._her_k,
            self._her_rng,
        )
        order = self._her_rng.permutation(len(data["actions"]))  # one shuffle: minibatches mix goals and envs
        columns = {
            Columns.OBS: data["obs"][order],
            Columns.NEXT_OBS: data["next_obs"][order],
            Columns.ACTIONS: data["actions"][order],
            Columns.REWARDS: data["rewards"][order],
            Columns.TERMINATEDS: data["terminateds"][order],
        }
        env_steps = sum(len(ep) for ep in episodes)
        return MultiAgentBatch({MODULE_ID: SampleBatch(columns)}, env_steps=env_steps)
