"""Reacher goal sets as sweep dimensions: schema checks without Ray, and a tiny two-goal-set sweep
through ``plray run`` that trains, inverts, records the goal sets and resumes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from plray.core.model_io import load_world_model
from plray.envs.reacher import FAR_FINGERTIP, GOAL_TOLERANCE, REACHER_UNSEEN_TOLERANCE
from plray.experiments.continuous_task import reacher_goal_spec
from plray.experiments.pipeline import run_experiment
from plray.experiments.schema import experiment_from_mapping, load_experiment
from plray.utils.schema import ConfigError

CONFIGS = Path(__file__).parents[2] / "configs" / "experiments"


def _reacher(**over):
    base = {
        "name": "r",
        "task": "reacher",
        "sweep": [{"variant": ["none"], "num_goals": [4], "placement": ["paper"]}],
        "goals": {"family": "fingertip", "placement": "paper"},
        "agent": {"kind": "rllib", "rllib": {"config": "", "overrides": {}}},
        "extraction": {"methods": ["deterministic"]},
    }
    return experiment_from_mapping(base | over)


def test_goal_set_dimensions_become_goal_set_specs() -> None:
    cfg = _reacher(
        sweep=[{"variant": ["none"], "num_goals": [8, 16], "placement": ["spread", "random", "distribution"]}],
        goals={"family": "fingertip", "placement": "spread", "radius": 1.5},
    )
    specs = {c.key: reacher_goal_spec(cfg, c) for c in cfg.cells()}
    assert len(specs) == 6
    assert specs["none-g8-fingertip-spread-s0"] == {
        "kind": "fingertip",
        "seed": 0,
        "placement": "spread",
        "count": 8,
        "radius": 1.5,
    }
    dist = specs["none-g16-fingertip-distribution-s0"]
    assert dist["count"] == 16 and dist["distribution"] == {"shape": "annulus", "inner": 0.0, "outer": 2.0}


@pytest.mark.parametrize(
    ("over", "says"),
    [
        ({"sweep": [{"variant": ["none"], "num_goals": [8], "placement": ["paper"]}]}, "none-g8-fingertip-paper-s0"),
        ({"sweep": [{"variant": ["none"], "num_goals": [4], "placement": ["windy"]}]}, "placement"),
        ({"goals": {"family": "sparse", "placement": "paper"}}, "goals.family"),
        (
            {"sweep": [{"variant": ["none"], "num_goals": [4], "goal_family": ["angle"], "placement": ["paper"]}]},
            "angle",
        ),
        # a ring of radius 2 passes through the far-fingertip unseen goal (√2, √2): refused
        (
            {
                "sweep": [{"variant": ["none"], "num_goals": [8], "placement": ["spread"]}],
                "goals": {"family": "fingertip", "placement": "spread", "radius": 2.0},
            },
            "far_fingertip",
        ),
    ],
)
def test_bad_goal_sets_are_config_errors_naming_the_field(over, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        _reacher(**over)


def test_random_and_distribution_sets_keep_the_unseen_goal_out() -> None:
    from plray.envs.registry import make_task

    cfg = _reacher(sweep=[{"variant": ["none"], "num_goals": [64], "placement": ["random", "distribution"]}])
    for cell in cfg.cells():
        task = make_task("reacher", goals=reacher_goal_spec(cfg, cell))
        gap = np.linalg.norm(task.training_goals - np.asarray(FAR_FINGERTIP), axis=1)
        assert len(task.training_goals) == 64
        assert gap.min() >= GOAL_TOLERANCE + REACHER_UNSEEN_TOLERANCE - 1e-9, (cell.key, gap.min())


@pytest.mark.ray
def test_two_goal_sets_run_end_to_end_and_resume(ray_local, tmp_path: Path) -> None:
    cfg = load_experiment(CONFIGS / "reacher-tiny.yaml")
    lines: list[str] = []
    summary = run_experiment(cfg, tmp_path / "run", base_dir=CONFIGS, say=lines.append)
    assert summary.ok, summary.failures
    agents = pq.read_table(summary.results_dir / "agents.parquet").to_pylist()
    jobs = pq.read_table(summary.results_dir / "extractions.parquet").to_pylist()
    assert sorted(a["cell"] for a in agents) == ["none-g3-fingertip-distribution-s0", "none-g4-fingertip-paper-s0"]
    for j in jobs:
        _, manifest = load_world_model(j["world_model"])
        assert len(manifest["goals"]) == j["num_goals"]  # P-learning used the agent's own goal set
        assert set(json.loads(j["unseen"])) == {"far_fingertip", "target_angle", "target_velocity"}
    table = (summary.results_dir / "results.md").read_text()
    assert "placement" in table and "distribution" in table  # the swept dimension is a column
    stored = load_experiment(tmp_path / "run" / "config.yaml")
    again = run_experiment(stored, tmp_path / "run", base_dir=tmp_path, say=lines.append)
    assert (again.agents, again.extractions) == (2, 2)
    assert "all 2 agents already trained" in "\n".join(lines)
