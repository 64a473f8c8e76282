"""Every task the schema accepts has a pipeline with the whole contract, and the schema's
vocabulary is the pipelines'; FourRooms' `plray fourrooms` and `plray run` share one extraction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plray.experiments.jobs import ExtractionJob, SourceCache, train_cell
from plray.experiments.rundir import RunLayout
from plray.experiments.schema import TASKS, experiment_from_mapping
from plray.experiments.taskapi import Extraction
from plray.experiments.tasks import PIPELINES, pipeline_for
from plray.utils.schema import ConfigError

CONTRACT = ("check", "final_env_steps", "train", "extract", "ensemble")
VOCABULARY = ("variants", "goal_families", "agent_kinds", "methods", "max_goals", "goal_subsets", "error_metric")


@pytest.mark.parametrize("task", TASKS)
def test_every_schema_task_has_a_whole_pipeline(task: str) -> None:
    pipe = pipeline_for(task)
    assert all(callable(getattr(pipe, name)) for name in CONTRACT)
    assert all(getattr(pipe, name) is not None for name in VOCABULARY)
    assert tuple(PIPELINES) == TASKS


def test_the_schema_checks_against_the_task_vocabulary() -> None:
    with pytest.raises(ConfigError, match="choose one of none"):
        experiment_from_mapping({"name": "x", "task": "mountaincar-position", "sweep": [{"variant": ["windy"]}]})
    with pytest.raises(KeyError, match="no experiment pipeline"):
        pipeline_for("nowhere")


def test_tabular_extraction_returns_model_manifest_and_metrics(tmp_path: Path) -> None:
    cfg = experiment_from_mapping(
        {
            "name": "t",
            "sweep": [{"variant": ["windy"], "num_goals": [4]}],
            "agent": {"kind": "exact"},
            "extraction": {"methods": ["closed-form"]},
        }
    )
    (cell,) = cfg.cells()
    train_cell(cfg, cell, tmp_path)
    out = pipeline_for(cfg.task).extract(cfg, ExtractionJob(cell, "closed-form"), RunLayout(tmp_path), SourceCache())
    assert isinstance(out, Extraction)
    assert out.model.kernel().shape == (68, 4, 68)
    assert out.manifest["metrics"]["tv_mean"] == pytest.approx(out.metrics["tv_mean"])
    assert {"return_wm", "return_opt", "unseen"} <= set(out.metrics)
    assert np.allclose(out.model.kernel().sum(axis=-1), 1.0)
