"""Array and callable aliases used across plray (the one place that declares them).

Shapes are written in docstrings with these letters:

* ``S``: number of states (finite state spaces) and ``K`` candidate next states (usually ``K = S``);
* ``A``: number of discrete actions;
* ``G``: number of goals (reward functions) in the agent's training set;
* ``B``: batch size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

NextStateFn = Callable[[FloatArray, np.ndarray], FloatArray]
"""next_state_fn(states (B, d), actions (B,) ints or (B, action_dim)) -> next states (B, d): true
dynamics or a world model."""
RewardFn = Callable[[FloatArray, FloatArray], FloatArray]
"""reward_fn(next_states (B, d), goals (B, k)) -> rewards (B,): a goal-conditioned reward, paid on arrival."""
TerminalFn = Callable[[FloatArray, FloatArray], BoolArray]
"""terminal_fn(next_states (B, d), goals (B, k)) -> done (B,) bool."""
StateRewardFn = Callable[[FloatArray], FloatArray]
"""reward_fn(next_states (B, d)) -> rewards (B,): one goal's reward, paid on arrival."""
StateTerminalFn = Callable[[FloatArray], BoolArray]
"""terminal_fn(next_states (B, d)) -> done (B,) bool: one goal's termination."""
ForbiddenFn = Callable[[FloatArray], BoolArray]
"""forbidden_fn(next_states (B, d)) -> forbidden (B,) bool: such successors end the episode with reward 0."""
StateForbiddenFn = ForbiddenFn
"""Another name of :data:`ForbiddenFn` (a function of the next state alone)."""
SuccessorFn = Callable[[FloatArray, np.ndarray], tuple[FloatArray, FloatArray]]
"""successor_fn(states (B, d), actions (B,)) -> (nodes (B, K, d), weights (K,)): a quadrature of a
stochastic kernel, e.g. :meth:`~plray.envs.base.GoalTask.successor_quadrature`."""
PolicyFn = Callable[[FloatArray], np.ndarray]
"""policy(states (B, d)) -> actions (B,) ints or (B, action_dim)."""

ValueMode = Literal["max", "policy", "softmax", "logsumexp"]
KernelMethod = Literal["closed-form", "gradient", "sampled", "simplex", "column-match", "value-argmin", "wvf"]

KERNEL_METHODS: tuple[str, ...] = (
    "closed-form",
    "gradient",
    "sampled",
    "simplex",
    "column-match",
    "value-argmin",
    "wvf",
)
VALUE_MODES: tuple[str, ...] = ("max", "policy", "softmax", "logsumexp")
EXTRACTION_METHODS: tuple[str, ...] = ("deterministic", "gaussian", "supervised")
"""Neural extraction methods for continuous tasks (``plray extract --method``): deterministic and
Gaussian P-learning, and the supervised baseline fitted to true transitions."""
ESTIMATORS: tuple[str, ...] = ("two-sample", "one-sample", "score")
"""Gradient estimators of Gaussian P-learning (see :mod:`plray.core.neural_stochastic`)."""
