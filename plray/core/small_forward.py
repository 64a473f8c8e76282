"""A numpy forward pass of a deterministic successor network for the few rows of one request.

Serving answers single transitions; torch's per-op dispatch costs a one-row predict ~0.25 ms here
(~0.75 ms inside a Serve replica, whose caches the rest of the machine keeps cold), most of it
overhead. :class:`SmallForward` snapshots the network's weights as float32 numpy arrays and runs the
same computation (input selection and rescaling, one-hot actions, Linear + activation layers, the
residual update, angle wrapping) with a handful of numpy calls. The numbers agree with torch's to
float32 rounding (matmul summation order differs: |Δ| <= ~1e-6 relative), not bit for bit; the
snapshot is rebuilt whenever a parameter changes or is replaced (:class:`~plray.core.frozen.ParameterWatch`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from plray.core.frozen import ParameterWatch
from plray.core.neural import SuccessorNetwork
from plray.core.types import FloatArray

SMALL_ROWS = 64
"""Batches of at most this many rows take the numpy path (larger ones are torch's)."""

Activation = Callable[[np.ndarray], np.ndarray]
_ACTIVATIONS: dict[type, Activation] = {
    nn.Tanh: np.tanh,
    nn.ReLU: lambda x: np.maximum(x, np.float32(0.0)),
    nn.SiLU: lambda x: x / (np.float32(1.0) + np.exp(-x)),
}


class SmallForward:
    """The numpy twin of one :class:`~plray.core.neural.SuccessorNetwork` (see the module docstring).

    Args:
        network: the network; :meth:`supports` says whether its layers have a numpy twin.
    """

    def __init__(self, network: SuccessorNetwork) -> None:
        self.network = network
        self._watch = ParameterWatch(network)
        self._layers: list[tuple[np.ndarray, np.ndarray, Activation | None]] = []

    @staticmethod
    def supports(network: nn.Module) -> bool:
        """Only plain :class:`SuccessorNetwork` MLPs of Linear and tanh / ReLU / SiLU layers."""
        if type(network) is not SuccessorNetwork:
            return False
        return all(isinstance(m, nn.Linear) or type(m) in _ACTIVATIONS for m in network.net)

    def _snapshot(self) -> None:
        net = self.network
        layers: list[tuple[np.ndarray, np.ndarray, Activation | None]] = []
        mods = list(net.net)
        for i, m in enumerate(mods):
            if isinstance(m, nn.Linear):
                act = _ACTIVATIONS[type(mods[i + 1])] if i + 1 < len(mods) else None
                w = np.ascontiguousarray(m.weight.detach().numpy().T, dtype=np.float32)
                layers.append((w, m.bias.detach().numpy().astype(np.float32), act))
        self._layers = layers
        self._in = None if net.all_inputs else net.input_index.numpy()
        self._out = None if net.all_outputs else net.output_index.numpy()
        box = net.input_center is not None and net.input_halfwidth is not None
        self._box = (net.input_center.numpy(), net.input_halfwidth.numpy()) if box else None  # type: ignore[union-attr]
        mask = np.zeros(net.state_dim, dtype=bool)
        mask[list(net.angle_dims)] = True
        self._angles = mask if net.angle_dims else None
        self._watch.mark()

    def __call__(self, states: FloatArray, actions: np.ndarray) -> FloatArray:
        """Next states (B, d) float64 for states (B, d) and actions (B,) ints or (B, action_dim), checked."""
        if self._watch.stale():
            self._snapshot()
        net = self.network
        s = np.asarray(states, dtype=np.float32)
        x = s if self._in is None else s[:, self._in]
        if self._box is not None:
            x = (x - self._box[0]) / self._box[1]
        if net.num_actions is not None:
            enc = np.zeros((len(s), net.num_actions), dtype=np.float32)
            enc[np.arange(len(s)), np.asarray(actions).astype(np.int64).reshape(-1)] = 1.0
        else:
            enc = np.asarray(actions, dtype=np.float32).reshape(len(s), net.action_dim)
        h = np.concatenate([x, enc], axis=1)
        for w, b, act in self._layers:
            h = h @ w + b
            if act is not None:
                h = act(h)
        base = s if net.residual else np.zeros_like(s)
        if self._out is None:
            nxt = base + h
        else:
            nxt = base.copy()
            nxt[:, self._out] = base[:, self._out] + h
        if self._angles is not None:
            two_pi = np.float32(2 * math.pi)
            wrapped = np.remainder(nxt + np.float32(math.pi), two_pi) - np.float32(math.pi)
            nxt = np.where(self._angles, wrapped, nxt)
        return nxt.astype(np.float64)


def torch_forward(network: SuccessorNetwork, states: FloatArray, actions: np.ndarray) -> FloatArray:
    """The torch path, for comparison: float64 next states of the same inputs."""
    with torch.no_grad():
        st = torch.as_tensor(np.asarray(states), dtype=torch.float32)
        return network(st, torch.as_tensor(np.asarray(actions))).double().numpy()
