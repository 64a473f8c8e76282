"""A sweep whose driver is killed mid-run resumes on the next ``plray run`` and reports every trial once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from plray.experiments.pipeline import run_experiment
from plray.experiments.schema import load_experiment
from tests.experiments.processes import kill_tree

pytestmark = pytest.mark.ray

CONFIG = {
    "name": "resume",
    "task": "fourrooms",
    "sweep": [{"variant": ["windy"], "num_goals": [1, 2, 3, 4, 5, 6]}],
    "seeds": [0],
    "agent": {"kind": "tabular-q", "tabular": {"env_steps": 300_000}},
    "extraction": {"methods": ["simplex-local"]},
    "resources": {"num_cpus": 2, "max_concurrent_trials": 2},
}


def test_driver_killed_mid_sweep_resumes_and_reports_each_trial_once(ray_local, tmp_path: Path) -> None:
    cfg_path = tmp_path / "resume.yaml"
    cfg_path.write_text(yaml.safe_dump(CONFIG))
    run = tmp_path / "run"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    log = (tmp_path / "driver.log").open("w")
    driver = subprocess.Popen(
        [sys.executable, "-m", "plray.cli", "run", str(cfg_path), "--run-dir", str(run)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    results = lambda: sorted(run.glob("agents/*/result.json"))  # noqa: E731
    try:
        deadline = time.monotonic() + 240
        while not results():
            assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no trial finished in time"
            time.sleep(0.05)
    finally:
        kill_tree(driver.pid)  # the driver and the local Ray it started, killed without warning
        driver.wait()
        log.close()
    finished = {p: p.read_bytes() for p in results()}
    assert 1 <= len(finished) < 6, f"{len(finished)} trials had finished: kill earlier"

    lines: list[str] = []
    summary = run_experiment(load_experiment(cfg_path), run, say=lines.append)
    assert summary.ok, summary.failures
    agents = pq.read_table(summary.results_dir / "agents.parquet").to_pylist()
    assert sorted(a["cell"] for a in agents) == sorted(f"windy-g{n}-generic-random-s0" for n in range(1, 7))
    # trials finished before the kill were kept as they were, not run again
    assert {p: p.read_bytes() for p in finished} == finished
    text = "\n".join(lines)
    assert f"{6 - len(finished)} of 6 agents to train" in text or "resuming the interrupted Tune experiment" in text
    assert summary.extractions == 6
