"""The run-directory layout has one owner (RunLayout), keeps the on-disk names of earlier runs, and
the "different config in this folder" rule has one owner (plray.utils.stored_config)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from plray.experiments.jobs import ExtractionJob
from plray.experiments.rundir import RunDir, RunLayout, skip_checkpoints
from plray.experiments.schema import Cell, experiment_from_mapping
from plray.utils.schema import ConfigError
from plray.utils.stored_config import check_stored_config, write_stored_config

CELL = Cell("windy", 4, "generic", "random", 0)


def test_layout_keeps_the_names_runs_have_on_disk(tmp_path: Path) -> None:
    run = RunLayout(tmp_path)
    key = CELL.key
    assert run.config_file == tmp_path / "config.yaml"
    assert run.cell_result(key) == tmp_path / "agents" / key / "result.json"
    assert run.agent_dir(key) == tmp_path / "agents" / key / "agent"
    assert (
        run.agent_dir(key, 5000) == run.snapshot_dir(key, 5000) == tmp_path / "agents" / key / "snapshots" / "step-5000"
    )
    job = ExtractionJob(CELL, "sampled", goals=2)
    assert run.job_result(job.key) == tmp_path / "extractions" / job.key / "result.json"
    assert run.job_checkpoint(job.key) == tmp_path / "extractions" / job.key / "checkpoint.npz"
    assert run.model_dir(job.key) == tmp_path / "models" / job.key
    assert run.ensemble_dir(job.ensemble_key) == tmp_path / "models" / f"{job.ensemble_key}--ensemble"
    assert (run.tune_dir, run.results_dir) == (tmp_path / "tune", tmp_path / "results")
    assert run.rel(run.cell_dir(key)) == f"agents/{key}"


def test_jobs_and_run_dirs_take_their_paths_from_the_layout(tmp_path: Path) -> None:
    store = RunDir(tmp_path / "run")
    layout = store.layout
    job = ExtractionJob(CELL, "closed-form", step=100)
    assert job.out_dir(store.local) == layout.job_dir(job.key)
    assert job.agent_dir(store.local) == layout.agent_dir(CELL.key, 100)
    assert job.model_dir(store.local) == layout.model_dir(job.key)
    assert store.tune_storage() == (str(layout.tune_dir), None)
    assert skip_checkpoints(f"agents/{CELL.key}/checkpoints/iter_1/x") and not skip_checkpoints("agents/c/agent/x")
    assert RunLayout.is_tune_state("tune/train/state.json") and not RunLayout.is_tune_state("agents/tune/x")


def _cfg(**over):
    base = {"name": "cfg", "sweep": [{"variant": ["windy"], "num_goals": [2]}], "agent": {"kind": "exact"}}
    return experiment_from_mapping(base | over)


def test_a_stored_config_refuses_another_and_accepts_itself(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    cfg = _cfg()
    assert not check_stored_config(path, cfg, different="other")
    write_stored_config(path, cfg)
    assert check_stored_config(path, cfg, different="other")
    with pytest.raises(ConfigError, match="^other$"):
        check_stored_config(path, replace(cfg, seeds=[3]), different="other")
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="config.yaml: unreadable here"):
        check_stored_config(path, cfg, different="other", unreadable="unreadable here")
    with pytest.raises(Exception, match="flow sequence"):  # no wrapping asked: the reader's own error
        check_stored_config(path, cfg, different="other")
