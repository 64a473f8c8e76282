"""World models from neural P-learning: a successor network behind the :class:`WorldModel` contract.

:class:`NetworkWorldModel` holds a torch network and its configuration (``network_spec`` /
``config_from_spec`` / ``load_network_state`` turn them into and out of an artifact's JSON and
arrays); :class:`NeuralWorldModel` is the deterministic one, ŝ' = f(s, a). The Gaussian one is
in :mod:`plray.core.worldmodel_gaussian`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from plray.core.neural import NeuralPConfig, SuccessorLayout, SuccessorNetwork
from plray.core.small_forward import SMALL_ROWS, SmallForward
from plray.core.types import FloatArray
from plray.core.worldmodel import WorldModel
from plray.utils.validation import PlrayInputError


def network_spec(net: SuccessorLayout, config: NeuralPConfig) -> dict[str, Any]:
    return {
        "state_dim": net.state_dim,
        "num_actions": net.num_actions,
        "action_dim": net.action_dim,
        "angle_dims": list(net.angle_dims),
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
    }


def config_from_spec(spec: dict[str, Any]) -> NeuralPConfig:
    cfg = dict(spec["config"])
    for key in ("input_dims", "output_dims", "input_low", "input_high"):
        if cfg.get(key) is not None:
            cfg[key] = tuple(cfg[key])
    return NeuralPConfig(**cfg)


def load_network_state(module: torch.nn.Module, arrays: dict[str, np.ndarray]) -> None:
    state = {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise PlrayInputError(f"world model tensors do not match the manifest's architecture ({exc})") from exc


class NetworkWorldModel(WorldModel):
    """Shared parts of the models held by a torch successor network (layout and parameters)."""

    def __init__(self, network: SuccessorLayout, config: NeuralPConfig) -> None:
        self.network = network.eval()
        self.config = config
        self.state_dim = network.state_dim
        self.num_actions = network.num_actions
        self.action_dim = network.action_dim
        self.angle_dims = network.angle_dims

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.network.state_dict().items()}


class NeuralWorldModel(NetworkWorldModel):
    """A deterministic successor network s' = f_φ(s, a) (see :mod:`plray.core.neural`)."""

    model_type = "deterministic"

    _small: SmallForward | None = None

    @torch.no_grad()
    def predict(self, states: Any, actions: Any, chunk: int = 65536) -> FloatArray:
        s, a = self.check_inputs(states, actions)
        if len(s) <= SMALL_ROWS and SmallForward.supports(self.network):  # numpy: torch's per-op cost dominates
            if self._small is None:
                self._small = SmallForward(self.network)  # type: ignore[arg-type]
            return self._small(s, a)
        out = np.empty_like(s)
        for i in range(0, len(s), chunk):
            st = torch.as_tensor(s[i : i + chunk], dtype=torch.float32)
            at = torch.as_tensor(a[i : i + chunk])
            out[i : i + chunk] = self.network(st, at).double().numpy()
        return out

    def sample(self, states: Any, actions: Any, n: int, rng: np.random.Generator) -> FloatArray:
        return np.broadcast_to(self.predict(states, actions), (n, *np.shape(states))).copy()

    def spec(self) -> dict[str, Any]:
        return {"model_type": "deterministic", **network_spec(self.network, self.config)}

    @staticmethod
    def from_arrays(spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> NeuralWorldModel:
        try:
            cfg = config_from_spec(spec)
            net = SuccessorNetwork(
                int(spec["state_dim"]), spec["num_actions"], int(spec["action_dim"]), spec["angle_dims"], cfg
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PlrayInputError(f"world model manifest: invalid architecture ({exc})") from exc
        load_network_state(net, arrays)
        return NeuralWorldModel(net, cfg)
