"""The MuJoCo Reacher through ``plray run``: SAC on ``mujoco-reacher`` and PQN on its 9-control
counterpart ``mujoco-reacher-discrete``, P-learning, WM errors against MuJoCo's own dynamics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from plray.core.model_io import load_world_model
from plray.experiments.pipeline import run_experiment
from plray.experiments.schema import load_experiment
from plray.utils.schema import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "experiments"


@pytest.mark.parametrize("name", ["mujoco-reacher-sac", "mujoco-reacher-pqn"])
def test_shipped_configs_validate(name: str) -> None:
    cfg = load_experiment(CONFIGS / f"{name}.yaml")
    assert [c.key for c in cfg.cells()] == ["none-g4-fingertip-paper-s0"] and not cfg.evaluation.unseen


def test_the_task_has_no_unseen_goals_and_four_goals_only(tmp_path: Path) -> None:
    text = (CONFIGS / "mujoco-reacher-tiny.yaml").read_text()
    bad = tmp_path / "unseen.yaml"
    bad.write_text(text.replace("evaluation: {unseen: false}", "evaluation: {unseen: true}"))
    with pytest.raises(ConfigError, match="evaluation.unseen: mujoco-reacher has no unseen goals"):
        load_experiment(bad)
    bad.write_text(text.replace("num_goals: [4]", "num_goals: [8]"))
    with pytest.raises(ConfigError, match="num_goals"):
        load_experiment(bad)
    bad.write_text(text.replace("placement: [paper]", "placement: [spread]"))
    with pytest.raises(ConfigError, match="placement"):
        load_experiment(bad)


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize(
    ("config", "task", "algorithm"),
    [
        ("mujoco-reacher-tiny", "mujoco-reacher", "sac"),
        ("mujoco-reacher-discrete-tiny", "mujoco-reacher-discrete", "pqn"),
    ],
)
def test_agent_runs_end_to_end(ray_local, tmp_path: Path, config: str, task: str, algorithm: str) -> None:
    cfg = load_experiment(CONFIGS / f"{config}.yaml")
    summary = run_experiment(cfg, tmp_path / "run", base_dir=CONFIGS, say=lambda _: None)
    assert summary.ok, summary.failures
    (job,) = pq.read_table(summary.results_dir / "extractions.parquet").to_pylist()
    model, manifest = load_world_model(job["world_model"])
    assert manifest["task"] == task and len(manifest["goals"]) == 4
    assert np.isfinite(job["wm_nmse"]) and job["wm_nmse"] > 0
    actions = np.array([[0.5, -1.0], [0.0, 0.2]]) if algorithm == "sac" else np.array([0, 8])
    assert np.isfinite(model.predict(np.zeros((2, 4)), actions)).all()
    agent_manifest = json.loads((Path(manifest["source"]["agent"]) / "manifest.json").read_text())
    assert agent_manifest["algorithm"] == algorithm and agent_manifest["task"] == task
