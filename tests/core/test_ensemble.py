import numpy as np
import pytest
import torch

from plray.core.ensemble import PointEnsemble, TabularEnsemble, member_tv
from plray.core.model_io import load_world_model, save_world_model
from plray.core.neural import NeuralPConfig, SuccessorNetwork
from plray.core.worldmodel_neural import NeuralWorldModel
from plray.envs import FourRooms
from plray.utils.validation import PlrayInputError


def _neural(seed: int = 0, state_dim: int = 3, angle_dims: tuple[int, ...] = (0,)) -> NeuralWorldModel:
    torch.manual_seed(seed)
    cfg = NeuralPConfig(hidden=16, output_init_scale=1.0)
    return NeuralWorldModel(SuccessorNetwork(state_dim, 4, angle_dims=angle_dims, config=cfg), cfg)


def test_tabular_ensemble_is_the_mixture_and_reports_disagreement(tmp_path) -> None:
    P = FourRooms("windy").kernel
    rng = np.random.default_rng(0)
    noisy = np.stack([P + 0.05 * rng.random(P.shape) for _ in range(3)])
    model = TabularEnsemble(noisy)
    assert model.size == 3 and model.model_type == "tabular"
    np.testing.assert_allclose(model.kernel(), model.members.mean(0))
    np.testing.assert_allclose(model.kernel().sum(-1), 1.0)
    assert model.disagreement().shape == (68, 4) and model.disagreement().min() > 0
    # identical members agree perfectly
    assert TabularEnsemble(np.stack([P, P])).disagreement().max() == 0.0
    # TV of members from their mean: two point masses on different states disagree by 1/2 each
    two = np.zeros((2, 1, 1, 2))
    two[0, 0, 0, 0] = two[1, 0, 0, 1] = 1.0
    assert member_tv(two)[0, 0] == pytest.approx(0.5)
    path = save_world_model(tmp_path / "ens", model, {"task": "fourrooms"})
    loaded, _ = load_world_model(path)
    assert isinstance(loaded, TabularEnsemble)
    np.testing.assert_array_equal(loaded.members, model.members)


def test_tabular_ensemble_rejects_bad_shapes() -> None:
    with pytest.raises(PlrayInputError, match="kernels"):
        TabularEnsemble(np.ones((2, 3, 4, 5)))


def test_point_ensemble_mean_std_sample_and_round_trip(tmp_path) -> None:
    members = [_neural(seed=s) for s in range(3)]
    model = PointEnsemble(members)
    rng = np.random.default_rng(1)
    s = rng.normal(size=(5, 3))
    a = rng.integers(4, size=5)
    preds = np.stack([m.predict(s, a) for m in members])
    mean = model.predict(s, a)
    std = model.std(s, a)
    assert mean.shape == std.shape == (5, 3)
    assert (std > 0).all()  # differently seeded members disagree
    draws = model.sample(s, a, 7, rng)
    assert draws.shape == (7, 5, 3)
    # every draw is one member's prediction
    assert all(any(np.allclose(draws[i, b], preds[e, b]) for e in range(3)) for i in range(7) for b in range(5))
    path = save_world_model(tmp_path / "ens", model, {"task": "test"})
    loaded, manifest = load_world_model(path)
    assert manifest["model"]["model_type"] == "ensemble"
    np.testing.assert_allclose(loaded.predict(s, a), mean, atol=1e-6)
    np.testing.assert_allclose(loaded.std(s, a), std, atol=1e-6)


def test_point_ensemble_rejects_mismatched_members() -> None:
    with pytest.raises(PlrayInputError, match="at least one"):
        PointEnsemble([])
    with pytest.raises(PlrayInputError, match="members\\[1\\]"):
        PointEnsemble([_neural(), _neural(angle_dims=(0,), state_dim=2)])
