"""Goal-conditioned Q-networks: a plain torch module, and its RLlib (new API stack) DQN RLModule.

The network reads selected entries of the flat observation ``concat(observe(s), g)`` (the paper's
agents drop, e.g., the Reacher's fingertip dims from the state input but keep the goal), runs an
MLP with optional LayerNorm after each hidden layer, and outputs one Q per discrete action,
optionally squashed by a sigmoid (the paper's agents: sparse rewards in {0, 1} make Q ∈ (0, 1)).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from plray.utils.validation import PlrayInputError

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU, "elu": nn.ELU}


class GoalQNetwork(nn.Module):
    """Q(s, ·, g) for discrete actions.

    Args:
        obs_dim: length D of the flat agent observation (state part and goal part).
        num_actions: A.
        input_index: which observation entries feed the network (default: all D).
        hiddens: hidden layer widths.
        layernorm: LayerNorm after each hidden linear layer (the paper's PQN agents).
        activation: ``relu``, ``tanh``, ``silu`` or ``elu``.
        sigmoid: squash Q into (0, 1).
        input_low, input_high: per selected input, the range mapped to [-1, 1] before the first
            layer (inputs of very different scales, e.g. MountainCar's x in [-1.2, 0.6] and
            v in [-0.07, 0.07], otherwise train at very different rates); None: no rescaling.
    """

    input_index: torch.Tensor
    input_center: torch.Tensor
    input_halfspan: torch.Tensor

    def __init__(
        self,
        obs_dim: int,
        num_actions: int,
        *,
        input_index: Sequence[int] | None = None,
        hiddens: Sequence[int] = (256, 256),
        layernorm: bool = True,
        activation: str = "relu",
        sigmoid: bool = False,
        input_low: Sequence[float] | None = None,
        input_high: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise PlrayInputError(f"activation: unknown {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        index = list(range(obs_dim)) if input_index is None else [int(i) for i in input_index]
        if not index or min(index) < 0 or max(index) >= obs_dim:
            raise PlrayInputError(f"input_index: entries must lie in [0, {obs_dim}), got {index}")
        self.register_buffer("input_index", torch.tensor(index, dtype=torch.long), persistent=True)
        low = torch.full((len(index),), -1.0) if input_low is None else torch.as_tensor(input_low, dtype=torch.float32)
        high = (
            torch.full((len(index),), 1.0) if input_high is None else torch.as_tensor(input_high, dtype=torch.float32)
        )
        if low.shape != (len(index),) or high.shape != (len(index),) or not torch.isfinite(low).all():
            raise PlrayInputError(f"input_low/input_high: need {len(index)} finite values each")
        span = torch.where(high - low > 1e-12, high - low, torch.ones_like(high))
        self.register_buffer("input_center", (high + low) / 2, persistent=False)
        self.register_buffer("input_halfspan", span / 2, persistent=False)
        layers: list[nn.Module] = []
        prev = len(index)
        for width in hiddens:
            layers.append(nn.Linear(prev, int(width)))
            if layernorm:
                layers.append(nn.LayerNorm(int(width)))
            layers.append(ACTIVATIONS[activation]())
            prev = int(width)
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(prev, num_actions)
        self.sigmoid = bool(sigmoid)
        self.num_actions = num_actions

    def scale_inputs(self, obs: torch.Tensor) -> torch.Tensor:
        """The selected observation entries, rescaled to about [-1, 1]: (B, D) -> (B, len(input_index))."""
        return (obs.index_select(-1, self.input_index) - self.input_center) / self.input_halfspan

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """Hidden features of observations (B, D) -> (B, H)."""
        return self.trunk(self.scale_inputs(obs))

    def q_from_features(self, h: torch.Tensor) -> torch.Tensor:
        """Q-values from features (B, H) -> (B, A)."""
        q = self.head(h)
        return torch.sigmoid(q) if self.sigmoid else q

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Q(s, ·, g) for observations (B, D) -> (B, A)."""
        return self.q_from_features(self.features(obs))


def network_kwargs(model_config: dict[str, Any]) -> dict[str, Any]:
    """The :class:`GoalQNetwork` keyword arguments held in an RLModule ``model_config``."""
    return {
        "input_index": model_config.get("input_index"),
        "hiddens": tuple(model_config.get("hiddens", (256, 256))),
        "layernorm": bool(model_config.get("layernorm", True)),
        "activation": model_config.get("activation", "relu"),
        "sigmoid": bool(model_config.get("sigmoid", False)),
        "input_low": model_config.get("input_low"),
        "input_high": model_config.get("input_high"),
    }
