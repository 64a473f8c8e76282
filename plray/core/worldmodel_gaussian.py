"""Gaussian world model: a diagonal-Gaussian successor network N(μ(s, a), diag σ(s, a)²)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from plray.core.neural import wrap_dims
from plray.core.neural_stochastic import GaussianSuccessorNetwork
from plray.core.types import FloatArray
from plray.core.worldmodel_neural import NetworkWorldModel, config_from_spec, load_network_state, network_spec
from plray.utils.validation import PlrayInputError


class GaussianWorldModel(NetworkWorldModel):
    """``predict`` gives the mean, ``std`` the per-dimension standard deviation, ``sample`` draws."""

    model_type = "gaussian"
    network: GaussianSuccessorNetwork

    @torch.no_grad()
    def _moments(self, states: Any, actions: Any) -> tuple[FloatArray, FloatArray]:
        s, a = self.check_inputs(states, actions)
        mean, std = self.network(torch.as_tensor(s, dtype=torch.float32), torch.as_tensor(a))
        return mean.double().numpy(), std.double().numpy()

    def predict(self, states: Any, actions: Any) -> FloatArray:
        return self._moments(states, actions)[0]

    def std(self, states: Any, actions: Any) -> FloatArray:
        return self._moments(states, actions)[1]

    def sample(self, states: Any, actions: Any, n: int, rng: np.random.Generator) -> FloatArray:
        mean, std = self._moments(states, actions)
        draws = mean[None] + std[None] * rng.standard_normal((n, *mean.shape))
        return wrap_dims(torch.as_tensor(draws), self.angle_dims).numpy()

    def spec(self) -> dict[str, Any]:
        return {
            "model_type": "gaussian",
            **network_spec(self.network, self.config),
            "log_std_min": self.network.log_std_min,
            "log_std_max": self.network.log_std_max,
        }

    @staticmethod
    def from_arrays(spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> GaussianWorldModel:
        try:
            cfg = config_from_spec(spec)
            net = GaussianSuccessorNetwork(
                int(spec["state_dim"]),
                spec["num_actions"],
                int(spec["action_dim"]),
                spec["angle_dims"],
                cfg,
                log_std_min=float(spec["log_std_min"]),
                log_std_max=float(spec["log_std_max"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PlrayInputError(f"world model manifest: invalid architecture ({exc})") from exc
        load_network_state(net, arrays)
        return GaussianWorldModel(net, cfg)
