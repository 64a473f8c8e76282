"""World models: the contract, and the artifact round trip with corrupt and tampered files refused."""

import json

import numpy as np
import pytest
import torch

from plray.core import PlrayInputError
from plray.core.model_io import load_world_model, save_world_model
from plray.core.neural import NeuralPConfig, SuccessorNetwork
from plray.core.worldmodel import TabularWorldModel
from plray.core.worldmodel_neural import NeuralWorldModel
from plray.envs import FourRooms
from plray.utils.artifact import ArtifactError


def _neural(angle_dims=(0,)) -> NeuralWorldModel:
    torch.manual_seed(0)
    cfg = NeuralPConfig(hidden=16, output_init_scale=1.0)
    return NeuralWorldModel(SuccessorNetwork(3, 4, angle_dims=angle_dims, config=cfg), cfg)


def test_tabular_model_contract() -> None:
    P = FourRooms("windy").kernel
    wm = TabularWorldModel(P)
    states = np.array([[10.0], [20.0]])
    actions = np.array([0, 3])
    np.testing.assert_allclose(wm.distribution(states, actions), P[[10, 20], [0, 3]])
    assert wm.predict(states, actions).shape == (2, 1)
    draws = wm.sample(np.full((20000, 1), 10.0), np.zeros(20000, dtype=int), 1, np.random.default_rng(0))[0, :, 0]
    np.testing.assert_allclose(np.bincount(draws.astype(int), minlength=68) / 20000, P[10, 0], atol=0.015)
    with pytest.raises(PlrayInputError, match="integer indices"):
        wm.predict(np.array([[10.5]]), np.array([0]))
    with pytest.raises(PlrayInputError, match=r"must lie in \[0, 4\)"):
        wm.predict(states, np.array([0, 4]))


def test_neural_model_validates_and_wraps() -> None:
    wm = _neural()
    s = np.random.default_rng(0).uniform(-3, 3, size=(50, 3))
    out = wm.predict(s, np.arange(50) % 4)
    assert out.shape == (50, 3) and (np.abs(out[:, 0]) <= np.pi).all()
    assert wm.std(s, np.zeros(50, dtype=int)).max() == 0
    with pytest.raises(PlrayInputError, match="NaN"):
        wm.predict(np.full((2, 3), np.nan), np.zeros(2, dtype=int))
    with pytest.raises(PlrayInputError, match="axis 1"):
        wm.predict(np.zeros((2, 5)), np.zeros(2, dtype=int))
    with pytest.raises(PlrayInputError, match="to match the states"):
        wm.predict(np.zeros((2, 3)), np.zeros(3, dtype=int))


def _boxed() -> NeuralWorldModel:
    torch.manual_seed(1)
    cfg = NeuralPConfig(hidden=16, output_init_scale=1.0, input_low=(-4.0, -1.0, -2.0), input_high=(4.0, 1.0, 2.0))
    return NeuralWorldModel(SuccessorNetwork(3, 4, angle_dims=(0,), config=cfg), cfg)


@pytest.mark.parametrize("model", ["tabular", "neural", "neural-boxed"])
def test_round_trip(tmp_path, model: str) -> None:
    makers = {"tabular": lambda: TabularWorldModel(FourRooms("teleport").kernel), "neural": _neural}
    wm = makers.get(model, _boxed)()
    path = save_world_model(tmp_path / "wm", wm, {"task": "x", "method": "closed-form", "metrics": {"tv": 0.0}})
    loaded, manifest = load_world_model(path)
    assert manifest["kind"] == "world-model" and manifest["metrics"] == {"tv": 0.0}
    assert set(manifest["versions"]) >= {"plray", "numpy", "torch"}
    s = np.array([[5.0, 0.1, -0.2], [7.0, 1.0, 2.0]])[:, : wm.state_dim]
    a = np.array([1, 2])
    np.testing.assert_allclose(loaded.predict(s, a), wm.predict(s, a), rtol=1e-6)


def test_corrupt_and_tampered_world_models_are_refused(tmp_path) -> None:
    path = save_world_model(tmp_path / "wm", _neural(), {"task": "x"})
    tensors = path / "tensors.npz"
    raw = bytearray(tensors.read_bytes())
    raw[len(raw) // 3] ^= 0x01
    tensors.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_world_model(path)

    path = save_world_model(tmp_path / "wm2", _neural(), {"task": "x"})
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["model"]["config"]["hidden"] = 32  # architecture no longer matches the tensors
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="do not match the manifest's architecture"):
        load_world_model(path)

    manifest["model"]["model_type"] = "oracle"
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="unknown 'oracle'"):
        load_world_model(path)

    (path / "tensors.npz").unlink()
    with pytest.raises(ArtifactError, match="tensors.npz is missing"):
        load_world_model(path)

    path = save_world_model(tmp_path / "wm3", _neural(), {"task": "x"})
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["tensors"].pop(next(iter(manifest["tensors"])))
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="do not match the manifest"):
        load_world_model(path)


def test_nan_tensors_are_refused(tmp_path) -> None:
    wm = _neural()
    with torch.no_grad():
        next(wm.network.parameters()).fill_(float("nan"))
    path = save_world_model(tmp_path / "wm", wm, {"task": "x"})
    with pytest.raises(ArtifactError, match="NaN or infinity"):
        load_world_model(path)


def test_state_box_travels_in_the_manifest(tmp_path) -> None:
    path = save_world_model(tmp_path / "wm", _boxed(), {"task": "x", "method": "m"})
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["model"]["config"]["input_low"] == [-4.0, -1.0, -2.0]
    assert manifest["model"]["config"]["input_high"] == [4.0, 1.0, 2.0]
    loaded, _ = load_world_model(path)
    assert loaded.config.input_low == (-4.0, -1.0, -2.0)
