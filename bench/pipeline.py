"""The experiment service, measured: the FourRooms study with learned agents against the paper,
extraction throughput with 1 and 2 actors, and the end-to-end wall-clock of the demo config.

    python bench/pipeline.py                      # all three parts
    python bench/pipeline.py --parts throughput   # one part (study, throughput, demo); keeps the others

Writes bench/results/pipeline.json and pipeline.md. The study runs
configs/experiments/fourrooms-study.yaml into runs/bench-fourrooms-study (resumable: rerun to finish
an interrupted study); the demo part runs ``plray run configs/experiments/demo.yaml`` in a fresh
process on a fresh run directory, as a newcomer's ``make demo`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, machine, write_results  # noqa: E402
from plray.evaluation.report import markdown_table  # noqa: E402

CONFIGS = ROOT / "configs" / "experiments"


def study(run_dir: Path) -> dict[str, Any]:
    """Run (or resume) the FourRooms study and read its tables."""
    import pyarrow.parquet as pq

    from plray.experiments.pipeline import run_experiment
    from plray.experiments.schema import load_experiment

    cfg = load_experiment(CONFIGS / "fourrooms-study.yaml")
    summary = run_experiment(cfg, run_dir, say=lambda m: print(m, file=sys.stderr, flush=True))
    res = summary.results_dir
    return {
        "config": str(CONFIGS / "fourrooms-study.yaml"),
        "run_dir": str(run_dir),
        "seconds": summary.seconds,
        "stage_seconds": summary.stage_seconds,
        "failures": summary.failures,
        "summary": pq.read_table(res / "summary.parquet").to_pylist(),
        "goals_needed": pq.read_table(res / "goals_needed.parquet").to_pylist(),
        "ensembles": pq.read_table(res / "ensembles.parquet").to_pylist(),
        "agents": pq.read_table(res / "agents.parquet").to_pylist(),
    }


def throughput(num_jobs_per_cell: int = 1) -> dict[str, Any]:
    """Jobs per second of the same extraction jobs on a pool of 1 and of 2 actors (fresh run dirs)."""
    import ray

    from plray.experiments.actors import ExtractionPool
    from plray.experiments.jobs import jobs_for, train_cell
    from plray.experiments.schema import experiment_from_mapping

    cfg = experiment_from_mapping(
        {
            "name": "throughput",
            "sweep": [{"variant": ["windy", "teleport"], "num_goals": [4, 8, 12, 16]}],
            "seeds": [0, 1],
            "agent": {"kind": "exact"},
            "extraction": {"methods": ["simplex-local", "sampled"], "sampled_updates": 2000},
            "evaluation": {"unseen": True},
        }
    )
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = []
    try:
        for actors in (1, 2):
            run = Path(tempfile.mkdtemp(prefix=f"plray-throughput-{actors}-"))
            try:
                for cell in cfg.cells():
                    train_cell(cfg, cell, run)
                jobs = jobs_for(cfg, cfg.cells())
                pool = ExtractionPool(cfg, run, num_actors=actors)
                pool.worker_pids()  # actors up before the clock starts
                start = time.perf_counter()
                report = pool.run(jobs, say=lambda _m: None)
                seconds = time.perf_counter() - start
                pool.shutdown()
                assert not report.errors, report.errors
                rows.append(
                    {
                        "actors": actors,
                        "jobs": len(jobs),
                        "seconds": seconds,
                        "jobs_per_s": len(jobs) / seconds,
                        "agent_loads": sum(w["agent_loads"] for w in report.workers),
                    }
                )
                print(f"[throughput] {actors} actor(s): {len(jobs)} jobs in {seconds:.1f} s", file=sys.stderr)
            finally:
                shutil.rmtree(run, ignore_errors=True)
    finally:
        ray.shutdown()
    rows[1]["speedup_vs_1"] = rows[1]["jobs_per_s"] / rows[0]["jobs_per_s"]
    return {
        "jobs": "windy+teleport x |G| in {4,8,12,16} x 2 seeds x {simplex-local, sampled 2000 updates}",
        "rows": rows,
    }


def demo() -> dict[str, Any]:
    """``plray run configs/experiments/demo.yaml`` from a fresh process on a fresh run directory."""
    run = Path(tempfile.mkdtemp(prefix="plray-demo-"))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "plray.cli", "run", str(CONFIGS / "demo.yaml"), "--run-dir", str(run / "demo")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    seconds = time.perf_counter() - start
    shutil.rmtree(run, ignore_errors=True)
    if out.returncode != 0:
        raise SystemExit(f"demo failed:\n{out.stderr[-3000:]}")
    tail = [line for line in out.stdout.splitlines() if "agents," in line]
    return {"seconds": seconds, "summary_line": tail[-1] if tail else ""}


def _study_markdown(s: dict[str, Any], commit: str) -> list[str]:
    """The FourRooms study's section of the report."""
    m = {"commit": commit}
    return [
        "## FourRooms study with learned agents (configs/experiments/fourrooms-study.yaml)",
        "",
        f"Measured at commit {s.get('commit', m['commit'])}.",
        "",
        f"{len(s['agents'])} learned tabular agents; wall-clock {s['seconds']:.0f} s "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in s['stage_seconds'].items())}). Mean (std) over seeds; "
        "the paper's kernel MSE is read from its figures at 10M steps (docs/method.md#published-numbers).",
        "",
        markdown_table(
            s["summary"],
            (
                "variant",
                "num_goals",
                "method",
                "seeds",
                "kernel_mse",
                "kernel_mse_std",
                "paper_kernel_mse",
                "tv_mean",
                "return_ratio",
                "return_ratio_std",
                "return_ratio_min",
            ),
        ),
        "",
        "Goal counts at which the mean R_WM / R* is within 5% of R*, against the paper's:",
        "",
        markdown_table(s["goals_needed"], ("variant", "method", "swept", "goals_needed", "paper", "meets_paper")),
        "",
        "Ensembles over seeds (disagreement: mean TV of members from the mixture; Spearman ρ between "
        "per-(s, a) disagreement and the mixture's actual TV error):",
        "",
        markdown_table(
            s["ensembles"],
            (
                "variant",
                "num_goals",
                "method",
                "members",
                "kernel_mse",
                "member_tv_mean",
                "tv_mean",
                "disagreement_mean",
                "disagreement_error_spearman",
                "return_ratio",
            ),
        ),
        "",
    ]


def markdown(payload: dict[str, Any]) -> str:
    m = payload["machine"]
    lines = [
        "# Experiment pipeline",
        "",
        f"plray {m['plray']} ({m['commit']}), Python {m['python']}, {m['cpus']} CPUs, {m['date']}. "
        "Command: `python bench/pipeline.py`.",
        "",
    ]
    if "study" in payload:
        lines += _study_markdown(payload["study"], m["commit"])
    if "throughput" in payload:
        t = payload["throughput"]
        lines += [
            "## Extraction throughput, 1 and 2 actors (same jobs, same run)",
            "",
            f"Measured at commit {t.get('commit', m['commit'])}.",
            "",
            f"Jobs: {t['jobs']}.",
            "",
            markdown_table(t["rows"], ("actors", "jobs", "seconds", "jobs_per_s", "agent_loads", "speedup_vs_1")),
            "",
        ]
    if "demo" in payload:
        d = payload["demo"]
        lines += [
            "## Demo end to end (`plray run configs/experiments/demo.yaml`, fresh process and run directory)",
            "",
            f"Measured at commit {d.get('commit', m['commit'])}.",
            "",
            f"Wall-clock {d['seconds']:.0f} s including Ray start-up (target: under 600 s on 2 cores). "
            f"{d['summary_line']}",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--parts", nargs="+", default=["study", "throughput", "demo"], choices=["study", "throughput", "demo"]
    )
    parser.add_argument("--study-dir", default=str(ROOT / "runs" / "bench-fourrooms-study"))
    parser.add_argument("--name", default="pipeline", help="results file name under bench/results")
    args = parser.parse_args()
    payload: dict[str, Any] = {}
    previous = RESULTS / f"{args.name}.json"
    if previous.is_file():  # a run of some parts keeps the others' figures
        payload = {k: v for k, v in json.loads(previous.read_text()).items() if k in ("study", "throughput", "demo")}
    payload["machine"] = machine()
    commit = payload["machine"]["commit"]
    if "throughput" in args.parts:
        payload["throughput"] = throughput() | {"commit": commit}
    if "demo" in args.parts:
        payload["demo"] = demo() | {"commit": commit}
    if "study" in args.parts:
        payload["study"] = study(Path(args.study_dir)) | {"commit": commit}
    paths = write_results(args.name, payload, markdown(payload))
    print(f"wrote {paths[0]} and {paths[1]}")


if __name__ == "__main__":
    main()
