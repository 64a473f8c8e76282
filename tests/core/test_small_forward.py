"""The numpy small-batch forward agrees with the torch network on every layout it takes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plray.core.neural import NeuralPConfig, SuccessorNetwork
from plray.core.small_forward import SMALL_ROWS, SmallForward, torch_forward
from plray.core.worldmodel_neural import NeuralWorldModel

BOX = {"input_low": (-1.2, -0.07), "input_high": (0.6, 0.07)}
LAYOUTS = [
    # (state_dim, num_actions, action_dim, angle_dims, config fields)
    (4, 9, 1, (0, 1), {"hidden": 32, "layers": 2, "activation": "tanh"}),
    (
        2,
        3,
        1,
        (),
        {"hidden": 16, "layers": 3, "activation": "relu", **BOX},
    ),
    (4, None, 2, (0, 1), {"hidden": 24, "layers": 2, "activation": "silu", "output_dims": (2, 3)}),
    (3, 4, 1, (), {"hidden": 8, "layers": 1, "residual": False, "input_dims": (0, 2)}),
]


def _network(layout: tuple) -> SuccessorNetwork:
    d, A, ad, angles, fields = layout
    torch.manual_seed(0)
    net = SuccessorNetwork(d, A, ad, angles, NeuralPConfig(**fields))
    with torch.no_grad():  # non-trivial weights everywhere (the output layer starts near zero)
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return net.eval()


def _inputs(net: SuccessorNetwork, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    s = rng.uniform(-3, 3, size=(n, net.state_dim))
    if net.num_actions is not None:
        return s, rng.integers(net.num_actions, size=n)
    return s, rng.uniform(-1, 1, size=(n, net.action_dim))


@pytest.mark.parametrize("layout", LAYOUTS, ids=["reacher-tanh", "box-relu", "continuous-silu", "no-residual"])
def test_numpy_forward_matches_torch(layout: tuple) -> None:
    net = _network(layout)
    assert SmallForward.supports(net)
    s, a = _inputs(net, SMALL_ROWS, np.random.default_rng(1))
    ours, ref = SmallForward(net)(s, a), torch_forward(net, s, a)
    assert ours.dtype == np.float64 and ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=2e-6, atol=2e-6)
    if net.angle_dims:
        assert np.all(np.abs(ours[:, list(net.angle_dims)]) <= np.pi + 1e-6)


def test_the_model_uses_it_for_small_batches_and_follows_weight_changes() -> None:
    net = _network(LAYOUTS[0])
    model = NeuralWorldModel(net, NeuralPConfig(hidden=32, layers=2))
    s, a = _inputs(net, 5, np.random.default_rng(2))
    small = model.predict(s, a)
    np.testing.assert_allclose(small, torch_forward(net, s, a), rtol=2e-6, atol=2e-6)
    big_s, big_a = np.repeat(s, 20, axis=0), np.repeat(a, 20)  # 100 rows: torch's path
    np.testing.assert_allclose(model.predict(big_s, big_a)[::20], small, rtol=2e-6, atol=2e-6)
    with torch.no_grad():
        net.net[0].weight.mul_(0.5)  # an in-place change: the snapshot is rebuilt
    np.testing.assert_allclose(model.predict(s, a), torch_forward(net, s, a), rtol=2e-6, atol=2e-6)
    assert not np.allclose(model.predict(s, a), small)
    net.net[0].weight = torch.nn.Parameter(net.net[0].weight.detach() * 2.0)  # a replaced parameter, too
    np.testing.assert_allclose(model.predict(s, a), torch_forward(net, s, a), rtol=2e-6, atol=2e-6)
    net.load_state_dict({k: v * 0.9 for k, v in net.state_dict().items()})  # and a loaded state dict
    np.testing.assert_allclose(model.predict(s, a), torch_forward(net, s, a), rtol=2e-6, atol=2e-6)
