"""Shared fixtures: FourRooms variants with exact goal-conditioned Q-values."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from plray.core import bellman_matrix_from_q
from plray.envs import FourRooms, GoalSet
from plray.envs.fourrooms import DEFAULT_GAMMA
from plray.evaluation import value_iteration

GAMMA = DEFAULT_GAMMA

# Small models run faster on one thread, and CI has two cores shared with Ray's workers.
torch.set_num_threads(1)


@dataclass(frozen=True)
class ExactAgent:
    """A FourRooms variant with the exact Q* of a goal set and its Bellman matrix."""

    env: FourRooms
    goals: GoalSet
    Q: np.ndarray  # (S, A, G)
    M: np.ndarray  # (G, S)

    @property
    def P(self) -> np.ndarray:
        return self.env.kernel


@functools.cache
def exact_agent(variant: str, num_goals: int, family: str = "generic", seed: int = 0) -> ExactAgent:
    env = FourRooms(variant)
    goals = env.goal_set(num_goals, family, seed=seed)
    Q = value_iteration(env.kernel, goals.rewards, goals.dones, GAMMA).Q
    M = bellman_matrix_from_q(Q, goals.rewards, GAMMA, goals.dones)
    return ExactAgent(env, goals, Q, M)


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray runtime for the tests that need it (2 CPUs, no dashboard, auth off)."""
    import os

    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # address="local": always a fresh runtime, never a cluster some `ray start` left on this host
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(params=["deterministic", "windy", "teleport"])
def variant(request: pytest.FixtureRequest) -> str:
    return request.param
