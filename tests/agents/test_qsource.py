"""Q sources and the pickle-free agent artifact (no Ray runtime)."""

import json

import numpy as np
import pytest
import torch

from plray.agents.export import ArtifactError, save_agent
from plray.agents.modules import GoalQNetwork
from plray.agents.qsource import NetworkQSource, TabularQSource, rllib_qsource
from plray.core import PlrayInputError
from plray.envs.fourrooms import FourRoomsTask
from plray.envs.registry import make_task
from plray.evaluation import value_iteration


def _network(task, seed=0) -> GoalQNetwork:
    torch.manual_seed(seed)
    return GoalQNetwork(task.obs_dim + task.goal_dim, task.num_actions, hiddens=(16, 16), sigmoid=True)


def test_tabular_source_reads_the_table_and_rewards() -> None:
    task = FourRoomsTask("windy", 4, "generic")
    Q = value_iteration(task.mdp.kernel, task.goals.rewards, task.goals.dones, 0.95).Q
    src = TabularQSource(Q, task, 0.95)
    states = np.array([[3.0], [40.0]])
    goals = np.eye(4)[[1, 3]]
    q = src.q_values(task.observe(states), goals)
    np.testing.assert_allclose(q.numpy(), Q[[3, 40], :, :][np.arange(2), :, [1, 3]])
    np.testing.assert_allclose(src.v(task.observe(states), goals).numpy(), Q[[3, 40]].max(1)[np.arange(2), [1, 3]])
    np.testing.assert_allclose(src.reward(task.observe(states), goals).numpy(), task.goals.rewards[[3, 40], [1, 3]])
    with pytest.raises(PlrayInputError, match="expected shape"):
        TabularQSource(Q[:, :, :2], task, 0.95)


def test_network_source_is_differentiable_in_the_observation() -> None:
    task = make_task("mountaincar-position")
    src = NetworkQSource(_network(task), task, 0.99)
    obs = torch.tensor([[-0.5, 0.01], [0.1, -0.02]], requires_grad=True)
    goals = torch.tensor([[0.0], [0.6]])
    src.v(obs, goals).sum().backward()
    assert obs.grad is not None and torch.isfinite(obs.grad).all() and obs.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in src.network.parameters())  # the agent is frozen
    with pytest.raises(PlrayInputError, match=r"expected shape \(B, 2\)"):
        src.q_values(torch.zeros(3, 5), goals)
    with pytest.raises(PlrayInputError, match="batch sizes differ"):
        src.q_values(torch.zeros(3, 2), goals)
    with pytest.raises(PlrayInputError, match="non-finite"):
        src.q_values(torch.full((2, 2), float("nan")), goals)


def _write_artifact(tmp_path, task_name="mountaincar-position"):
    task = make_task(task_name)
    net = _network(task)
    manifest = {
        "task": task_name,
        "task_kwargs": {},
        "gamma": 0.99,
        "algorithm": "dqn",
        "value_mode": "max",
        "network": {
            "input_index": list(range(task.obs_dim + task.goal_dim)),
            "hiddens": [16, 16],
            "layernorm": True,
            "activation": "relu",
            "sigmoid": True,
        },
    }
    return task, net, save_agent(tmp_path / "agent", {"q": net.state_dict()}, manifest)


def test_artifact_round_trip(tmp_path) -> None:
    task, net, path = _write_artifact(tmp_path)
    src = NetworkQSource.from_artifact(path)
    x = torch.tensor([[-0.5, 0.0, 0.6], [0.2, 0.05, -1.2]])
    torch.testing.assert_close(src.network(x), net(x))
    assert src.gamma == 0.99 and src.task.name == "mountaincar-position"
    assert not list(path.parent.glob(".agent*")), "no temporary directories left"


def test_tampered_or_corrupt_artifacts_are_refused(tmp_path) -> None:
    _, _, path = _write_artifact(tmp_path)
    weights = path / "tensors.npz"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        NetworkQSource.from_artifact(path)

    _, _, path = _write_artifact(tmp_path / "b")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["network"]["hiddens"] = [32, 32]  # no longer matches the tensors
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="do not describe a valid network"):
        NetworkQSource.from_artifact(path)

    (path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable manifest"):
        NetworkQSource.from_artifact(path)
    with pytest.raises(ArtifactError, match="not a plray artifact"):
        NetworkQSource.from_artifact(tmp_path / "nothing-here")

    _, _, path = _write_artifact(tmp_path / "c")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 99
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="format version 99"):
        NetworkQSource.from_artifact(path)


def test_pickled_weights_are_never_loaded(tmp_path) -> None:
    """An npz holding a pickled object array is refused even with a matching checksum."""
    from plray.agents.export import sha256_file

    _, _, path = _write_artifact(tmp_path)
    np.savez(path / "tensors.npz", **{"q/evil": np.array([object()], dtype=object)})
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["sha256"]["tensors.npz"] = sha256_file(path / "tensors.npz")
    manifest["tensors"] = {"q/evil": {"shape": [1], "dtype": "object"}}
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="unreadable tensors"):
        NetworkQSource.from_artifact(path)


def test_rllib_checkpoints_need_explicit_pickle_opt_in(tmp_path) -> None:
    with pytest.raises(PlrayInputError, match="allow_pickle=True"):
        rllib_qsource(tmp_path, make_task("reacher"), 0.99)


def test_a_world_model_artifact_is_not_an_agent(tmp_path) -> None:
    from plray.utils.artifact import save_artifact

    save_artifact(tmp_path / "wm", "world-model", {"x": np.zeros(2)}, {"task": "reacher"})
    with pytest.raises(ArtifactError, match="is a 'world-model' artifact, expected 'agent'"):
        NetworkQSource.from_artifact(tmp_path / "wm")
