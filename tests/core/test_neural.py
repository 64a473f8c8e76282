"""Deterministic neural P-learning on a linear system whose Q-values are known in closed form."""

import numpy as np
import pytest
import torch

from plray.core import PlrayInputError
from plray.core.neural import (
    Checkpointing,
    NeuralPConfig,
    SuccessorNetwork,
    network_inputs,
    p_learning_loss,
    train_successor,
    wrap_dims,
)

GAMMA = 0.9
SIGMA = 0.5
U = torch.tensor([(i, j) for i in (-1.0, 0.0, 1.0) for j in (-1.0, 0.0, 1.0)])  # 9 actions, action 4 = stay
STEP = 0.1


class LinearTask:
    """s' = s + 0.1 u(a) on R², observation = state."""

    state_dim = 2
    num_actions = 9
    action_dim = 1
    angle_dims: tuple[int, ...] = ()

    def observe_torch(self, states: torch.Tensor) -> torch.Tensor:
        return states

    def next_state(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return states + STEP * U.numpy()[actions]


def gaussian(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return torch.exp(-((x - g) ** 2).sum(-1) / (2 * SIGMA**2))


class StayAgent:
    """Exact Q^π of the policy that always stays: V(s, g) = r(s, g)/(1 − γ), Q(s, a, g) = r(s', g)/(1 − γ)."""

    gamma = GAMMA
    discrete = True

    def q(self, obs, goals, actions):
        return gaussian(obs + STEP * U[actions.long()], goals) / (1 - GAMMA)

    def v(self, obs, goals):
        return gaussian(obs, goals) / (1 - GAMMA)

    def reward(self, next_obs, goals):
        return gaussian(next_obs, goals)

    def terminal(self, next_obs, goals):
        return torch.zeros(len(next_obs), dtype=torch.bool)


GOALS = np.array([[-0.6, -0.4], [0.5, -0.5], [0.0, 0.6], [0.7, 0.4], [-0.5, 0.5]])


def sample_states(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(-1, 1, size=(n, 2))


def nmse_per_action_dim(model: SuccessorNetwork, task: LinearTask, n: int = 4000) -> np.ndarray:
    """WM_NMSE of docs/method.md#world-model-error for this toy: per (action, dim) MSE / Var(true s'_dim)."""
    rng = np.random.default_rng(123)
    s = sample_states(rng, n)
    out = np.zeros((task.num_actions, task.state_dim))
    for a in range(task.num_actions):
        acts = np.full(n, a)
        true = task.next_state(s, acts)
        with torch.no_grad():
            pred = model(torch.as_tensor(s, dtype=torch.float32), torch.as_tensor(acts)).double().numpy()
        out[a] = ((pred - true) ** 2).mean(0) / true.var(0)
    return out


def test_recovers_linear_dynamics_to_nmse_below_1e_4() -> None:
    task = LinearTask()
    cfg = NeuralPConfig(hidden=32, lr=3e-3, steps=600, batch_size=256, schedule="linear", seed=0)
    res = train_successor(StayAgent(), task, sample_states, GOALS, cfg)
    nmse = nmse_per_action_dim(res.network, task)
    assert nmse.mean() < 1e-4, f"WM_NMSE {nmse.mean():.2e}"
    assert res.losses[-1] < 0.1 * res.losses[0]
    assert res.samples_per_s > 0


def test_zero_residual_is_the_exact_solution() -> None:
    """The loss vanishes at the true dynamics and is positive elsewhere (what P-learning minimises)."""
    task = LinearTask()
    agent = StayAgent()
    rng = np.random.default_rng(0)
    s = torch.as_tensor(sample_states(rng, 256), dtype=torch.float32)
    a = torch.as_tensor(rng.integers(9, size=256))
    g = torch.as_tensor(GOALS[rng.integers(5, size=256)], dtype=torch.float32)

    class Oracle(SuccessorNetwork):
        def forward(self, states, actions):
            return states + STEP * U[actions.long()]

    oracle = Oracle(2, 9)
    assert p_learning_loss(oracle, agent, task, s, a, g).item() < 1e-6
    untrained = SuccessorNetwork(2, 9)
    assert p_learning_loss(untrained, agent, task, s, a, g).item() > 1e-3


def test_same_seed_same_model_and_initial_identity() -> None:
    task = LinearTask()
    cfg = NeuralPConfig(hidden=16, steps=20, batch_size=64, seed=5)
    a = train_successor(StayAgent(), task, sample_states, GOALS, cfg).network
    b = train_successor(StayAgent(), task, sample_states, GOALS, cfg).network
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    fresh = SuccessorNetwork(2, 9)
    s = torch.rand(10, 2)
    assert (fresh(s, torch.zeros(10, dtype=torch.long)) - s).abs().max() < 0.05  # small output init: s' ≈ s


def test_resumed_training_matches_the_uninterrupted_run() -> None:
    task = LinearTask()
    cfg = NeuralPConfig(hidden=16, steps=30, batch_size=64, seed=2, schedule="cosine")
    saved: list[dict] = []
    full = train_successor(
        StayAgent(), task, sample_states, GOALS, cfg, checkpoint=Checkpointing(saved.append, every=10)
    )
    assert [int(st["step"]) for st in saved] == [10, 20]
    torch.manual_seed(123)  # resuming restores every generator: the ambient state must not matter
    resumed = train_successor(
        StayAgent(), task, sample_states, GOALS, cfg, checkpoint=Checkpointing(lambda _s: None, state=saved[0])
    )
    for p, q in zip(full.network.parameters(), resumed.network.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert resumed.losses == full.losses
    with pytest.raises(PlrayInputError, match="checkpoint state"):
        train_successor(
            StayAgent(),
            task,
            sample_states,
            GOALS,
            NeuralPConfig(hidden=8, steps=30, batch_size=64),
            checkpoint=Checkpointing(lambda _s: None, state=saved[0]),
        )


def test_wrap_and_partial_output_dims() -> None:
    x = torch.tensor([[3.5, 0.2, -3.3]])
    torch.testing.assert_close(wrap_dims(x, (0, 2)), torch.tensor([[3.5 - 2 * np.pi, 0.2, -3.3 + 2 * np.pi]]))
    net = SuccessorNetwork(3, 2, config=NeuralPConfig(output_dims=(1,)))
    s = torch.rand(4, 3)
    out = net(s, torch.zeros(4, dtype=torch.long))
    torch.testing.assert_close(out[:, [0, 2]], s[:, [0, 2]])  # copied dims untouched


def test_bad_arguments() -> None:
    with pytest.raises(PlrayInputError, match="lr"):
        NeuralPConfig(lr=0).validate()
    with pytest.raises(PlrayInputError, match="input_dims"):
        SuccessorNetwork(2, 3, config=NeuralPConfig(input_dims=(0, 5)))
    with pytest.raises(PlrayInputError, match="goals"):
        train_successor(StayAgent(), LinearTask(), sample_states, np.zeros(3), NeuralPConfig(steps=1))


def test_state_box_rescales_the_network_input() -> None:
    lo, hi = (-1.2, -0.07), (0.6, 0.07)
    cfg = NeuralPConfig(hidden=8, input_low=lo, input_high=hi)
    boxed = SuccessorNetwork(2, 3, config=cfg)
    s = torch.tensor([[-1.2, -0.07], [0.6, 0.07], [-0.3, 0.0]])
    a = torch.tensor([0, 1, 2])
    x = network_inputs(boxed, s, a)
    torch.testing.assert_close(x[:, :2], torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]))
    torch.testing.assert_close(x[:, 2:], torch.eye(3))
    raw = SuccessorNetwork(2, 3, config=NeuralPConfig(hidden=8))
    torch.testing.assert_close(network_inputs(raw, s, a)[:, :2], s)
    assert "input_center" in boxed.state_dict() and "input_center" not in raw.state_dict()
    # the selected input dims only
    part = SuccessorNetwork(2, 3, config=NeuralPConfig(hidden=8, input_dims=(1,), input_low=lo, input_high=hi))
    torch.testing.assert_close(network_inputs(part, s, a)[:, 0], torch.tensor([-1.0, 1.0, 0.0]))


def test_box_normalised_p_learning_recovers_linear_dynamics() -> None:
    task = LinearTask()
    cfg = NeuralPConfig(
        hidden=32, lr=3e-3, steps=600, batch_size=256, schedule="linear", input_low=(-1, -1), input_high=(1, 1)
    )
    res = train_successor(StayAgent(), task, sample_states, GOALS, cfg)
    assert nmse_per_action_dim(res.network, task).mean() < 1e-4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"input_low": (0.0, 0.0)}, "give both"),
        ({"input_low": (0.0, 1.0), "input_high": (1.0, 1.0)}, "must exceed input_low"),
        ({"input_low": (0.0,), "input_high": (1.0, 2.0)}, "one length"),
        ({"input_low": (0.0, float("nan")), "input_high": (1.0, 2.0)}, "finite"),
    ],
)
def test_bad_state_box(kwargs: dict, match: str) -> None:
    with pytest.raises(PlrayInputError, match=match):
        NeuralPConfig(**kwargs).validate()


def test_state_box_of_the_wrong_dimension() -> None:
    with pytest.raises(PlrayInputError, match="need 2 values"):
        SuccessorNetwork(2, 3, config=NeuralPConfig(input_low=(0.0, 0.0, 0.0), input_high=(1.0, 1.0, 1.0)))
