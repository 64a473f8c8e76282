"""Ensembles of extracted world models, with their disagreement as an uncertainty estimate.

Several extractions of the same dynamics (agents trained with different seeds, different goal
subsets, different P-learning seeds) give several models; where they disagree, at least one is
wrong. An ensemble predicts with the members' mixture and reports how far the members spread:

* :class:`TabularEnsemble`: the mixture kernel P̄ = mean_e P_e (S, A, S), and per (s, a) the mean
  total-variation distance of the members from it, ``disagreement()`` (S, A). It is a
  :class:`~plray.core.worldmodel.TabularWorldModel` (``model_type = "tabular"``), so every consumer
  of finite models (planners, the HTTP API) uses it unchanged.
* :class:`PointEnsemble`: members with a point prediction each (deterministic successor networks);
  ``predict`` is the members' mean, ``std`` their standard deviation per dimension (B, d), and
  ``sample`` draws a member per sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from plray.core.types import FloatArray
from plray.core.worldmodel import TabularWorldModel, WorldModel
from plray.utils.validation import PlrayInputError, as_float_array


def member_tv(kernels: FloatArray) -> FloatArray:
    """Mean over members of ½‖P_e(s, a) − P̄(s, a)‖₁, shape (S, A), for kernels (E, S, A, S)."""
    mean = kernels.mean(axis=0)
    return 0.5 * np.abs(kernels - mean[None]).sum(axis=-1).mean(axis=0)


class TabularEnsemble(TabularWorldModel):
    """The mixture of E finite kernels; see the module docstring.

    Args:
        kernels: member kernels, shape (E, S, A, S) with E >= 1; rows are projected onto the simplex.
    """

    def __init__(self, kernels: FloatArray, project: bool = True) -> None:
        from plray.core.kernel import project_simplex

        K = as_float_array(kernels, "kernels", ndim=4)
        if K.shape[0] < 1 or K.shape[1] != K.shape[3]:
            raise PlrayInputError(f"kernels: expected shape (E, S, A, S) with E >= 1, got {K.shape}")
        self.members = project_simplex(K) if project else K
        super().__init__(self.members.mean(axis=0), project=False)

    @property
    def size(self) -> int:
        """E, the number of members."""
        return int(self.members.shape[0])

    def disagreement(self) -> FloatArray:
        """Mean TV distance of the members from the mixture per (s, a), shape (S, A)."""
        return member_tv(self.members)

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "ensemble_size": self.size}

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"kernel": self.P, "members": self.members}

    @staticmethod
    def from_arrays(spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> TabularEnsemble:
        if set(arrays) != {"kernel", "members"}:
            raise PlrayInputError(f"tabular ensemble: expected arrays 'kernel' and 'members', got {sorted(arrays)}")
        model = TabularEnsemble(arrays["members"], project=False)
        if not np.allclose(model.P, arrays["kernel"], atol=1e-9):
            raise PlrayInputError("tabular ensemble: 'kernel' is not the mean of 'members'")
        if model.num_states != spec.get("num_states") or model.num_actions != spec.get("num_actions"):
            raise PlrayInputError("tabular ensemble: kernel shape disagrees with the manifest")
        return model


class PointEnsemble(WorldModel):
    """Members that each predict one next state; see the module docstring.

    Args:
        members: E >= 1 world models with the same state and action spaces.
    """

    model_type = "ensemble"

    def __init__(self, members: Sequence[WorldModel]) -> None:
        members = list(members)
        if not members:
            raise PlrayInputError("members: an ensemble needs at least one model")
        first = members[0]
        for i, m in enumerate(members[1:], start=1):
            if (m.state_dim, m.num_actions, m.action_dim) != (first.state_dim, first.num_actions, first.action_dim):
                raise PlrayInputError(f"members[{i}]: state/action spaces differ from members[0]")
            if m.model_type != first.model_type:
                raise PlrayInputError(f"members[{i}]: model type {m.model_type!r} differs from {first.model_type!r}")
        self.members = members
        self.state_dim = first.state_dim
        self.num_actions = first.num_actions
        self.action_dim = first.action_dim
        self.angle_dims = first.angle_dims

    def _member_predictions(self, states: Any, actions: Any) -> FloatArray:
        """Every member's prediction, shape (E, B, d)."""
        s, a = self.check_inputs(states, actions)
        return np.stack([m.predict(s, a) for m in self.members])

    def predict(self, states: Any, actions: Any) -> FloatArray:
        """Mean of the members' predictions (circular mean on angle dims), shape (B, d)."""
        preds = self._member_predictions(states, actions)
        out = preds.mean(axis=0)
        for d in self.angle_dims:
            out[:, d] = np.arctan2(np.sin(preds[..., d]).mean(0), np.cos(preds[..., d]).mean(0))
        return out

    def std(self, states: Any, actions: Any) -> FloatArray:
        """Members' standard deviation per dimension, shape (B, d): the ensemble's disagreement."""
        preds = self._member_predictions(states, actions)
        mean = self.predict(states, actions)
        diff = preds - mean[None]
        for d in self.angle_dims:
            diff[..., d] = np.angle(np.exp(1j * diff[..., d]))
        return np.sqrt((diff**2).mean(axis=0))

    def sample(self, states: Any, actions: Any, n: int, rng: np.random.Generator) -> FloatArray:
        """Each draw comes from a member chosen uniformly per (draw, row), shape (n, B, d)."""
        preds = self._member_predictions(states, actions)
        pick = rng.integers(len(self.members), size=(n, preds.shape[1]))
        return preds[pick, np.arange(preds.shape[1])[None, :]]

    def spec(self) -> dict[str, Any]:
        return {"model_type": "ensemble", "members": [m.spec() for m in self.members]}

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {f"m{i}/{k}": v for i, m in enumerate(self.members) for k, v in m.to_arrays().items()}

    @staticmethod
    def from_arrays(spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> PointEnsemble:
        """Members are models of other types: rebuilt by :func:`plray.core.model_io.model_from_arrays`."""
        raise NotImplementedError("load point ensembles with plray.core.model_io.model_from_arrays")
