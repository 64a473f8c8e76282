"""Goal-conditioned SAC on RLlib's new API stack, with hindsight relabelling from a flat replay store.

RLlib's own SAC (``ray.rllib.algorithms.sac``) replays RLlib episode objects: every sampled
transition becomes a one-step ``SingleAgentEpisode`` that the learner connector pipeline turns back
into tensors, which on a CPU cost about as much as the gradient step itself (~0.13 s per update
of 256 transitions, with :class:`plray.agents.her.HindsightEpisodeReplayBuffer`). :class:`HindsightSAC`
keeps RLlib's SAC everywhere else (its module, losses, twin critics, entropy tuning, target
networks, env runners, checkpoints) and changes only where its data come from:

* ``training_step`` stores the env runners' fragments in a
  :class:`plray.agents.her.HindsightTransitionStore` (numpy rows, one per episode) and trains on
  batches sampled from it with the same relabelling (⌈B / (k + 1)⌉ real transitions, each followed
  by k hindsight copies whose rewards come from the task's reward function), passed to the
  learner group as a ``MultiAgentBatch``;
* each gradient step is one ``learner_group.update`` call, so with RLlib's SAC default
  ``target_network_update_freq = 0`` the target critics are Polyak-updated (``tau``) after every
  gradient step, as in Haarnoja et al. (2018);
* :class:`HindsightSACTorchLearner` steps the critics', actor's and temperature's Adam with torch's
  fused kernel and tests the gradients' finiteness once (:class:`plray.agents.optim.GlobalFinitenessStep`).

The number of updates per sampling round follows RLlib's ``training_intensity`` (replayed over
sampled transitions). The store is not part of a checkpoint (as RLlib's buffer is not, by
default): a resumed run refills it with ``num_steps_sampled_before_learning_starts`` new
transitions before it trains again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.dqn.dqn import calculate_rr_weights
from ray.rllib.algorithms.sac import SAC, SACConfig
from ray.rllib.algorithms.sac.torch.sac_torch_learner import SACTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_AGENT_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    REPLAY_BUFFER_ADD_DATA_TIMER,
    REPLAY_BUFFER_SAMPLE_TIMER,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

from plray.agents.her import HindsightTransitionStore, resolve_task
from plray.agents.optim import GlobalFinitenessStep, fused_adam_like
from plray.utils.validation import PlrayInputError

MODULE_ID = "default_policy"


class HindsightSACTorchLearner(GlobalFinitenessStep, SACTorchLearner):
    """RLlib's SAC learner (losses, entropy tuning, target updates) with fused Adam and one finiteness test per step."""

    def register_optimizer(self, *, optimizer: Any, **kwargs: Any) -> None:
        """RLlib's registration, the SAC learner's plain Adam optimizers rebuilt as fused Adam."""
        super().register_optimizer(optimizer=fused_adam_like(optimizer), **kwargs)


class HindsightSACConfig(SACConfig):
    """:class:`HindsightSAC`'s configuration: RLlib's ``SACConfig`` plus ``her``.

    ``her``: ``{"task", "task_kwargs", "strategy", "k", "seed"}``, the relabelling of each
    sampled batch; the store's capacity is ``replay_buffer_config["capacity"]``.
    """

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or HindsightSAC)
        self.her: dict[str, Any] = {}

    def training(self, *, her: dict[str, Any] | None = NotProvided, **kwargs: Any) -> HindsightSACConfig:
        super().training(**kwargs)
        if her is not NotProvided:
            self.her = dict(her or {})
        return self

    def validate(self) -> None:
        super().validate()
        if "task" not in self.her:
            raise PlrayInputError("sac her: the relabelling needs a 'task' (its reward function relabels)")

    def get_default_learner_class(self) -> type:
        return HindsightSACTorchLearner


class HindsightSAC(SAC):
    """SAC whose train batches come from a :class:`HindsightTransitionStore` (see the module docstring)."""

    @classmethod
    def get_default_config(cls) -> HindsightSACConfig:
        return HindsightSACConfig()

    def setup(self, config: Any) -> None:
        super().setup(config)
        her = self.config.her
        task = resolve_task(her["task"], her.get("task_kwargs"))
        capacity = int(self.config.replay_buffer_config["capacity"])
        self._learning_starts = max(1, min(int(self.config.num_steps_sampled_before_learning_starts or 0), capacity))
        self.local_replay_buffer = HindsightTransitionStore(
            task, capacity, strategy=her.get("strategy", "future"), k=her.get("k", 4), seed=her.get("seed")
        )

    def training_step(self) -> None:
        cfg = self.config
        store_weight, train_weight = calculate_rr_weights(cfg)
        for _ in range(store_weight):
            with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
                episodes, runner_results = synchronous_parallel_sample(
                    worker_set=self.env_runner_group,
                    concat=True,
                    sample_timeout_s=cfg.sample_timeout_s,
                    _uses_new_env_runners=True,
                    _return_metrics=True,
                )
            self.metrics.aggregate(runner_results, key=ENV_RUNNER_RESULTS)
            with self.metrics.log_time((TIMERS, REPLAY_BUFFER_ADD_DATA_TIMER)):
                self.local_replay_buffer.add(episodes)
        env_steps = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        if len(self.local_replay_buffer) < self._learning_starts:  # also after a resume: the store starts empty
            return
        timesteps = {
            NUM_ENV_STEPS_SAMPLED_LIFETIME: env_steps,
            NUM_AGENT_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                (ENV_RUNNER_RESULTS, NUM_AGENT_STEPS_SAMPLED_LIFETIME), default={}
            ),
        }
        for _ in range(train_weight):
            with self.metrics.log_time((TIMERS, REPLAY_BUFFER_SAMPLE_TIMER)):
                batch = self._train_batch(cfg.total_train_batch_size)
            with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
                results = self.learner_group.update(batch=batch, timesteps=timesteps)
            self.metrics.aggregate(results, key=LEARNER_RESULTS)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(
                from_worker_or_learner_group=self.learner_group, policies=[MODULE_ID], inference_only=True
            )

    def _train_batch(self, size: int) -> MultiAgentBatch:
        """``size`` relabelled transitions as RLlib's SAC learner reads them (one-step, unweighted)."""
        data = self.local_replay_buffer.sample(size)
        n = len(data["rewards"])
        columns = {
            Columns.OBS: data["obs"],
            Columns.NEXT_OBS: data["new_obs"],
            Columns.ACTIONS: data["actions"],
            Columns.REWARDS: data["rewards"],
            Columns.TERMINATEDS: data["terminateds"],
            "n_step": np.ones(n, dtype=np.float32),
            "weights": np.ones(n, dtype=np.float32),
        }
        return MultiAgentBatch({MODULE_ID: SampleBatch(columns)}, env_steps=n)
