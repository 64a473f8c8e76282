"""Continuous-action agents through ``plray run``: SAC on reacher-continuous, P-learning with V from the
policy, WM errors on sampled torques, unseen goals planned on the 9-torque subset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from plray.core.model_io import load_world_model
from plray.experiments.pipeline import run_experiment
from plray.experiments.schema import load_experiment
from plray.experiments.tasks import PIPELINES

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "experiments"

needs_pipeline = pytest.mark.skipif(
    "reacher-continuous" not in PIPELINES,
    reason="plray/experiments/tasks.py has no 'reacher-continuous' entry yet (ReacherPipeline())",
)


def test_extraction_defaults_and_metrics_for_continuous_actions(tmp_path: Path) -> None:
    """The supervised reference on reacher-continuous: WM errors on sampled torques and the 9 planning ones."""
    from plray.experiments.extraction import ExtractionConfig, run_evaluation, run_extraction

    cfg = ExtractionConfig(task="reacher-continuous", method="supervised", p_learning={"steps": 30, "batch_size": 64})
    summary = run_extraction(cfg, tmp_path / "x")
    _, manifest = load_world_model(tmp_path / "x" / "world_model")
    metrics = manifest["metrics"]
    assert summary["wm_nmse"] == metrics["obs"]["wm_nmse"]  # the Reacher's headline space
    assert np.asarray(metrics["evaluation_actions"]).shape == (16, 2)
    assert len(metrics["state_planning_actions"]["per_dim_nmse"]) == 4
    ev = run_evaluation(tmp_path / "x" / "world_model", tmp_path / "ev", resolution=4, num_starts=8, eval_states=64)
    assert [r["goal"] for r in ev["unseen"]] == ["far_fingertip", "target_angle", "target_velocity"]
    assert "9 actions" in ev["unseen_planning"] and (tmp_path / "ev" / "error_heatmap.png").is_file()


@pytest.mark.ray
@pytest.mark.slow
@needs_pipeline
def test_sac_agent_runs_end_to_end(ray_local, tmp_path: Path) -> None:
    cfg = load_experiment(CONFIGS / "reacher-continuous-tiny.yaml")
    summary = run_experiment(cfg, tmp_path / "run", base_dir=CONFIGS, say=lambda _: None)
    assert summary.ok, summary.failures
    agents = pq.read_table(summary.results_dir / "agents.parquet").to_pylist()
    (job,) = pq.read_table(summary.results_dir / "extractions.parquet").to_pylist()
    assert [a["cell"] for a in agents] == ["none-g4-fingertip-paper-s0"]
    model, manifest = load_world_model(job["world_model"])
    assert manifest["task"] == "reacher-continuous" and len(manifest["goals"]) == 4
    assert np.isfinite(model.predict(np.zeros((2, 4)), np.array([[0.5, -1.0], [0.0, 0.2]]))).all()
    assert set(json.loads(job["unseen"])) == {"far_fingertip", "target_angle", "target_velocity"}
    agent_manifest = json.loads((Path(manifest["source"]["agent"]) / "manifest.json").read_text())
    assert agent_manifest["algorithm"] == "sac" and agent_manifest["value_mode"] == "soft"
