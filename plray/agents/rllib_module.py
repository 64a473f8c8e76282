"""The RLlib (new API stack) DQN RLModule over :class:`plray.agents.modules.GoalQNetwork`.

Kept apart from :mod:`plray.agents.modules` so that using a trained Q-network needs torch only;
this module imports RLlib.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.dqn.default_dqn_rl_module import QF_PREDS
from ray.rllib.algorithms.dqn.torch.default_dqn_torch_rl_module import DefaultDQNTorchRLModule
from ray.rllib.core.columns import Columns
from ray.rllib.core.models.base import ENCODER_OUT
from ray.rllib.utils.schedules.scheduler import Scheduler
from torch import nn

from plray.agents.modules import GoalQNetwork, network_kwargs


class _Encoder(nn.Module):
    """The network's input selection and hidden trunk, as an RLlib encoder (batch dict in)."""

    def __init__(self, net: GoalQNetwork) -> None:
        super().__init__()
        self.trunk = net.trunk
        self.register_buffer("input_index", net.input_index.clone())
        self.register_buffer("input_center", net.input_center.clone(), persistent=False)
        self.register_buffer("input_halfspan", net.input_halfspan.clone(), persistent=False)

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        obs = batch[Columns.OBS].float().index_select(-1, self.input_index)
        return {ENCODER_OUT: self.trunk((obs - self.input_center) / self.input_halfspan)}


class _Head(nn.Module):
    """The network's Q head (linear, optionally sigmoid)."""

    def __init__(self, net: GoalQNetwork) -> None:
        super().__init__()
        self.head = net.head
        self.sigmoid = net.sigmoid

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        q = self.head(h)
        return torch.sigmoid(q) if self.sigmoid else q


class GoalQTorchRLModule(DefaultDQNTorchRLModule):
    """DQN module over :class:`GoalQNetwork` (no dueling, no distributional head).

    ``model_config`` keys: ``input_index``, ``hiddens``, ``layernorm``, ``activation``,
    ``sigmoid``; DQN adds ``double_q`` and ``epsilon`` itself.
    """

    def setup(self) -> None:
        self.uses_dueling = False
        self.uses_double_q = bool(self.model_config.get("double_q", True))
        self.num_atoms = 1
        self.epsilon_schedule = Scheduler(
            fixed_value_or_schedule=self.model_config.get("epsilon", [(0, 1.0), (10000, 0.05)]),
            framework=self.framework,
        )
        net = GoalQNetwork(
            int(self.observation_space.shape[0]), int(self.action_space.n), **network_kwargs(self.model_config)
        )
        self.encoder = _Encoder(net)
        self.af = _Head(net)

    def _forward_exploration(self, batch: dict[str, Any], t: int) -> dict[str, Any]:
        # ε-greedy with uniform random actions: RLlib's default treats a Q of exactly 0 as masked
        q = self.compute_q_values(batch)[QF_PREDS]
        self.epsilon_schedule.update(t)
        eps = self.epsilon_schedule.get_current_value()
        greedy = q.argmax(dim=-1)
        random = torch.randint(0, q.shape[-1], greedy.shape, device=q.device)
        explore = torch.rand(greedy.shape, device=q.device) < eps
        return {Columns.ACTIONS: torch.where(explore, random, greedy)}

    def to_network(self) -> GoalQNetwork:
        """A plain :class:`GoalQNetwork` holding this module's current weights."""
        net = GoalQNetwork(
            int(self.observation_space.shape[0]), int(self.action_space.n), **network_kwargs(self.model_config)
        )
        net.trunk.load_state_dict(self.encoder.trunk.state_dict())
        net.head.load_state_dict(self.af.head.state_dict())
        return net
