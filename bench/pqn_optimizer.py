"""Benchmark: PQN agents trained with torch's RAdam and with plray's FusedRAdam, same configs and seeds.

    python bench/pqn_optimizer.py [--steps 1000000] [--seeds 0 1] [--config mountaincar-position-pqn.yaml]
                                  [--p-steps 5000] [--out /tmp/plray-bench-pqn-optimizer]

``plray.agents.optim.FusedRAdam`` computes torch's RAdam update with torch's fused Adam kernel: the
same update up to floating-point rounding, which training then amplifies as it does any reordering
of sums (two runs agree to ~1e-6 for a few dozen steps and then drift apart like two seeds would).
"Same numbers within a tolerance" is therefore checked where it matters: the trained agents'
success, Q accuracy and extracted world models, for each optimizer at several seeds, so the
difference between the optimizers can be read against the spread between seeds. Each run also
records its wall-clock and env steps/s (one run at a time; run on a quiet machine).

Per run: greedy success over the training goals (metrics.json), Q_NMSE against Q^π on the grid and
by exact rollouts (plray.evaluation.q_accuracy), and the WM_NMSE of the world model P-learning
extracts from the agent with the task's defaults but ``--p-steps`` steps (plray.experiments.extraction;
5000 by default, a quarter of MountainCar's, enough to compare two optimizers at a few minutes each). Results:
bench/results/pqn_optimizer.{json,md}; run directories under ``--out``, never in the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as bench/agents.py: one torch thread beside the sampler
os.environ.setdefault("MKL_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

import plray.agents.pqn as pqn_module
from bench.agents import CONFIGS, run_one
from bench.common import agent_fields, machine, write_results
from plray.agents.optim import FusedRAdam
from plray.evaluation.report import markdown_table
from plray.experiments.extraction import TASK_DEFAULTS, ExtractionConfig, extract_world_model

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {"torch-radam": torch.optim.RAdam, "fused-radam": FusedRAdam}
"""What ``PQNTorchLearner`` builds for ``optimizer: radam``: torch's own (the reference) or plray's."""


def run(
    label: str, config: str, steps: int, seed: int, optimizer: str, out: Path, p_steps: int | None
) -> dict[str, Any]:
    """Train one agent with ``optimizer`` (patched into :mod:`plray.agents.pqn`), evaluate it, extract its model."""
    # the learner is built in this process (num_learners = 0), so the class it looks up is the one set here
    pqn_module.FusedRAdam = OPTIMIZERS[optimizer]  # type: ignore[assignment,misc]
    try:
        row = run_one(label, config, steps, 200, out, seed=seed)
    finally:
        pqn_module.FusedRAdam = FusedRAdam  # type: ignore[misc]
    agent = Path(row["run_dir"]) / "agent"
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)  # P-learning alone: no sampler to thrash against
    try:
        overrides = {} if p_steps is None else {"steps": p_steps}
        _, manifest, _ = extract_world_model(ExtractionConfig(task=row["task"], agent=str(agent), p_learning=overrides))
    finally:
        torch.set_num_threads(threads)
    metrics = manifest["metrics"][TASK_DEFAULTS[row["task"]].get("wm_space", "state")]
    return {
        **agent_fields(agent),
        "label": label,
        "optimizer": optimizer,
        "seed": seed,
        "env_steps": row["env_steps"],
        "train_wall_s": row["train_wall_s"],
        "env_steps_per_s": row["env_steps_per_s"],
        "success_rate": row["success_rate"],
        "q_nmse": row["q_nmse"],
        "q_nmse_rollout": row["q_nmse_rollout"],
        "wm_nmse": metrics["wm_nmse"],
        "wm_nmse_per_dim": metrics["per_dim_nmse"],
        "p_steps": manifest["training"].get("steps"),
        "extraction_s": manifest["extraction_seconds"],
        "load1": os.getloadavg()[0],
    }


def summary_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per optimizer: the mean and the seed-to-seed range of each figure."""
    out = []
    for name in OPTIMIZERS:
        mine = [r for r in runs if r["optimizer"] == name]
        if not mine:
            continue
        row: dict[str, Any] = {"optimizer": name, "seeds": len(mine)}
        for key in ("env_steps_per_s", "success_rate", "q_nmse", "q_nmse_rollout", "wm_nmse"):
            values = [r[key] for r in mine]
            row[key] = f"{statistics.mean(values):.4g} [{min(values):.4g}, {max(values):.4g}]"
        out.append(row)
    return out


def markdown(payload: dict[str, Any]) -> str:
    m = payload["machine"]
    summary = summary_rows(payload["rows"])
    per_run = [
        {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items() if k != "wm_nmse_per_dim"}
        for r in payload["rows"]
    ]
    lines = [
        "# PQN with torch's RAdam and with plray's FusedRAdam",
        "",
        f"Command: `{payload['command']}`",
        "",
        f"Machine: {m['cpus']} CPUs ({m['processor']}), plray {m['plray']} @ {m['commit']}, {m['date']}; "
        f"torch threads {payload['torch_threads']}.",
        "",
        "Same config and seeds; only the optimizer class differs. Mean [min, max] over seeds. Success: greedy, "
        "64 episodes per training goal; Q_NMSE against Q^pi of the greedy policy (grid, and exact rollouts); "
        f"WM_NMSE: P-learning on the agent, the task's defaults but {payload['p_steps']} steps "
        "(plray.experiments.extraction).",
        "",
        markdown_table(summary, list(summary[0]) if summary else []),
        "",
        "## Every run",
        "",
        markdown_table(per_run, list(per_run[0]) if per_run else []),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="mountaincar-position-pqn.yaml", help="a PQN config in configs/agents")
    parser.add_argument("--steps", type=int, default=1_000_000, help="env steps per agent")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="agent seeds (each optimizer)")
    parser.add_argument(
        "--p-steps",
        type=int,
        default=5000,
        help="P-learning steps per agent (0: the task's default, 20,000 for MountainCar: ~8 min each)",
    )
    parser.add_argument("--out", default="/tmp/plray-bench-pqn-optimizer", help="root of the run directories")
    parser.add_argument(
        "--include",
        type=Path,
        default=None,
        metavar="JSON",
        help="keep the rows of an earlier results file (runs of other seeds) in this one",
    )
    parser.add_argument("--name", default="pqn_optimizer", help="results file stem in bench/results")
    args = parser.parse_args(argv)
    if not (CONFIGS / args.config).is_file():
        parser.error(f"--config: no {args.config} in {CONFIGS}")
    payload: dict[str, Any] = {
        "benchmark": "pqn_optimizer",
        "command": "python bench/pqn_optimizer.py " + shlex.join(sys.argv[1:] if argv is None else argv),
        "machine": machine(),
        "torch_threads": torch.get_num_threads(),
        "config": f"configs/agents/{args.config}",
        "p_steps": args.p_steps or "task default",
        "rows": [],
    }
    if args.include is not None:
        kept = json.loads(args.include.read_text(encoding="utf-8"))["rows"]
        payload["rows"] = [r for r in kept if r["seed"] not in args.seeds]
        payload["included"] = {"file": str(args.include), "rows": len(payload["rows"])}
    for seed in args.seeds:
        for name in OPTIMIZERS:  # alternate, so a drifting load hits both
            label = f"{Path(args.config).stem}-{name}-s{seed}"
            print(f"[bench] {label}: {args.steps:,} env steps", file=sys.stderr, flush=True)
            payload["rows"].append(
                run(label, args.config, args.steps, seed, name, Path(args.out), args.p_steps or None)
            )
            write_results(args.name, payload, markdown(payload))


if __name__ == "__main__":
    main()
