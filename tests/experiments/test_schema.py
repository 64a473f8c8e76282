"""The experiment schema: shipped configs validate, bad ones fail naming the field and the choices."""

from pathlib import Path

import pytest
import yaml

from plray.experiments.schema import ExperimentConfig, experiment_from_mapping, load_experiment
from plray.utils.schema import ConfigError

CONFIGS = sorted((Path(__file__).parents[2] / "configs" / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_validate(path: Path) -> None:
    cfg = load_experiment(path)
    assert cfg.cells(), "an experiment with no cells"


def test_shipped_configs_include_the_paper_study() -> None:
    assert {"demo", "tiny", "fourrooms-study", "mountaincar-goals"} <= {p.stem for p in CONFIGS}
    study = load_experiment(CONFIGS[[p.stem for p in CONFIGS].index("fourrooms-study")])
    counts = {
        v: sorted({c.num_goals for c in study.cells() if c.variant == v})
        for v in ("deterministic", "windy", "teleport")
    }
    assert counts == {"deterministic": [1, 3, 5], "windy": [1, 2, 3, 4], "teleport": [5, 10, 20, 68]}


def test_cells_are_the_union_of_grids_times_seeds() -> None:
    cfg = experiment_from_mapping(
        {
            "name": "x",
            "sweep": [
                {"variant": ["windy", "teleport"], "num_goals": [1, 2]},
                {"variant": ["windy"], "num_goals": [2, 3], "goal_family": ["generic", "gaussian"]},
            ],
            "seeds": [0, 1],
        }
    )
    keys = [c.key for c in cfg.cells()]
    assert len(keys) == len(set(keys)) == (4 + 4 - 1) * 2  # windy-g2-generic is in both grids: counted once
    assert "windy-g3-gaussian-random-s1" in keys and "teleport-g1-generic-random-s0" in keys
    assert cfg.cells()[0].group == "windy-g1-generic-random"


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"task": "cartpole"}, r"task: 'cartpole' is not supported; choose one of fourrooms, mountaincar-position"),
        (
            {"sweep": [{"variant": ["stormy"]}]},
            r"sweep\[0\]\.variant\[0\]: 'stormy' is not allowed.*deterministic, windy, teleport",
        ),
        ({"sweep": [{"num_goals": [0]}]}, r"sweep\[0\]\.num_goals\[0\]: must be between 1 and 68"),
        ({"sweep": [{"goal_family": ["dense"]}]}, r"sweep\[0\]\.goal_family\[0\]: 'dense' is not allowed.*generic"),
        ({"sweep": [{"placement": ["corner"]}]}, r"sweep\[0\]\.placement\[0\].*random, spread"),
        ({"sweep": []}, r"sweep: must hold at least one grid"),
        ({"seeds": [1, 1]}, r"seeds: must be distinct"),
        (
            {"agent": {"kind": "rllib"}},
            r"agent.kind: 'rllib' is not available for fourrooms; choose one of tabular-q, exact",
        ),
        ({"agent": {"kind": "ppo"}}, r"agent.kind: 'ppo' is not allowed; choose one of tabular-q, exact, rllib"),
        ({"agent": {"tabular": {"env_steps": -5}}}, r"agent.tabular.env_steps: must be > 0"),
        ({"agent": {"tabular": {"options": {"warp": 9}}}}, r"agent.tabular.options.warp: unknown field"),
        (
            {"extraction": {"methods": ["deterministic"]}},
            r"extraction.methods\[0\]: 'deterministic' is not available for fourrooms",
        ),
        ({"extraction": {"methods": []}}, r"extraction.methods: must list at least one"),
        (
            {"extraction": {"method": ["closed-form"]}},
            r"extraction.method: unknown field.*allowed fields here: methods",
        ),
        ({"agent": {"tabular": {"by_variant": {"stormy": {}}}}}, r"agent.tabular.by_variant.stormy: unknown variant"),
        ({"agent": {"tabular": {"by_variant": {"windy": {"lr_power": "x"}}}}}, r"agent.tabular.by_variant.windy"),
        ({"agent": {"tabular": {"by_variant": {"windy": {"warp": 1}}}}}, r"by_variant.windy.warp: unknown field"),
        ({"extraction": {"goal_subsets": [0]}}, r"extraction.goal_subsets: must be integers >= 1"),
        ({"agent": {"kind": "exact"}, "extraction": {"checkpoints": [10]}}, r"extraction.checkpoints: only tabular-q"),
        ({"resources": {"num_actors": 0}}, r"resources.num_actors: must be > 0"),
        ({"gamma": 1.5}, r"gamma: must lie in \(0, 1\)"),
        ({"name": "a b"}, r"name: 'a b' must be"),
        ({"evaluation": {"within": "5%"}}, r"evaluation.within: expected a number, got '5%'"),
    ],
)
def test_bad_configs_name_the_field(patch: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        experiment_from_mapping({"name": "x", **patch})


def test_continuous_tasks_take_their_own_choices() -> None:
    base = {"name": "mc", "task": "mountaincar-position", "goals": {"family": "sparse"}, "agent": {"kind": "rllib"}}
    cfg = experiment_from_mapping(
        {**base, "sweep": [{"variant": ["none"], "num_goals": [1, 2]}], "extraction": {"methods": ["deterministic"]}}
    )
    assert [c.key for c in cfg.cells()] == ["none-g1-sparse-random-s0", "none-g2-sparse-random-s0"]
    with pytest.raises(ConfigError, match=r"extraction.methods\[0\]: 'closed-form' is not available"):
        experiment_from_mapping({**base, "sweep": [{"variant": ["none"]}]})
    with pytest.raises(ConfigError, match=r"extraction.neural.width: unknown field"):
        experiment_from_mapping(
            {
                **base,
                "sweep": [{"variant": ["none"]}],
                "extraction": {"methods": ["deterministic"], "neural": {"width": 3}},
            }
        )


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "seeds": "zero"}))
    with pytest.raises(ConfigError, match=r"bad.yaml: seeds: expected a list"):
        load_experiment(bad)
    (tmp_path / "broken.yaml").write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_experiment(tmp_path / "broken.yaml")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_experiment(tmp_path / "missing.yaml")


def test_default_config_is_valid() -> None:
    assert ExperimentConfig(name="x").validate().cells()[0].key == "deterministic-g4-generic-random-s0"


def test_rllib_agent_config_is_embedded_into_the_experiment(tmp_path: Path) -> None:
    from plray.experiments.jobs import embed_agent_config, rllib_agent_config

    base = {
        "name": "mc",
        "task": "mountaincar-position",
        "goals": {"family": "sparse"},
        "sweep": [{"variant": ["none"], "num_goals": [2]}],
        "extraction": {"methods": ["deterministic"]},
    }
    cfg = experiment_from_mapping(
        base
        | {
            "agent": {
                "kind": "rllib",
                "rllib": {
                    "config": "../agents/mountaincar-position.yaml",
                    "overrides": {"training": {"total_env_steps": 1000}},
                },
            }
        }
    )
    embedded = embed_agent_config(cfg, CONFIGS[0].parent)
    assert embedded.agent.rllib.config == ""
    agent = rllib_agent_config(embedded, embedded.cells()[0])
    assert agent.training.total_env_steps == 1000 and agent.training.num_envs == 128  # override + file
    assert agent.task_kwargs == {"num_goals": 2, "placement": "random", "seed": 0}
    with pytest.raises(ConfigError, match="agent.rllib.config: cannot read"):
        embed_agent_config(cfg, tmp_path)
    with pytest.raises(ConfigError, match="must be embedded"):
        rllib_agent_config(cfg, cfg.cells()[0])
