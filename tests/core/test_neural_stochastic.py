"""Stochastic (Gaussian) neural P-learning: estimator bias, and noise recovery on a noisy linear toy.

Two toys with closed-form expectations:

* 1-D, for the gradient estimators: ŷ(s') = γ c exp(−(s' − g)² / 2w²) (zero reward, no
  termination), so under s' ~ N(μ, σ²), E ŷ = γ c w / √(w² + σ²) · exp(−(μ − g)² / 2(w² + σ²)).
* 2-D, for training: the linear toy of test_neural.py with additive noise, s' = s + 0.1 u(a) + σ_n ε.
  A Gaussian bump of width w averaged over N(0, v I₂) noise is a wider bump,
  E b_w(x + √v ε) = w² / (w² + v) · exp(−‖x − g‖² / 2(w² + v)) =: b_{w²+v}(x), so the "stay" agent's
  value is V(x) = Σ_{k=1..K} γ^{k−1} b_{w²+kσ_n²}(x) and its exact one-step backup under the noisy
  dynamics is Q(s, a) = E[r(s') + γ V(s')] = Σ_{k=1..K+1} γ^{k−1} b_{w²+kσ_n²}(s + 0.1 u(a)) (the
  Bellman equation P-learning inverts holds exactly, whatever K).
"""

import math

import numpy as np
import pytest
import torch

from plray.core import PlrayInputError
from plray.core.neural import NeuralPConfig
from plray.core.neural_stochastic import (
    GaussianPLearningResult,
    GaussianSuccessorNetwork,
    stochastic_p_learning_loss,
    train_gaussian_successor,
)

GAMMA = 0.9

# ----------------------------------------------------------------------------- 1-D estimator toy
C, W1, TARGET = 1.0, 0.5, 0.2


class Line:
    state_dim = 1
    num_actions = 2
    action_dim = 1
    angle_dims: tuple[int, ...] = ()

    def observe_torch(self, states: torch.Tensor) -> torch.Tensor:
        return states


class BumpAgent:
    """V(x, g) = c exp(−(x − g)²/2w²), zero reward, Q ≡ TARGET: a residual that is not zero."""

    gamma = GAMMA
    discrete = True

    def q(self, obs, goals, actions):
        return torch.full((len(obs),), TARGET)

    def v(self, obs, goals):
        return C * torch.exp(-((obs - goals) ** 2).sum(-1) / (2 * W1**2))

    def reward(self, next_obs, goals):
        return torch.zeros(len(next_obs))

    def terminal(self, next_obs, goals):
        return torch.zeros(len(next_obs), dtype=torch.bool)


def expected_bellman_target(mean: torch.Tensor, std: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
    """E_{s'~N(mean, std²)} ŷ(s') in closed form, shape (B,)."""
    var = W1**2 + std**2
    return (GAMMA * C * W1 / var.sqrt() * torch.exp(-((mean - goals) ** 2) / (2 * var))).prod(-1)


def fixed_linear_gaussian() -> GaussianSuccessorNetwork:
    """A linear Gaussian model (no hidden layer) with fixed weights: 6 scalar parameters."""
    model = GaussianSuccessorNetwork(1, 2, config=NeuralPConfig(layers=0), init_std=0.3)
    with torch.no_grad():
        model.net[0].weight.copy_(torch.tensor([[0.2, 0.1, -0.1], [0.3, 0.2, -0.2]]))
        model.net[0].bias.copy_(torch.tensor([0.05, 0.0]))
    return model


def flat_grad(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()]).clone()


@pytest.fixture(scope="module")
def estimator_z_scores() -> dict[str, torch.Tensor]:
    """(mean of N minibatch gradients − exact gradient) / standard error, per parameter, per estimator."""
    model = fixed_linear_gaussian()
    B, N = 16, 600
    s = torch.linspace(-0.5, 0.5, B)[:, None]
    a = torch.arange(B) % 2
    g = torch.full((B, 1), 0.3)
    model.zero_grad()
    mean, std = model(s, a)
    ((TARGET - expected_bellman_target(mean, std, g)) ** 2).mean().backward()
    exact = flat_grad(model)
    z = {}
    for est in ("two-sample", "one-sample", "score"):
        gen = torch.Generator().manual_seed(1)
        grads = []
        for _ in range(N):
            model.zero_grad()
            stochastic_p_learning_loss(model, BumpAgent(), Line(), s, a, g, est, gen).backward()
            grads.append(flat_grad(model))
        G = torch.stack(grads)
        z[est] = (G.mean(0) - exact) / (G.std(0) / math.sqrt(N))
    return z


def test_two_sample_and_score_gradients_are_unbiased(estimator_z_scores: dict[str, torch.Tensor]) -> None:
    for est in ("two-sample", "score"):
        z = estimator_z_scores[est]
        assert z.abs().max() < 4.5, f"{est}: bias in standard errors per parameter {z.numpy().round(1)}"


def test_one_sample_gradient_is_biased(estimator_z_scores: dict[str, torch.Tensor]) -> None:
    """The one-sample loss differentiates δ² + Var ŷ: its log-σ gradients are off by tens of standard errors."""
    z = estimator_z_scores["one-sample"]
    msg = f"one-sample: bias in standard errors per parameter {z.numpy().round(1)}"
    # parameters: weight (2, 3) = [Δ row; log σ row] then bias (2,) = [Δ, log σ]. The extra ∇ Var ŷ
    # is positive along log σ (descent shrinks σ).
    assert z[-1] > 20, msg


def test_two_sample_loss_value_is_unbiased_for_squared_residual() -> None:
    model = fixed_linear_gaussian()
    B = 20000
    s = torch.zeros(B, 1)
    a = torch.zeros(B, dtype=torch.long)
    g = torch.full((B, 1), 0.3)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        mean, std = model(s[:1], a[:1])
        delta2 = float((TARGET - expected_bellman_target(mean, std, g[:1])) ** 2)
        var = float(BumpAgent().v(model.sample(s, a, 1, gen)[0], g).mul(GAMMA).var())
        two = float(stochastic_p_learning_loss(model, BumpAgent(), Line(), s, a, g, "two-sample", gen))
        one = float(stochastic_p_learning_loss(model, BumpAgent(), Line(), s, a, g, "one-sample", gen))
    assert abs(two - delta2) < 0.1 * delta2, (two, delta2)
    assert abs(one - (delta2 + var)) < 0.1 * (delta2 + var), (one, delta2, var)


# ----------------------------------------------------------------------------- 2-D noisy linear toy
W2, NOISE, STEP, K = 0.5, 0.15, 0.1, 40
U = torch.tensor([(i, j) for i in (-1.0, 0.0, 1.0) for j in (-1.0, 0.0, 1.0)])
GOALS = np.array([[-0.6, -0.4], [0.5, -0.5], [0.0, 0.6], [0.7, 0.4], [-0.5, 0.5]])


def smoothed_value(x: torch.Tensor, g: torch.Tensor, terms: int) -> torch.Tensor:
    """Σ_{k=1..terms} γ^{k−1} b_{w²+kσ_n²}(x), shape (B,)."""
    k = torch.arange(1, terms + 1, dtype=torch.float64)
    var = W2**2 + k * NOISE**2
    d2 = ((x - g) ** 2).sum(-1, keepdim=True).double()
    return (GAMMA ** (k - 1) * (W2**2 / var) * torch.exp(-d2 / (2 * var))).sum(-1).to(x.dtype)


class NoisyLinearTask:
    """s' = s + 0.1 u(a) + σ_n ε on R², observation = state."""

    state_dim = 2
    num_actions = 9
    action_dim = 1
    angle_dims: tuple[int, ...] = ()

    def observe_torch(self, states: torch.Tensor) -> torch.Tensor:
        return states


class NoisyStayAgent:
    gamma = GAMMA
    discrete = True

    def q(self, obs, goals, actions):
        return smoothed_value(obs + STEP * U[actions.long()], goals, K + 1)

    def v(self, obs, goals):
        return smoothed_value(obs, goals, K)

    def reward(self, next_obs, goals):
        return torch.exp(-((next_obs - goals) ** 2).sum(-1) / (2 * W2**2))

    def terminal(self, next_obs, goals):
        return torch.zeros(len(next_obs), dtype=torch.bool)


def sample_states(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(-1, 1, size=(n, 2))


def test_backup_of_the_toy_is_exact() -> None:
    """Monte Carlo check of the closed form: E[r(s') + γ V(s')] = Q(s, a) under the noisy dynamics."""
    gen = torch.Generator().manual_seed(0)
    s = torch.tensor([[0.2, -0.1]]).expand(200000, 2)
    a = torch.full((200000,), 2)
    g = torch.tensor([[0.5, -0.5]]).expand(200000, 2)
    nxt = s + STEP * U[a] + NOISE * torch.randn(200000, 2, generator=gen)
    agent = NoisyStayAgent()
    mc = (agent.reward(nxt, g) + GAMMA * agent.v(nxt, g)).double()
    q = float(agent.q(s[:1], g[:1], a[:1]))
    assert abs(mc.mean().item() - q) < 4 * mc.std().item() / math.sqrt(len(mc)), (mc.mean().item(), q)


@pytest.fixture(scope="module")
def trained() -> dict[str, GaussianPLearningResult]:
    cfg = NeuralPConfig(hidden=32, lr=5e-3, steps=500, batch_size=512, loss="l2", schedule="linear", seed=0)
    return {
        est: train_gaussian_successor(
            NoisyStayAgent(), NoisyLinearTask(), sample_states, GOALS, cfg, estimator=est, init_std=0.05
        )
        for est in ("two-sample", "one-sample")
    }


def mean_and_std(result: GaussianPLearningResult, n: int = 4000) -> tuple[float, np.ndarray]:
    """RMSE of the predicted mean against s + 0.1 u(a), and the predicted σ per dim averaged over (s, a)."""
    rng = np.random.default_rng(123)
    s = torch.as_tensor(sample_states(rng, n), dtype=torch.float32)
    a = torch.as_tensor(rng.integers(9, size=n))
    with torch.no_grad():
        mean, std = result.network(s, a)
    rmse = float(((mean - (s + STEP * U[a])) ** 2).mean().sqrt())
    return rmse, std.mean(0).numpy()


def test_two_sample_recovers_mean_and_noise(trained: dict[str, GaussianPLearningResult]) -> None:
    rmse, sigma = mean_and_std(trained["two-sample"])
    _, sigma_one = mean_and_std(trained["one-sample"])
    msg = f"two-sample: mean RMSE {rmse:.4f}, σ {sigma.round(4)} (one-sample σ {sigma_one.round(4)}), true σ {NOISE}"
    assert rmse < 0.02, msg  # the step is 0.1
    assert np.all(np.abs(sigma - NOISE) < 0.2 * NOISE), msg
    assert trained["two-sample"].summary()["estimator"] == "two-sample"


def test_one_sample_collapses_the_noise(trained: dict[str, GaussianPLearningResult]) -> None:
    rmse, sigma = mean_and_std(trained["one-sample"])
    msg = f"one-sample: mean RMSE {rmse:.4f}, σ {sigma.round(4)}, true σ {NOISE}, initial σ 0.05"
    assert rmse < 0.03, msg
    assert np.all(sigma < 0.1 * NOISE), msg


# ----------------------------------------------------------------------------- the network itself
def test_network_moments_sampling_and_log_prob() -> None:
    torch.manual_seed(0)
    net = GaussianSuccessorNetwork(3, 4, angle_dims=(0,), config=NeuralPConfig(hidden=16), init_std=[0.1, 0.2, 0.3])
    s = torch.rand(6, 3) * 2 - 1
    s[:, 0] = 3.1  # next to the wrap point
    a = torch.arange(6) % 4
    mean, std = net(s, a)
    assert (mean[:, 1:] - s[:, 1:]).abs().max() < 0.05  # small output init: μ ≈ s
    torch.testing.assert_close(std, torch.tensor([0.1, 0.2, 0.3]).expand(6, 3), atol=5e-3, rtol=0)
    x = net.sample(s, a, 5, torch.Generator().manual_seed(0))
    assert x.shape == (5, 6, 3) and x.requires_grad
    assert x[..., 0].min() >= -math.pi and x[..., 0].max() < math.pi
    y = net.sample(s, a, 5, torch.Generator().manual_seed(0))
    torch.testing.assert_close(x, y)
    ref = torch.distributions.Normal(mean[:, 1:], std[:, 1:]).log_prob(x[..., 1:]).sum(-1)
    lp = net.log_prob(s, a, x)
    assert lp.shape == (5, 6)
    # angle dim: the wrapped difference, so a sample that wrapped past π still has its small offset
    d0 = torch.remainder(x[..., 0] - mean[:, 0] + math.pi, 2 * math.pi) - math.pi
    ref0 = torch.distributions.Normal(0.0, std[:, 0]).log_prob(d0)
    torch.testing.assert_close(lp, ref + ref0)


def test_copied_dims_are_point_masses() -> None:
    net = GaussianSuccessorNetwork(3, 2, config=NeuralPConfig(output_dims=(1,)))
    s = torch.rand(4, 3)
    a = torch.zeros(4, dtype=torch.long)
    _, std = net(s, a)
    assert (std[:, [0, 2]] == 0).all() and (std[:, 1] > 0).all()
    x = net.sample(s, a, 3)
    torch.testing.assert_close(x[..., [0, 2]], s[:, [0, 2]].expand(3, 4, 2))
    assert torch.isfinite(net.log_prob(s, a, x)).all()


def test_training_is_seeded() -> None:
    cfg = NeuralPConfig(hidden=8, steps=5, batch_size=32, loss="l2", seed=3)
    a = train_gaussian_successor(NoisyStayAgent(), NoisyLinearTask(), sample_states, GOALS, cfg)
    b = train_gaussian_successor(NoisyStayAgent(), NoisyLinearTask(), sample_states, GOALS, cfg)
    assert a.losses == b.losses
    for p, q in zip(a.network.parameters(), b.network.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_bad_arguments() -> None:
    agent, task = NoisyStayAgent(), NoisyLinearTask()
    with pytest.raises(PlrayInputError, match="config.loss"):
        train_gaussian_successor(agent, task, sample_states, GOALS, NeuralPConfig(steps=1))
    with pytest.raises(PlrayInputError, match="estimator"):
        train_gaussian_successor(agent, task, sample_states, GOALS, NeuralPConfig(loss="l2"), estimator="three")
    with pytest.raises(PlrayInputError, match="goals"):
        train_gaussian_successor(agent, task, sample_states, np.zeros(3), NeuralPConfig(loss="l2", steps=1))
    with pytest.raises(PlrayInputError, match="init_std"):
        GaussianSuccessorNetwork(2, 9, init_std=0.0)
    net = GaussianSuccessorNetwork(2, 9)
    with pytest.raises(PlrayInputError, match="states"):
        net(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(PlrayInputError, match="actions"):
        net(torch.zeros(4, 2), torch.zeros(5, dtype=torch.long))
    with pytest.raises(PlrayInputError, match="goals"):
        stochastic_p_learning_loss(
            net, agent, task, torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), torch.zeros(3, 2)
        )
