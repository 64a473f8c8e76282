"""The world-model contract every consumer uses (evaluation, planners, the registry, the HTTP API).

A :class:`WorldModel` predicts next states for batches of (state, action):

* ``predict(states (B, d), actions)`` → expected next states (B, d) (the mode for point models);
* ``sample(states, actions, n, rng)`` → (n, B, d) draws from the model's kernel;
* ``std(states, actions)`` → (B, d) per-dimension standard deviation (0 for deterministic models);
* finite models also give ``kernel()`` (S, A, S) and ``distribution(states, actions)`` (B, S).

States of finite models are integer indices carried as floats (shape (B, 1)), so every model
speaks the same array shapes. ``to_arrays()`` / ``from_arrays()`` give the plain-array form that
the artifact format stores, with a JSON-ready ``spec()``.

This module holds the contract and the finite model, on numpy alone; the network models are in
:mod:`plray.core.worldmodel_neural` and :mod:`plray.core.worldmodel_gaussian`, ensembles in
:mod:`plray.core.ensemble`, and saving / loading any of them in :mod:`plray.core.model_io`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from plray.core.types import FloatArray
from plray.utils.validation import PlrayInputError, as_float_array, check_shape

MODEL_TYPES: tuple[str, ...] = ("tabular", "deterministic", "gaussian", "ensemble")


class WorldModel(ABC):
    """A transition model over a state space of dimension ``state_dim``.

    Attributes:
        model_type: ``tabular``, ``deterministic``, ``gaussian`` or ``ensemble`` (see
            :mod:`plray.core.ensemble`).
        state_dim: d.
        num_actions: A for discrete actions, None for continuous ones.
        action_dim: dimension of a continuous action (1 for discrete).
        angle_dims: state dims that are angles in [−π, π).
    """

    model_type: ClassVar[str]
    state_dim: int
    num_actions: int | None
    action_dim: int
    angle_dims: tuple[int, ...] = ()

    @property
    def discrete_actions(self) -> bool:
        return self.num_actions is not None

    def check_inputs(self, states: Any, actions: Any) -> tuple[FloatArray, np.ndarray]:
        """Validate a batch: states (B, d) finite; actions (B,) ints in range or (B, action_dim) finite."""
        s = as_float_array(states, "states", ndim=2)
        check_shape(s, "states", (None, self.state_dim), ("B", "d"))
        a = np.asarray(actions)
        if self.num_actions is not None:
            if a.shape != (len(s),):
                raise PlrayInputError(f"actions: expected shape ({len(s)},) to match the states, got {a.shape}")
            if not np.issubdtype(a.dtype, np.integer):
                if np.issubdtype(a.dtype, np.floating) and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
                    a = a.astype(np.int64)
                else:
                    raise PlrayInputError(f"actions: expected integers in [0, {self.num_actions}), got dtype {a.dtype}")
            if len(a) and (a.min() < 0 or a.max() >= self.num_actions):
                raise PlrayInputError(
                    f"actions: must lie in [0, {self.num_actions}), got values in [{a.min()}, {a.max()}]"
                )
            return s, a.astype(np.int64)
        a = as_float_array(a, "actions", ndim=2)
        check_shape(a, "actions", (len(s), self.action_dim), ("B", "action_dim"))
        return s, a

    @abstractmethod
    def predict(self, states: Any, actions: Any) -> FloatArray:
        """Expected (or modal) next states, shape (B, d)."""

    @abstractmethod
    def sample(self, states: Any, actions: Any, n: int, rng: np.random.Generator) -> FloatArray:
        """n draws of next states, shape (n, B, d)."""

    def std(self, states: Any, actions: Any) -> FloatArray:
        """Per-dimension standard deviation of the next state, shape (B, d)."""
        s, _ = self.check_inputs(states, actions)
        return np.zeros_like(s)

    @abstractmethod
    def spec(self) -> dict[str, Any]:
        """JSON-ready description (type, dims, architecture) from which ``from_arrays`` rebuilds it."""

    @abstractmethod
    def to_arrays(self) -> dict[str, np.ndarray]:
        """The model's parameters as plain arrays."""

    @staticmethod
    def from_arrays(spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> WorldModel:
        """Rebuild a model of this class from :meth:`spec` and :meth:`to_arrays` output.

        For a model of any type, :func:`plray.core.model_io.model_from_arrays` dispatches on
        ``spec["model_type"]``.
        """
        raise NotImplementedError


class TabularWorldModel(WorldModel):
    """A finite kernel P(s' | s, a), shape (S, A, S), rows projected onto the simplex on creation."""

    model_type = "tabular"

    def __init__(self, kernel: FloatArray, project: bool = True) -> None:
        from plray.core.kernel import project_simplex

        P = as_float_array(kernel, "kernel", ndim=3)
        if P.shape[0] != P.shape[2]:
            raise PlrayInputError(f"kernel: expected shape (S, A, S), got {P.shape}")
        self.P = project_simplex(P) if project else P
        self.state_dim = 1
        self.num_actions = int(P.shape[1])
        self.action_dim = 1
        self.num_states = int(P.shape[0])
        self._cdf = np.cumsum(self.P, axis=-1)

    def _indices(self, states: Any, actions: Any) -> tuple[np.ndarray, np.ndarray]:
        s, a = self.check_inputs(states, actions)
        idx = s[:, 0]
        if len(idx) and (idx.min() < 0 or idx.max() >= self.num_states or not np.all(idx == np.round(idx))):
            raise PlrayInputError(f"states: finite-model states are integer indices in [0, {self.num_states})")
        return idx.astype(np.int64), a

    def kernel(self) -> FloatArray:
        return self.P.copy()

    def distribution(self, states: Any, actions: Any) -> FloatArray:
        """P(· | s, a) for each row, shape (B, S)."""
        s, a = self._indices(states, actions)
        return self.P[s, a]

    def predict(self, states: Any, actions: Any) -> FloatArray:
        """The most likely next state (the mode: an index, not an average of indices), (B, 1)."""
        return self.distribution(states, actions).argmax(axis=1).astype(np.float64)[:, None]

    def sample(self, states: Any, actions: Any, n: int, rng: np.random.Generator) -> FloatArray:
        s, a = self._indices(states, actions)
        u = rng.random((n, len(s)))
        draws = (self._cdf[s, a][None] < u[..., None]).sum(-1)
        return np.minimum(draws, self.num_states - 1).astype(np.float64)[..., None]

    def spec(self) -> dict[str, Any]:
        return {"model_type": "tabular", "num_states": self.num_states, "num_actions": self.num_actions}

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"kernel": self.P}

    @staticmethod
    def from_arrays(spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> TabularWorldModel:
        if set(arrays) != {"kernel"}:
            raise PlrayInputError(f"tabular world model: expected one array 'kernel', got {sorted(arrays)}")
        model = TabularWorldModel(arrays["kernel"], project=False)
        if model.num_states != spec.get("num_states") or model.num_actions != spec.get("num_actions"):
            raise PlrayInputError("tabular world model: kernel shape disagrees with the manifest")
        return model


_MOVED = {
    **dict.fromkeys(
        ("NeuralWorldModel", "NetworkWorldModel", "config_from_spec", "load_network_state", "network_spec"),
        "plray.core.worldmodel_neural",
    ),
    **dict.fromkeys(
        ("save_world_model", "load_world_model", "model_from_arrays", "MODEL_TYPES"), "plray.core.model_io"
    ),
}
"""Names this module held before the split into worldmodel / worldmodel_neural / model_io."""


def __getattr__(name: str) -> Any:
    """Old import paths (``from plray.core.worldmodel import load_world_model``) keep working."""
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
