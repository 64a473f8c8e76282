"""Reacher goal sets as sweep dimensions: schema checks without Ray, and a tiny two-goal-set sweep
through ``plray run`` that trains, inverts, records the goal sets and resumes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def _run(tmp_path: Path, config: str) -> tuple[Any, list[str]]:
    """Run a shipped tiny config into ``tmp_path/run``; (its summary, the progress lines)."""
    lines: list[str] = []
    summary = run_experiment(load_experiment(CONFIGS / config), tmp_path / "run", base_dir=CONFIGS, say=lines.append)
    assert summary.ok, summary.failures
    return summary, lines


def _resume(tmp_path: Path, lines: list[str], agents: int) -> None:
    """Run the stored config again: every agent and extraction is kept, none trained again."""
    stored = load_experiment(tmp_path / "run" / "config.yaml")
    again = run_experiment(stored, tmp_path / "run", base_dir=tmp_path, say=lines.append)
    assert (again.agents, again.extractions) == (agents, agents)
    assert f"all {agents} agents already trained" in "\n".join(lines)


@pytest.mark.ray
def test_two_goal_sets_run_end_to_end_and_resume(ray_local, tmp_path: Path) -> None:
    summary, lines = _run(tmp_path, "reacher-tiny.yaml")
    agents = pq.read_table(summary.results_dir / "agents.parquet").to_pylist()
    jobs = pq.read_table(summary.results_dir / "extractions.parquet").to_pylist()
    assert sorted(a["cell"] for a in agents) == ["none-g3-fingertip-distribution-s0", "none-g4-fingertip-paper-s0"]
    for j in jobs:
        _, manifest = load_world_model(j["world_model"])
        assert len(manifest["goals"]) == j["num_goals"]  # P-learning used the agent's own goal set
        assert set(json.loads(j["unseen"])) == {"far_fingertip", "target_angle", "target_velocity"}
    table = (summary.results_dir / "results.md").read_text()
    assert "placement" in table and "distribution" in table  # the swept dimension is a column
    _resume(tmp_path, lines, 2)


# ---------------------------------------------------------------------- mixtures
def test_mixture_cells_become_mixture_specs() -> None:
    cfg = _reacher(
        sweep=[
            {"variant": ["none"], "mixture": ["fingertip16+angle4", "fingertip-paper4+angle-random2"]},
            {"variant": ["none"], "num_goals": [4], "placement": ["paper"]},
        ],
        seeds=[0, 3],
    )
    cells = {c.key: c for c in cfg.cells()}
    assert sorted(cells) == [
        "none-g20-mixture-fingertip16+angle4-s0",
        "none-g20-mixture-fingertip16+angle4-s3",
        "none-g4-fingertip-paper-s0",
        "none-g4-fingertip-paper-s3",
        "none-g6-mixture-fingertip-paper4+angle-random2-s0",
        "none-g6-mixture-fingertip-paper4+angle-random2-s3",
    ]
    cell = cells["none-g20-mixture-fingertip16+angle4-s3"]
    assert (cell.goal_family, cell.placement, cell.num_goals) == ("mixture", "fingertip16+angle4", 20)
    spec = reacher_goal_spec(cfg, cell)
    assert spec == {
        "kind": "mixture",
        "parts": [
            {"kind": "fingertip", "placement": "spread", "count": 16, "seed": 3},
            {"kind": "angle", "placement": "spread", "count": 4, "seed": 3},
        ],
    }
    from plray.envs.goalsets import task_goal_set_label
    from plray.envs.registry import make_task

    assert task_goal_set_label(make_task("reacher", goals=spec)) == cell.placement  # the label is the cell's
    # the shipped sweep holds the mixture cell
    shipped = load_experiment(CONFIGS / "reacher-goals.yaml")
    assert "none-g20-mixture-fingertip16+angle4-s0" in {c.key for c in shipped.cells()}


@pytest.mark.parametrize(
    ("grid", "says"),
    [
        ({"mixture": ["fingertip16+angle4"], "placement": ["spread"]}, "takes no goal_family or placement"),
        ({"mixture": ["fingertip16+angle4"], "num_goals": [16]}, "has 20 goals, not one of num_goals"),
        ({"mixture": ["fingertip16+angle"]}, r"sweep\[0\].mixture\[0\]: mixture: part 'angle'"),
        ({"mixture": []}, "at least one mixture label"),
        ({"mixture": ["fingertip60+angle8"]}, "more than 64"),
        ({"mixture": ["fingertip16+velocity4"]}, "no 'velocity' goals"),
        ({"mixture": ["fingertip16+fingertip-random4"]}, "at least two goal kinds"),
        ({"num_goals": [4], "goal_family": ["mixture"]}, "a mixture is a sweep\\[\\].mixture label"),
    ],
)
def test_bad_mixture_cells_are_config_errors(grid: dict, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        _reacher(sweep=[{"variant": ["none"], **grid}])


def test_mixtures_need_a_task_that_takes_them() -> None:
    cfg = {
        "name": "m",
        "task": "mountaincar-position",
        "sweep": [{"variant": ["none"], "mixture": ["position2+velocity2"]}],
        "goals": {"family": "sparse", "placement": "spread"},
        "agent": {"kind": "rllib", "rllib": {"config": "", "overrides": {}}},
        "extraction": {"methods": ["deterministic"]},
    }
    with pytest.raises(ConfigError, match="mountaincar-position takes no goal mixtures"):
        experiment_from_mapping(cfg)


@pytest.mark.ray
def test_mixture_runs_end_to_end_records_its_goals_and_resumes(ray_local, tmp_path: Path) -> None:
    from plray.agents.export import load_agent
    from plray.experiments.rundir import RunLayout

    summary, lines = _run(tmp_path, "reacher-mixture-tiny.yaml")
    key = "none-g20-mixture-fingertip16+angle4-s0"
    agents = pq.read_table(summary.results_dir / "agents.parquet").to_pylist()
    assert [a["cell"] for a in agents] == [key]
    agent = RunLayout(tmp_path / "run").agent_dir(key, None)
    agent_manifest = agent / "manifest.json"
    manifest, _ = load_agent(agent)
    assert manifest["goal_kind"] == "mixture" and manifest["mixture_kinds"] == ["fingertip", "angle"]
    assert manifest["goal_set"]["parts"][1] == {"kind": "angle", "placement": "spread", "seed": 0, "count": 4}
    goals = np.array(manifest["training_goals"])
    assert goals.shape == (20, 4) and manifest["unseen_overlap"] == []
    np.testing.assert_array_equal(goals[:, 2:].sum(0), [16, 4])
    jobs = pq.read_table(summary.results_dir / "extractions.parquet").to_pylist()
    assert len(jobs) == 1
    _, wm = load_world_model(jobs[0]["world_model"])
    np.testing.assert_allclose(wm["goals"], goals)  # P-learning used the agent's mixture goals
    assert set(json.loads(jobs[0]["unseen"])) == {"far_fingertip", "target_angle", "target_velocity"}
    assert np.isfinite(jobs[0]["wm_nmse"])
    written = {p: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*") if p.is_file() and "models" in p.parts}
    written[agent_manifest] = agent_manifest.stat().st_mtime_ns
    _resume(tmp_path, lines, 1)
    assert {p: p.stat().st_mtime_ns for p in written} == written  # no agent or world model written again
