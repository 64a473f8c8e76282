"""Run directories on object storage: working copies, pull/push, and a whole ``plray run`` on a real
S3-protocol server (moto on loopback) that is killed, resumes from the URI alone and is served."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
import yaml

from plray.experiments.rundir import RunDir, skip_checkpoints
from plray.utils.storage import parse
from tests.experiments.processes import free_ports, kill_tree


def test_a_local_run_directory_is_its_own_working_copy(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    assert not run.remote and run.local == (tmp_path / "run").resolve() and run.local.is_dir()
    (run.local / "agents" / "a").mkdir(parents=True)
    (run.local / "agents" / "a" / "result.json").write_text("{}")
    assert run.push("agents") == 0 and run.pull() == 0
    assert run.tune_storage() == (str(run.local / "tune"), None)
    assert run.show(run.local / "models") == str(run.local / "models")


def test_pull_and_push_keep_a_remote_run_and_its_working_copies_in_step(bucket: str, tmp_path: Path) -> None:
    uri = f"s3://{bucket}/runs/r1"
    a = RunDir(uri, cache=tmp_path / "node-a")
    assert a.remote and a.local.is_relative_to(tmp_path / "node-a")
    assert RunDir(uri, cache=tmp_path / "node-a").local == a.local  # one working copy per run and node
    (a.local / "agents" / "c1" / "agent").mkdir(parents=True)
    (a.local / "agents" / "c1" / "agent" / "model.npz").write_bytes(b"\x00" * 10)
    (a.local / "agents" / "c1" / "checkpoints" / "iter_1").mkdir(parents=True)
    (a.local / "agents" / "c1" / "checkpoints" / "iter_1" / "state.bin").write_bytes(b"ck")
    (a.local / "agents" / "c1" / ".result.json.tmp").write_text("half")  # a write in progress: never uploaded
    (a.local / "config.yaml").write_text("name: x\n")
    assert a.push("agents/c1", "config.yaml") == 3
    assert sorted(parse(uri).join("agents", "c1").list()) == ["agent", "checkpoints"]

    b = RunDir(uri, cache=tmp_path / "node-b")  # another node: an empty working copy
    assert b.pull(skip=skip_checkpoints) == 2
    assert (b.local / "agents" / "c1" / "agent" / "model.npz").read_bytes() == b"\x00" * 10
    assert not (b.local / "agents" / "c1" / "checkpoints").exists()
    assert b.pull("agents/c1") == 1  # the trial that resumes takes its checkpoints; the rest is there
    assert b.pull() == 0
    assert b.show(b.local / "models" / "m") == f"{uri}/models/m"
    path, fs = b.tune_storage()
    assert path == f"{bucket}/runs/r1/tune" and isinstance(fs, pafs.S3FileSystem)


CONFIG = {
    "name": "s3-run",
    "task": "fourrooms",
    "sweep": [{"variant": ["windy"], "num_goals": [1, 2, 3, 4]}],
    "seeds": [0],
    "agent": {"kind": "tabular-q", "tabular": {"env_steps": 200_000}},
    "extraction": {"methods": ["simplex-local"]},
    "resources": {"num_cpus": 2, "max_concurrent_trials": 2},
}


def _driver(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "plray.cli", *args],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )


def _run_killed_after_first_trial(cfg_path: Path, uri: str, env: dict[str, str], tmp_path: Path) -> dict[str, bytes]:
    """Start ``plray run`` on ``uri``, SIGKILL it (and its Ray) once a trial is on the store."""
    agents = parse(uri).join("agents")

    def results() -> dict:
        return {n: agents.join(n, "result.json") for n in agents.list() if agents.join(n, "result.json").is_file()}

    driver = _driver(["run", str(cfg_path), "--run-dir", uri], env, tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 240
        while not results():
            assert driver.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no trial reached the bucket in time"
            time.sleep(0.2)
    finally:
        kill_tree(driver.pid)
        driver.wait()
    return {name: loc.read_bytes() for name, loc in results().items()}


def _serve_and_predict(uri: str, model_id: str, env: dict[str, str], tmp_path: Path) -> dict:
    from plray.serve.client import WorldModelClient
    from tests.serve.conftest import wait_healthy

    (port,) = free_ports(1)
    server = _driver(["serve", "--models", f"{uri}/models", "--port", str(port)], env, tmp_path / "serve.log")
    try:
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, timeout=120)
        except AssertionError:
            raise AssertionError((tmp_path / "serve.log").read_text()[-3000:]) from None
        client = WorldModelClient(url)
        assert model_id in {m["id"] for m in client.models()}
        return client.predict(model_id, np.array([[0], [7]]), np.array([1, 2]))
    finally:
        kill_tree(server.pid)
        server.wait()


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(1500)
def test_plray_run_on_s3_survives_a_kill_resumes_from_the_uri_and_serves(
    bucket: str, s3_endpoint: str, tmp_path: Path
) -> None:
    cfg_path = tmp_path / "s3-run.yaml"
    cfg_path.write_text(yaml.safe_dump(CONFIG))
    uri = f"s3://{bucket}/runs/s3-run"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_AUTH_MODE": "disabled"}
    first = _run_killed_after_first_trial(cfg_path, uri, env | {"PLRAY_CACHE_DIR": str(tmp_path / "a")}, tmp_path)
    assert 1 <= len(first) < 4, f"{len(first)} trials had finished: kill earlier"

    # resume on "another machine": a fresh working copy, only the URI in common
    again = subprocess.run(
        [sys.executable, "-m", "plray.cli", "run", str(cfg_path), "--run-dir", uri],
        env=env | {"PLRAY_CACHE_DIR": str(tmp_path / "b")},
        capture_output=True,
        text=True,
        timeout=1200,  # about 60 s on a quiet 2-core machine
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{4 - len(first)} of 4 agents to train" in again.stderr or "resuming the interrupted" in again.stderr
    assert f"serve the world models: plray serve --models {uri}/models" in again.stdout

    store = parse(uri)
    for name, data in first.items():  # trials finished before the kill were kept, not run again
        assert store.join("agents", name, "result.json").read_bytes() == data
    fs, results = store.fs, store.join("results")
    agents = pq.read_table(f"{results.path}/agents.parquet", filesystem=fs).to_pylist()
    cells = sorted(a["cell"] for a in agents)
    assert cells == sorted(f"windy-g{n}-generic-random-s0" for n in range(1, 5))  # each trial once
    extractions = pq.read_table(f"{results.path}/extractions.parquet", filesystem=fs).to_pylist()
    assert len(extractions) == 4 and all(0 <= e["tv_mean"] < 0.5 for e in extractions)
    assert "results.md" in results.list()

    model_id = "windy-g4-generic-random-s0--simplex-local"
    manifest = json.loads(store.join("models", model_id, "manifest.json").read_text())
    assert manifest["task"] == "fourrooms"
    out = _serve_and_predict(uri, model_id, env | {"PLRAY_CACHE_DIR": str(tmp_path / "c")}, tmp_path)
    dist = np.asarray(out["distribution"])
    assert dist.shape[0] == 2 and np.allclose(dist.sum(axis=1), 1.0, atol=1e-6)
