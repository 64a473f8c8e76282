"""A finished RLlib episode of given observations, for the relabelling tests."""

from collections.abc import Sequence

import numpy as np
from ray.rllib.env.single_agent_episode import SingleAgentEpisode

from plray.envs.base import GoalTask


def episode(task: GoalTask, obs: Sequence[np.ndarray], actions: Sequence[int], rewards: Sequence[float] | None = None):
    """A truncated episode of T + 1 observations (each (o + k,)) and T actions, numpy-backed."""
    ep = SingleAgentEpisode(
        observations=[np.asarray(o, dtype=np.float32) for o in obs],
        actions=list(actions),
        rewards=list(rewards) if rewards is not None else [0.0] * len(actions),
        truncated=True,
        observation_space=task.observation_space(),
        action_space=task.action_space(),
        len_lookback_buffer=0,
    )
    ep.to_numpy()
    return ep
