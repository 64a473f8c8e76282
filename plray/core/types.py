"""Array aliases used across plray's core.

Shapes are written in docstrings with these letters:

* ``S``: number of states (finite state spaces) and ``K`` candidate next states (usually ``K = S``);
* ``A``: number of discrete actions;
* ``G``: number of goals (reward functions) in the agent's training set;
* ``B``: batch size.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

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
