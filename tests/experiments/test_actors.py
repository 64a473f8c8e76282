"""The extraction actor pool: agents loaded once per worker, a killed worker replaced and its job
resumed from its checkpoint, a failing job reported without stopping the others."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from plray.experiments.actors import ExtractionPool
from plray.experiments.jobs import ExtractionJob, read_result, train_cell
from plray.experiments.schema import experiment_from_mapping

pytestmark = pytest.mark.ray


def _config(**resources):
    return experiment_from_mapping(
        {
            "name": "pool",
            "sweep": [{"variant": ["windy"], "num_goals": [4]}],
            "agent": {"kind": "exact"},
            "extraction": {
                "methods": ["sampled", "closed-form", "simplex-local"],
                "sampled_updates": 15_000,
                "checkpoint_every": 500,
            },
            "resources": {"num_actors": 1, **resources},
        }
    )


def _kill_mid_job(cfg, run: Path) -> tuple[dict, list[int], int]:
    """Run the sampled job on one worker, SIGKILL the worker after its first checkpoint."""
    cell = cfg.cells()[0]
    train_cell(cfg, cell, run)  # the exact agent: no Ray needed
    job = ExtractionJob(cell, "sampled")
    pool = ExtractionPool(cfg, run)
    victim = pool.worker_pids()[0]
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(report=pool.run([job], say=lambda _m: None)))
    thread.start()
    ckpt = job.out_dir(run) / "checkpoint.npz"
    deadline = time.monotonic() + 120
    while not ckpt.exists():
        assert time.monotonic() < deadline, "no checkpoint appeared"
        assert thread.is_alive(), "the job finished before it could be interrupted"
        time.sleep(0.02)
    os.kill(victim, signal.SIGKILL)
    thread.join(timeout=300)
    assert not thread.is_alive()
    report = box["report"]
    pids = [w["pid"] for w in report.workers]
    pool.shutdown()
    return report, pids, victim


def test_killed_worker_is_restarted_and_its_job_resumes(ray_local, tmp_path: Path) -> None:
    cfg = _config(actor_restarts=2)  # Ray restarts the actor and retries the task
    report, pids, victim = _kill_mid_job(cfg, tmp_path)
    (key,) = report.results
    result = report.results[key]
    assert not report.errors
    assert victim not in pids, "the killed process is still the worker"
    assert result["resumed_from"] >= 500, "the retried job started from scratch instead of its checkpoint"
    assert result["pid"] != victim
    job_dir = tmp_path / "extractions" / key
    on_disk = read_result(job_dir / "result.json")
    assert on_disk == {k: v for k, v in result.items() if k != "worker_agent_loads"}
    assert not (job_dir / "checkpoint.npz").exists()
    assert Path(result["world_model"]) == tmp_path.resolve() / "models" / key


def test_worker_dead_for_good_is_replaced_by_the_pool(ray_local, tmp_path: Path) -> None:
    cfg = _config(actor_restarts=0)  # Ray gives up on the actor; the pool makes a new one
    report, pids, victim = _kill_mid_job(cfg, tmp_path)
    assert report.replaced_workers == 1 and not report.errors
    (result,) = report.results.values()
    assert result["resumed_from"] >= 500 and victim not in pids


def test_pool_loads_each_agent_once_and_reports_failures(ray_local, tmp_path: Path) -> None:
    cfg = experiment_from_mapping(
        {
            "name": "pool",
            "sweep": [{"variant": ["windy"], "num_goals": [3, 4]}],
            "agent": {"kind": "exact"},
            "extraction": {"methods": ["closed-form", "simplex-local", "column-match"]},
            "resources": {"num_actors": 1},
        }
    )
    trained, missing = cfg.cells()
    train_cell(cfg, trained, tmp_path)
    jobs = [ExtractionJob(c, m) for c in (trained, missing) for m in cfg.extraction.methods]
    pool = ExtractionPool(cfg, tmp_path)
    report = pool.run(jobs, say=lambda _m: None)
    pool.shutdown()
    assert len(report.results) == 3 and len(report.errors) == 3
    assert all(k.startswith(missing.key) for k in report.errors)
    assert all("ArtifactError" in v or "not" in v for v in report.errors.values())
    # one worker ran all three jobs on the trained agent and read that agent once
    assert report.workers[0]["agent_loads"] == 1
    assert max(r["worker_agent_loads"] for r in report.results.values()) == 1
