"""The extraction pipeline end to end, sized to seconds: extract → artifact → evaluate → report."""

import json

import numpy as np
import pytest

from plray.cli import main
from plray.core.model_io import load_world_model
from plray.experiments.extraction import ExtractionConfig, run_extraction
from plray.utils.schema import ConfigError


def test_extract_and_evaluate_mountaincar_from_the_oracle(tmp_path, capsys) -> None:
    out = tmp_path / "ex"
    rc = main(
        [
            "extract",
            "--task",
            "mountaincar-position",
            "--oracle-resolution",
            "40",
            "--steps",
            "200",
            "--batch-size",
            "256",
            "--lr",
            "0.002",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["wm_nmse"] < 0.1, "even a short run learns most of the dynamics"
    model, manifest = load_world_model(out / "world_model")
    assert manifest["task"] == "mountaincar-position" and manifest["source"]["agent"] == "oracle"
    assert model.config.input_low == (-1.2, -0.07), "states are rescaled over the box by default"
    assert manifest["goals"] == [[-1.2], [-0.6], [0.0], [0.6]]
    assert "![quiver.png](quiver.png)" in (out / "report.md").read_text()
    assert (out / "quiver.png").stat().st_size > 1000
    s = np.array([[-0.5, 0.01]])
    assert model.predict(s, np.array([2])).shape == (1, 2)

    rc = main(["evaluate", str(out / "world_model"), "--resolution", "40", "--starts", "32"])
    assert rc == 0
    result = json.loads((out / "evaluation" / "evaluation.json").read_text())
    goals = {u["goal"] for u in result["unseen"]}
    assert goals == {"fast_car", "gentle_car", "shortest_path"}
    for u in result["unseen"]:
        assert np.isfinite(u["return_wm"]) and np.isfinite(u["return_opt"])


def test_extract_with_raw_inputs(tmp_path, capsys) -> None:
    out = tmp_path / "raw"
    args = ["extract", "--task", "mountaincar-velocity", "--oracle-resolution", "30", "--steps", "20"]
    assert main([*args, "--batch-size", "64", "--raw-inputs", "--out", str(out), "--quiet"]) == 0
    model, manifest = load_world_model(out / "world_model")
    assert model.config.input_low is None and manifest["model"]["config"]["lr"] == 1e-3


def test_supervised_reference_and_config_errors(tmp_path) -> None:
    s = run_extraction(
        ExtractionConfig(task="reacher", method="supervised", p_learning={"steps": 100, "batch_size": 128}),
        tmp_path / "sup",
    )
    assert s["wm_nmse"] < 1.0 and (tmp_path / "sup" / "rollouts.png").is_file()
    with pytest.raises(ConfigError, match="extraction supports"):
        ExtractionConfig(task="fourrooms").validate()
    with pytest.raises(ConfigError, match="p_learning.stepz: unknown field"):
        ExtractionConfig(task="reacher", p_learning={"stepz": 3}).validate()
    with pytest.raises(ConfigError, match="p_learning"):
        ExtractionConfig(task="reacher", p_learning={"lr": -1.0}).validate()
    with pytest.raises(ConfigError, match="estimator: unknown 'two'"):
        ExtractionConfig(task="reacher", method="gaussian", estimator="two").validate()  # type: ignore[arg-type]


def test_agent_of_another_task_is_refused(tmp_path) -> None:
    from tests.agents.test_qsource import _write_artifact

    _, _, agent = _write_artifact(tmp_path, "mountaincar-velocity")
    with pytest.raises(ConfigError, match="was trained on 'mountaincar-velocity'"):
        run_extraction(ExtractionConfig(task="mountaincar-position", agent=str(agent)), tmp_path / "x")


def test_cli_rejects_bad_artifact(tmp_path, capsys) -> None:
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "not a plray artifact" in capsys.readouterr().err


def test_mountaincar_metrics_split_off_the_left_wall(tmp_path) -> None:
    s = run_extraction(
        ExtractionConfig(task="mountaincar-position", p_learning={"steps": 30, "batch_size": 64}, eval_states=4000),
        tmp_path / "mc",
    )
    manifest = json.loads((tmp_path / "mc" / "world_model" / "manifest.json").read_text())
    off = manifest["metrics"]["state_off_wall"]
    assert 0.0 < off["wall_fraction"] < 0.05
    assert s["wm_nmse_off_wall"] == off["wm_nmse"] and np.isfinite(off["wm_nmse"])
    # the network reads states rescaled over the task's box (ExtractionConfig.normalize_inputs)
    assert manifest["model"]["config"]["input_low"] == [-1.2, -0.07]
    raw = ExtractionConfig(task="mountaincar-position", normalize_inputs=False).neural_config()
    assert raw.input_low is None


def test_gaussian_extraction_on_the_noisy_task_reports_the_kernel(tmp_path) -> None:
    out = tmp_path / "noisy"
    cfg = ExtractionConfig(
        task="mountaincar-position-noisy",
        method="gaussian",
        oracle_resolution=30,
        p_learning={"steps": 40, "batch_size": 128},
        eval_states=600,
    )
    s = run_extraction(cfg, out)
    model, manifest = load_world_model(out / "world_model")
    kernel = manifest["metrics"]["kernel"]
    np.testing.assert_allclose(kernel["std_true"], [0.005, 0.001], rtol=0.2)  # clipped at the box: a bit less
    assert all(v > 0 for v in kernel["std_model"]) and kernel["num_states"] == 600
    assert np.isfinite(s["wm_nmse"]) and "std_rel_error (median)" in (out / "report.md").read_text()
    assert model.std(np.array([[-0.5, 0.0]]), np.array([1])).shape == (1, 2)
    args = ["evaluate", str(out / "world_model"), "--resolution", "20", "--starts", "16", "--eval-states", "500"]
    assert main(args) == 0
    result = json.loads((out / "evaluation" / "evaluation.json").read_text())
    assert {u["goal"] for u in result["unseen"]} == {"fast_car", "gentle_car", "shortest_path"}
    assert result["metrics"]["kernel"]["num_states"] == 500
    assert result["unseen_planning"].startswith("the model's kernel (9-node")
