"""WM_MSE / WM_NMSE and cross-WM NMSE (docs/method.md#world-model-error): hand-computed values, wrapped angles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plray.core.neural import SuccessorNetwork
from plray.envs.mountaincar import MountainCarTask
from plray.envs.reacher import KinematicReacherTask
from plray.evaluation.wm_metrics import (
    cross_model_nmse,
    evaluation_states,
    kernel_errors,
    kernel_moments,
    network_predict_fn,
    obs_angle_dims,
    wm_errors,
)
from plray.utils.validation import PlrayInputError


@pytest.fixture(scope="module")
def mc() -> MountainCarTask:
    return MountainCarTask("position")


@pytest.fixture(scope="module")
def reacher() -> KinematicReacherTask:
    return KinematicReacherTask()


def _offset(task, offset):
    offset = np.asarray(offset, dtype=np.float64)
    return lambda s, a: task.next_state(s, a) + offset


def test_perfect_model_scores_zero(mc: MountainCarTask, reacher: KinematicReacherTask) -> None:
    for task, dist in ((mc, "uniform"), (reacher, "reset")):
        states = evaluation_states(task, 300, np.random.default_rng(0), dist)
        for space in ("state", "obs"):
            out = wm_errors(task.next_state, task, states, space=space)
            assert out["wm_mse"] == 0.0 and out["wm_nmse"] == 0.0
            width = task.state_dim if space == "state" else task.obs_dim
            assert np.shape(out["per_action_dim_nmse"]) == (task.num_actions, width)
            assert len(out["per_dim_nmse"]) == width
            assert out["num_states"] == 300 and out["num_actions"] == task.num_actions


def test_constant_offset_hand_computed(mc: MountainCarTask) -> None:
    states = evaluation_states(mc, 500, np.random.default_rng(1), "uniform")
    c = 0.003
    out = wm_errors(_offset(mc, [c, 0.0]), mc, states)
    var_x = np.array([mc.next_state(states, np.full(500, a))[:, 0].var() for a in range(3)])
    mse = np.array(out["per_action_dim_mse"])
    nmse = np.array(out["per_action_dim_nmse"])
    np.testing.assert_allclose(mse[:, 0], c**2, rtol=1e-9)
    np.testing.assert_array_equal(mse[:, 1], 0.0)
    np.testing.assert_allclose(nmse[:, 0], c**2 / var_x, rtol=1e-9)
    assert out["wm_mse"] == pytest.approx(c**2 / 2)
    assert out["wm_nmse"] == pytest.approx(np.mean(c**2 / var_x) / 2)
    np.testing.assert_allclose(out["per_dim_nmse"], [np.mean(c**2 / var_x), 0.0])


def test_wrapped_angle_error(reacher: KinematicReacherTask) -> None:
    """A prediction off by 2π − 0.01 on an angle dim has error 0.01 (state and obs space)."""
    states = evaluation_states(reacher, 400, np.random.default_rng(2), "reset")
    model = _offset(reacher, [2 * np.pi - 0.01, 0.0, 0.0, 0.0])
    out = wm_errors(model, reacher, states)
    mse = np.array(out["per_action_dim_mse"])
    np.testing.assert_allclose(mse[:, 0], 1e-4, rtol=1e-6)
    np.testing.assert_allclose(mse[:, 1:], 0.0, atol=1e-20)
    # obs space: obs dims 0, 1 are wrapped angles too, so a model whose θ lands on the other side
    # of the seam still scores 0.01; the fingertip dims see the small rotation of link 1
    assert obs_angle_dims(reacher) == (0, 1)
    obs_out = wm_errors(model, reacher, states, space="obs")
    obs_mse = np.array(obs_out["per_action_dim_mse"])
    np.testing.assert_allclose(obs_mse[:, 0], 1e-4, rtol=1e-6)
    np.testing.assert_allclose(obs_mse[:, 1:4], 0.0, atol=1e-20)
    assert (obs_mse[:, 4:] > 0).all() and (obs_mse[:, 4:] < 1e-4).all()
    # without wrapping, states near the seam would contribute (2π)²-sized errors
    raw = wm_errors(model, reacher, states, angle_dims=())
    assert np.array(raw["per_action_dim_mse"])[:, 0].min() > 1.0


def test_wrapped_difference_across_the_seam(reacher: KinematicReacherTask) -> None:
    """θ just below π predicted as just above −π: a difference of 0.02, not 2π − 0.02."""
    states = np.array([[np.pi - 0.06, 0.0, 0.0, 0.0], [0.5, 0.3, 0.2, -0.1]])

    def model(s, a):
        out = reacher.next_state(s, a)
        out[0, 0] = -np.pi + 0.01  # truth for every action is near π − 0.06 + dt·ω' ≈ π − 0.06 ± 0.0025
        return out

    out = wm_errors(model, reacher, states, actions=np.array([4]))
    truth = reacher.next_state(states[:1], np.array([4]))[0, 0]  # π − 0.06
    expected = ((-np.pi + 0.01) - truth + np.pi) % (2 * np.pi) - np.pi
    assert abs(expected) < 0.1
    assert out["per_action_dim_mse"][0][0] == pytest.approx(expected**2 / 2)


def test_cross_model(mc: MountainCarTask) -> None:
    states = evaluation_states(mc, 400, np.random.default_rng(3), "uniform")
    model_a = _offset(mc, [0.0, 0.002])
    model_b = _offset(mc, [0.0, -0.001])
    out = cross_model_nmse(model_a, model_b, mc, states)
    var_v = np.array([mc.next_state(states, np.full(400, a))[:, 1].var() for a in range(3)])
    nmse = np.array(out["per_action_dim_nmse"])
    np.testing.assert_allclose(nmse[:, 0], 0.0, atol=1e-20)
    np.testing.assert_allclose(nmse[:, 1], 0.003**2 / var_v, rtol=1e-9)
    assert out["nmse"] == pytest.approx(np.mean(0.003**2 / var_v) / 2)
    assert out["mse"] == pytest.approx(0.003**2 / 2)
    # against the truth, the cross measure is the WM_NMSE
    vs_true = cross_model_nmse(model_a, mc.next_state, mc, states)
    assert vs_true["nmse"] == pytest.approx(wm_errors(model_a, mc, states)["wm_nmse"], rel=1e-12)
    assert cross_model_nmse(model_b, model_b, mc, states)["nmse"] == 0.0


def test_network_predict_fn(reacher: KinematicReacherTask) -> None:
    torch.manual_seed(0)
    net = SuccessorNetwork(4, 9, angle_dims=(0, 1))
    states = evaluation_states(reacher, 64, np.random.default_rng(4), "reset")
    out = wm_errors(network_predict_fn(net), reacher, states, space="obs")
    # an untrained residual network predicts s' ≈ s: small but non-zero errors
    assert 0.0 < out["wm_mse"] < 0.1 and np.isfinite(out["wm_nmse"])


def test_evaluation_states(mc: MountainCarTask, reacher: KinematicReacherTask) -> None:
    s = evaluation_states(reacher, 1000, np.random.default_rng(5), "reset")
    assert s.shape == (1000, 4) and np.abs(s[:, 2:]).max() <= 1.0
    u = evaluation_states(mc, 1000, np.random.default_rng(5), "uniform")
    assert u[:, 0].min() < -1.0 and u[:, 1].max() > 0.06
    np.testing.assert_array_equal(u, evaluation_states(mc, 1000, np.random.default_rng(5), "uniform"))
    r = evaluation_states(mc, 10, np.random.default_rng(5), "reset")
    assert (r[:, 1] == 0).all() and (r[:, 0] >= -0.6).all() and (r[:, 0] <= -0.4).all()
    with pytest.raises(PlrayInputError, match="distribution"):
        evaluation_states(mc, 10, np.random.default_rng(0), "grid")  # type: ignore[arg-type]
    with pytest.raises(PlrayInputError, match="n:"):
        evaluation_states(mc, 1, np.random.default_rng(0))
    with pytest.raises(PlrayInputError, match="rng"):
        evaluation_states(mc, 10, 0)  # type: ignore[arg-type]


def test_continuous_actions() -> None:
    from plray.envs.mujoco_reacher import MujocoReacherTask

    task = MujocoReacherTask()
    states = evaluation_states(task, 32, np.random.default_rng(6), "reset")
    actions = np.array([[1.0, -1.0], [0.0, 0.5]])
    out = wm_errors(task.next_state, task, states, actions=actions, space="obs")
    assert out["wm_mse"] == 0.0 and np.shape(out["per_action_dim_nmse"]) == (2, task.obs_dim)
    with pytest.raises(PlrayInputError, match="actions"):
        wm_errors(task.next_state, task, states)


def test_validation(mc: MountainCarTask) -> None:
    states = evaluation_states(mc, 20, np.random.default_rng(7), "uniform")
    with pytest.raises(PlrayInputError, match="predict_fn"):
        wm_errors(lambda s, a: s[:, :1], mc, states)
    with pytest.raises(PlrayInputError, match="states"):
        wm_errors(mc.next_state, mc, states[:, :1])
    with pytest.raises(PlrayInputError, match="states"):
        wm_errors(mc.next_state, mc, states[:1])
    with pytest.raises(PlrayInputError, match="space"):
        wm_errors(mc.next_state, mc, states, space="latent")  # type: ignore[arg-type]
    with pytest.raises(PlrayInputError, match="actions"):
        wm_errors(mc.next_state, mc, states, actions=np.array([3]))
    with pytest.raises(PlrayInputError, match="predict_fn"):
        wm_errors(lambda s, a: np.full_like(s, np.nan), mc, states)
    # the MountainCar reset distribution has v = 0 everywhere, but v' still varies with x: fine;
    # two identical states leave the reference without variance
    same = np.repeat(states[:1], 2, axis=0)
    with pytest.raises(PlrayInputError, match="zero variance"):
        wm_errors(mc.next_state, mc, same)


# --------------------------------------------------------------------------- stochastic kernels


@pytest.fixture(scope="module")
def noisy() -> MountainCarTask:
    return MountainCarTask("position", noise_std=(0.005, 0.001))


def test_kernel_moments(mc: MountainCarTask, noisy: MountainCarTask) -> None:
    states = np.array([[-0.5, 0.01], [-0.3, -0.02], [0.0, 0.0]])
    acts = np.array([0, 1, 2])
    mean, std = kernel_moments(mc, states, acts)
    np.testing.assert_array_equal(mean, mc.next_state(states, acts))
    assert (std == 0).all()
    mean, std = kernel_moments(noisy, states, acts, samples=20_000)
    assert (np.abs(mean - noisy.next_state(states, acts)) < 4 * np.array([0.005, 0.001]) / np.sqrt(20_000)).all()
    np.testing.assert_allclose(std, np.tile([0.005, 0.001], (3, 1)), rtol=0.03)
    again = kernel_moments(noisy, states, acts, samples=20_000)
    np.testing.assert_array_equal(mean, again[0])  # seeded
    with pytest.raises(PlrayInputError, match="samples"):
        kernel_moments(noisy, states, acts, samples=1)


def test_kernel_moments_average_angles_across_the_seam() -> None:
    reacher = KinematicReacherTask()
    reacher.noise_std = np.array([0.05, 0.05, 0.0, 0.0])
    state = np.array([[np.pi - 0.01, 0.0, 0.0, 0.0]])  # θ₁ sits on the seam
    mean, std = kernel_moments(reacher, state, np.array([4]), samples=4000)
    assert abs(np.angle(np.exp(1j * (mean[0, 0] - (np.pi - 0.01))))) < 0.01  # not pulled to 0 by the wrap
    np.testing.assert_allclose(std[0, :2], 0.05, rtol=0.06)


def test_kernel_errors_score_the_true_kernel_and_a_point_mass(noisy: MountainCarTask) -> None:
    states = noisy.sample_states(400, np.random.default_rng(0))
    states[:, 0] = np.clip(states[:, 0], -1.0, 0.4)  # away from the walls, where the kernel is Gaussian
    sigma = np.array([0.005, 0.001])
    true_std = lambda s, a: np.tile(sigma, (len(s), 1))  # noqa: E731
    exact = kernel_errors(noisy.next_state, true_std, noisy, states, samples=2000)
    assert exact["mean_nmse"] < 1e-5
    assert max(exact["std_rel_error"]) < 0.05
    np.testing.assert_allclose(exact["std_true"], sigma, rtol=0.05)
    point = kernel_errors(noisy.next_state, None, noisy, states, samples=2000)
    assert point["std_model"] == [0.0, 0.0]
    assert point["std_rel_error"] == [1.0, 1.0]
    assert point["w2"] > exact["w2"]


def test_wm_errors_use_the_kernel_mean_on_stochastic_tasks(noisy: MountainCarTask) -> None:
    states = noisy.sample_states(2000, np.random.default_rng(1))
    mean = lambda s, a: kernel_moments(noisy, s, a)[0]  # noqa: E731
    assert wm_errors(mean, noisy, states)["wm_nmse"] == 0.0
    # the noise-free step differs from the mean where the box clips the noise
    assert wm_errors(noisy.next_state, noisy, states)["wm_nmse"] > 0.0
