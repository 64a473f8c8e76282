import json
import subprocess
import sys

import pytest

from plray.cli import main

REQUIRED = {
    "variant",
    "num_goals",
    "goal_family",
    "method",
    "tv_mean",
    "tv_max",
    "kernel_mse",
    "rank",
    "identifiable",
    "return_wm",
    "return_opt",
}


def test_fourrooms_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "fourrooms",
            "--variant",
            "windy",
            "--goals",
            "68",
            "--goal-family",
            "generic",
            "--method",
            "closed-form",
            "--json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out.keys() >= REQUIRED
    assert out["variant"] == "windy" and out["num_goals"] == 68 and out["identifiable"] is True
    assert out["tv_max"] < 1e-8 and out["rank"] == 68
    assert out["return_wm"] == pytest.approx(out["return_opt"])


def test_fourrooms_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fourrooms", "--variant", "deterministic", "--goals", "1", "--method", "column-match"]) == 0
    out = capsys.readouterr().out
    assert (
        "| deterministic |" in out and "column-match" in out and "identifiable for deterministic dynamics: yes" in out
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fourrooms", "--variant", "stormy"], "invalid choice: 'stormy'"),
        (["fourrooms", "--goals", "0"], "expected an integer >= 1"),
        (["fourrooms", "--goals", "many"], "expected an integer"),
        (["fourrooms", "--goals", "69"], "num_goals: must be between 1 and 68"),
        (["fourrooms", "--gamma", "1.5"], "gamma: must lie in the open interval (0, 1)"),
        (["fourrooms", "--q-noise", "nan"], "q_noise"),
        (["fourrooms", "--method", "magic"], "invalid choice: 'magic'"),
    ],
)
def test_bad_arguments_exit_2_with_message(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        rc = main(args)
        raise SystemExit(rc)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_console_script_help_and_demo_exit_codes() -> None:
    help_out = subprocess.run(
        [sys.executable, "-m", "plray.cli", "fourrooms", "--help"], capture_output=True, text=True
    )
    assert help_out.returncode == 0 and "--goal-family" in help_out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "plray.cli", "fourrooms", "--variant", "x"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_demo_writes_results(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "demo.json"
    assert main(["exact-table", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    rows = json.loads(path.read_text())
    assert {r["variant"] for r in rows} == {"deterministic", "windy", "teleport"}
    assert "return_wm" in out
    assert not list(tmp_path.glob(".*.tmp")), "no temporary files left behind"


def test_published_files_have_normal_permissions(tmp_path) -> None:
    import os
    import stat

    import numpy as np

    from plray.utils.artifact import save_artifact
    from plray.utils.io import atomic_write_text

    old = os.umask(0o022)
    try:
        f = atomic_write_text(tmp_path / "a.txt", "x")
        d = save_artifact(tmp_path / "art", "agent", {"w": np.zeros(2)}, {})
    finally:
        os.umask(old)
    assert stat.S_IMODE(f.stat().st_mode) == 0o644
    assert stat.S_IMODE(d.stat().st_mode) == 0o755


def test_run_rejects_a_bad_config_before_starting_anything(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsweep:\n  - {variant: [stormy]}\n")
    assert main(["run", str(bad), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml: sweep[0].variant[0]: 'stormy' is not allowed" in err and "windy" in err
    assert not (tmp_path / "run").exists(), "a rejected config leaves no run directory"
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read config" in capsys.readouterr().err


def test_run_help_explains_the_pipeline() -> None:
    out = subprocess.run([sys.executable, "-m", "plray.cli", "run", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for word in ("Tune", "actors", "--address", "--run-dir", "resumes"):
        assert word in out.stdout
