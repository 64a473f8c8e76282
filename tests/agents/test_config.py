import pytest

from plray.agents.config import AgentConfig
from plray.agents.train import load_config
from plray.utils.schema import ConfigError, from_mapping


def test_defaults_and_shipped_configs_load() -> None:
    cfg = from_mapping(AgentConfig, {"task": "mountaincar-position"})
    assert cfg.algorithm == "dqn" and cfg.her.k == 4 and cfg.run_name == "mountaincar-position"
    from pathlib import Path

    shipped = sorted(Path("configs/agents").glob("*.yaml"))
    assert shipped, "configs/agents ships agent configs"
    for path in shipped:
        load_config(path)
    assert load_config("configs/agents/mountaincar-position.yaml").training.start_states == "uniform"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "task: required field is missing"),
        ({"task": "cartpole"}, "task: unknown task 'cartpole'; choose one of"),
        ({"task": "reacher", "training": {"lr": "fast"}}, "training.lr: expected a number, got 'fast'"),
        ({"task": "reacher", "training": {"lr": -1.0}}, "training.lr: must be > 0"),
        ({"task": "reacher", "trainng": {}}, "trainng: unknown field; allowed fields here: task"),
        ({"task": "reacher", "her": {"strategy": "later"}}, "her.strategy: unknown strategy 'later'"),
        ({"task": "reacher", "algorithm": "ppo"}, "algorithm: 'ppo' is not allowed; choose one of dqn, pqn, sac"),
        ({"task": "reacher", "algorithm": "sac"}, "discrete actions; use dqn"),
        ({"task": "mujoco-reacher"}, "continuous actions; use sac"),
        ({"task": "reacher", "gamma": 1.5}, "gamma: must lie in the open interval"),
        ({"task": "reacher", "network": {"hiddens": []}}, "network.hiddens"),
        ({"task": "reacher", "network": {"input_dims": [0, 9]}}, "network.input_dims"),
        ({"task": "reacher", "network": {"layernorm": "yes"}}, "network.layernorm: expected true or false"),
        ({"task": "fourrooms", "task_kwargs": {"num_goals": 4}}, "use the 'random' relabelling strategy"),
        ({"task": "fourrooms", "task_kwargs": {"colour": "red"}}, "task_kwargs"),
        ({"task": "reacher", "training": {"train_batch_size": 3}}, "at least her.k + 1"),
        ({"task": "reacher", "training": {"start_states": "edge"}}, "training.start_states: 'edge' is not allowed"),
    ],
)
def test_bad_configs_name_the_field(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        from_mapping(AgentConfig, data)
    assert message in str(exc.value)


def test_yaml_errors(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(bad)


def test_start_states_reach_the_training_env() -> None:
    from plray.agents.train import algorithm_config
    from plray.envs.base import GoalVectorEnv
    from plray.envs.registry import make_env

    cfg = from_mapping(AgentConfig, {"task": "mountaincar-position", "training": {"start_states": "uniform"}})
    env_config = dict(algorithm_config(cfg).env_config)
    assert env_config["start_states"] == "uniform"
    env = make_env({**env_config, "num_envs": 3})
    assert isinstance(env, GoalVectorEnv) and env.start_states == "uniform"
