"""Real RLlib training runs, sized to seconds: train, checkpoint, interrupt, resume, load the agent."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from plray.agents.config import AgentConfig
from plray.agents.qsource import NetworkQSource, load_qsource, rllib_qsource
from plray.agents.train import train
from plray.utils.schema import ConfigError, from_mapping

pytestmark = pytest.mark.ray

TINY_DQN = {
    "task": "mountaincar-position",
    "seed": 3,
    "her": {"strategy": "random", "k": 3},
    "network": {"hiddens": [32, 32]},
    "training": {"total_env_steps": 3000, "num_envs": 16, "learning_starts": 300, "train_batch_size": 64},
    "checkpoint": {"every_iters": 1, "keep": 2},
    "evaluation": {"episodes_per_goal": 4},
}

FRESH_PROCESS = """
import json, sys
from plray.agents.qsource import load_qsource
src = load_qsource(sys.argv[1])
import numpy as np
obs = np.array({obs}); goals = np.array({goals})
out = src.q_values(obs, goals) if src.discrete else src.q(obs, goals, np.zeros((len(obs), src.task.action_dim)))
print(json.dumps({{"q": out.tolist(), "ray_imported": "ray" in sys.modules, "type": type(src).__name__}}))
"""


def _fresh_process(agent_dir, obs, goals) -> dict:
    code = FRESH_PROCESS.format(obs=obs, goals=goals)
    out = subprocess.run([sys.executable, "-c", code, str(agent_dir)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_dqn_trains_checkpoints_resumes_and_exports(ray_local, tmp_path) -> None:
    cfg = from_mapping(AgentConfig, TINY_DQN)
    run = tmp_path / "run"
    first = train(cfg, run, max_iterations=2, progress=False)
    assert not first["finished"] and first["iterations"] == 2
    latest = json.loads((run / "checkpoints" / "latest.json").read_text())
    assert latest["iteration"] == 2 and (run / "checkpoints" / latest["name"]).is_dir()

    # a changed configuration cannot silently resume someone else's run
    changed = from_mapping(AgentConfig, {**TINY_DQN, "seed": 4})
    with pytest.raises(ConfigError, match="different configuration"):
        train(changed, run, progress=False)

    second = train(cfg, run, progress=False)  # resumes from iteration 2
    assert second["finished"] and second["iterations"] > 2
    assert second["env_steps"] >= 3000 > first["env_steps"]
    progress = [json.loads(line) for line in (run / "progress.jsonl").read_text().splitlines()]
    assert [p["iteration"] for p in progress] == list(range(1, second["iterations"] + 1))
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["success_rate"] <= 1.0 and len(metrics["success_per_goal"]) == 4

    # the pickle-free artifact loads in a fresh process without Ray, and matches the checkpoint
    obs, goals = [[-0.5, 0.0], [0.3, 0.02]], [[0.6], [-1.2]]
    fresh = _fresh_process(run / "agent", obs, goals)
    assert fresh["type"] == "NetworkQSource" and not fresh["ray_imported"]
    ckpt = run / "checkpoints" / json.loads((run / "checkpoints" / "latest.json").read_text())["name"]
    from_ckpt = rllib_qsource(ckpt, load_qsource(run / "agent").task, 0.99, allow_pickle=True)
    np.testing.assert_allclose(
        from_ckpt.q_values(np.array(obs), np.array(goals)).numpy(), np.array(fresh["q"]), rtol=1e-5, atol=1e-6
    )


TINY_PQN = {
    "task": "reacher",
    "algorithm": "pqn",
    "seed": 5,
    "her": {"strategy": "future", "k": 2},
    "network": {"hiddens": [32, 32]},
    "training": {"total_env_steps": 1600, "num_envs": 16, "rollout_fragment_length": 25, "train_batch_size": 128},
    "checkpoint": {"every_iters": 1, "keep": 1},
    "evaluation": {"episodes_per_goal": 4},
}


def test_pqn_trains_learns_checkpoints_resumes_and_exports(ray_local, tmp_path) -> None:
    cfg = from_mapping(AgentConfig, TINY_PQN)
    run = tmp_path / "pqn"
    seen: list[dict] = []
    first = train(cfg, run, max_iterations=2, progress=False, on_iteration=lambda i, summary: seen.append(summary))
    assert first["iterations"] == 2 and not first["finished"]
    # one rollout of 16 envs x 25 steps per iteration (a few more where episodes ended and restarted)
    steps = [s["env_steps"] for s in seen]
    assert 400 <= steps[0] < 450 and 800 <= steps[1] < 900
    assert all(s["loss"] is not None and np.isfinite(s["loss"]) for s in seen)
    before = load_qsource(run / "agent")
    second = train(cfg, run, progress=False)
    assert second["finished"] and second["iterations"] == 4 and 1600 <= second["env_steps"] < 1800
    after = load_qsource(run / "agent")
    for line in (run / "progress.jsonl").read_text().splitlines():  # strict JSON: no NaN or Infinity
        json.loads(line, parse_constant=lambda name: pytest.fail(f"progress.jsonl holds {name}"))
    assert after.metadata["algorithm"] == "pqn" and after.metadata["network"]["sigmoid"]
    obs = np.array([[0.1, -0.2, 0.3, 0.0, 1.2, 0.4], [2.0, 1.0, -1.0, 0.5, -0.9, 1.1]])
    goals = np.array([[1.0, 0.0], [0.0, -1.0]])
    q_before, q_after = before.q_values(obs, goals), after.q_values(obs, goals)
    assert q_after.shape == (2, 9) and ((q_after > 0) & (q_after < 1)).all()
    assert not torch.allclose(q_before, q_after)  # the resumed run kept training
    fresh = _fresh_process(run / "agent", obs.tolist(), goals.tolist())
    assert fresh["type"] == "NetworkQSource" and not fresh["ray_imported"]
    np.testing.assert_allclose(np.array(fresh["q"]), q_after.numpy(), rtol=1e-5, atol=1e-6)
    ckpt = run / "checkpoints" / json.loads((run / "checkpoints" / "latest.json").read_text())["name"]
    from_ckpt = rllib_qsource(ckpt, after.task, 0.99, allow_pickle=True)
    np.testing.assert_allclose(from_ckpt.q_values(obs, goals).numpy(), q_after.numpy(), rtol=1e-5, atol=1e-6)


def test_pqn_same_seed_same_agent(ray_local, tmp_path) -> None:
    small = {**TINY_PQN, "training": {**TINY_PQN["training"], "total_env_steps": 800}}
    obs = np.array([[0.1, -0.2, 0.3, 0.0, 1.2, 0.4]])
    goals = np.array([[1.0, 0.0]])
    q = []
    for name in ("a", "b"):
        train(from_mapping(AgentConfig, small), tmp_path / name, progress=False)
        q.append(load_qsource(tmp_path / name / "agent").q_values(obs, goals))
    torch.testing.assert_close(q[0], q[1], rtol=0, atol=0)


def test_pqn_config_errors() -> None:
    with pytest.raises(ConfigError, match="radam is available for pqn only"):
        from_mapping(AgentConfig, {"task": "reacher", "training": {"optimizer": "radam"}})
    with pytest.raises(ConfigError, match="use sac"):
        from_mapping(AgentConfig, {"task": "mujoco-reacher", "algorithm": "pqn"})
    with pytest.raises(ConfigError, match="num_epochs"):
        from_mapping(AgentConfig, {"task": "reacher", "algorithm": "pqn", "training": {"num_epochs": 0}})


def test_continuous_reacher_takes_sac_only() -> None:
    from plray.agents.train import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "agents" / "reacher-continuous-sac.yaml")
    assert (cfg.task, cfg.algorithm) == ("reacher-continuous", "sac")
    with pytest.raises(ConfigError, match="use sac"):
        from_mapping(AgentConfig, {"task": "reacher-continuous", "algorithm": "pqn"})


def test_fourrooms_dqn_with_random_relabelling(ray_local, tmp_path) -> None:
    cfg = from_mapping(
        AgentConfig,
        {
            "task": "fourrooms",
            "task_kwargs": {"variant": "windy", "num_goals": 4, "goal_family": "generic"},
            "her": {"strategy": "random", "k": 2},
            "network": {"hiddens": [32], "sigmoid": False},
            "training": {"total_env_steps": 1500, "num_envs": 16, "learning_starts": 200, "train_batch_size": 48},
            "evaluation": {"episodes_per_goal": 4},
        },
    )
    metrics = train(cfg, tmp_path / "fr", progress=False)
    assert metrics["finished"]
    src = NetworkQSource.from_artifact(tmp_path / "fr" / "agent")
    assert src.task.goal_dim == 4 and src.gamma == 0.95


def test_sac_on_mujoco_reacher(ray_local, tmp_path) -> None:
    cfg = from_mapping(
        AgentConfig,
        {
            "task": "mujoco-reacher",
            "algorithm": "sac",
            "her": {"strategy": "future", "k": 3},
            "network": {"hiddens": [32, 32], "layernorm": False},
            "training": {
                "total_env_steps": 160,
                "num_envs": 4,
                "rollout_fragment_length": 1,
                "learning_starts": 64,
                "train_batch_size": 32,
            },
            "checkpoint": {"every_iters": 2},
            "evaluation": {"episodes_per_goal": 2},
        },
    )
    metrics = train(cfg, tmp_path / "sac", progress=False)
    assert metrics["finished"] and (tmp_path / "sac" / "checkpoints" / "latest.json").is_file()
    fresh = _fresh_process(tmp_path / "sac" / "agent", [[1, 1, 0, 0, 0, 0, 0.2, 0]], [[0.15, 0.0]])
    assert fresh["type"] == "SACQSource" and np.isfinite(fresh["q"]).all()
    src = load_qsource(tmp_path / "sac" / "agent")
    obs = torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.2, 0.0]], requires_grad=True)
    src.v(obs, torch.tensor([[0.15, 0.0]])).sum().backward()
    assert obs.grad is not None and obs.grad.abs().sum() > 0
