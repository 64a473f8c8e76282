"""Benchmark: train the paper's continuous-state agents on this machine; throughput, success and Q accuracy.

    python bench/agents.py [--quick] [--out DIR] [--only LABEL ...] [--reacher-resolution 20]

Trains MountainCar-position (configs/agents/mountaincar-position.yaml) and the kinematic Reacher
(configs/agents/reacher.yaml with DQN, configs/agents/*-pqn.yaml with PQN) each at several
env-step budgets with ``plray.agents.train.train`` (one run at a time; each starts and stops its own
local Ray). Per run it records env steps, wall-clock, env steps/s, the greedy success rate per
training goal (metrics.json, 64 episodes per goal), and Q_MSE / Q_NMSE against Q^π of the agent's
own greedy policy on a grid under the true dynamics (plray.evaluation.q_accuracy; MountainCar 200²,
Reacher ``--reacher-resolution``⁴).

Run directories go under ``--out`` (default /tmp/plray-bench-agents), never into the repository.
Results are rewritten after every run to bench/results/agents.{json,md} (``--quick``:
agents_quick.{json,md}, so a smoke run never overwrites the full results).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

# One torch thread: on a 2-core machine torch's intra-op threads thrash against the sampler (and any
# other process), halving throughput or worse; set before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bench.common import RESULTS, machine, write_results
from plray.agents.config import AgentConfig
from plray.agents.qsource import NetworkQSource
from plray.agents.train import load_config, train
from plray.evaluation.q_accuracy import q_accuracy, q_accuracy_rollout
from plray.evaluation.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "agents"

# (label, config file, env-step budget, grid resolution key)
FULL_RUNS: list[tuple[str, str, int, str]] = [
    ("mc-position-short", "mountaincar-position.yaml", 200_000, "mc"),
    ("reacher-short", "reacher.yaml", 150_000, "reacher"),
    ("reacher-long", "reacher.yaml", 500_000, "reacher"),
    ("mc-position-long", "mountaincar-position.yaml", 1_000_000, "mc"),
    ("reacher-1m", "reacher.yaml", 1_000_000, "reacher"),
    ("reacher-pqn-1m", "reacher-pqn.yaml", 1_000_000, "reacher"),
    ("reacher-pqn-4m", "reacher-pqn.yaml", 4_000_000, "reacher"),
    ("reacher-pqn-10m", "reacher-pqn.yaml", 10_000_000, "reacher"),
    ("mc-position-pqn-1m", "mountaincar-position-pqn.yaml", 1_000_000, "mc"),
    ("mc-position-pqn-5m", "mountaincar-position-pqn.yaml", 5_000_000, "mc"),
]
QUICK_RUNS: list[tuple[str, str, int, str]] = [
    ("mc-position-quick", "mountaincar-position.yaml", 20_000, "mc"),
    ("reacher-quick", "reacher.yaml", 15_000, "reacher"),
    ("reacher-pqn-quick", "reacher-pqn.yaml", 40_000, "reacher"),
]


ROLLOUT_STATES = 2048
"""States (uniform over the box) of the grid-free Q_NMSE by exact rollouts of the greedy policy."""


def finished_run(run_dir: Path, cfg: AgentConfig) -> bool:
    """Whether ``run_dir`` holds a finished run of exactly ``cfg`` (metrics.json, agent/, same config.yaml)."""
    import yaml

    from plray.utils.schema import ConfigError, from_mapping, to_mapping

    try:
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        # through the schema, so fields added since the run (at their defaults) compare equal
        saved = from_mapping(AgentConfig, yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")))
    except (OSError, ValueError, ConfigError, yaml.YAMLError):
        return False
    return bool(metrics.get("finished")) and (run_dir / "agent").is_dir() and to_mapping(saved) == to_mapping(cfg)


def with_budget(cfg: AgentConfig, steps: int) -> AgentConfig:
    """``cfg`` with ``training.total_env_steps = steps``."""
    return dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, total_env_steps=steps))


def run_one(
    label: str, config: str, steps: int, resolution: int, out_root: Path, reuse: bool = False, seed: int | None = None
) -> dict[str, Any]:
    """Train one agent from scratch (or, with ``reuse``, take a finished run of the same config), then
    evaluate its Q accuracy on the grid and by exact rollouts. ``seed``: instead of the config's."""
    cfg = with_budget(load_config(CONFIGS / config), steps)
    cfg = cfg if seed is None else dataclasses.replace(cfg, seed=seed)
    run_dir = out_root / label
    t0 = time.perf_counter()
    reused = reuse and finished_run(run_dir, cfg)
    if reused:
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        print(f"[bench] {label}: reusing the finished run in {run_dir}", file=sys.stderr, flush=True)
    else:
        metrics = train(cfg, run_dir, resume=False, progress=False)
    train_wall = metrics["wall_clock_s_this_call"] if reused else time.perf_counter() - t0
    source = NetworkQSource.from_artifact(run_dir / "agent")
    acc = q_accuracy(source, resolution)
    roll = q_accuracy_rollout(source, ROLLOUT_STATES, seed=0)
    tr = cfg.training
    return {
        "label": label,
        "task": cfg.task,
        "config": f"configs/agents/{config}",
        "env_steps": metrics["env_steps"],
        "iterations": metrics["iterations"],
        "train_wall_s": metrics["wall_clock_s_this_call"],
        "total_wall_s": train_wall,
        "env_steps_per_s": metrics["env_steps_per_s_this_call"],
        "success_rate": metrics["success_rate"],
        "success_per_goal": metrics["success_per_goal"],
        "mean_return": metrics["mean_return"],
        "q_nmse": acc["q_nmse"],
        "q_mse": acc["q_mse"],
        "q_nmse_per_goal": acc["q_nmse_per_goal"],
        "q_mse_per_goal": acc["q_mse_per_goal"],
        "q_resolution": acc["resolution"],
        "q_num_nodes": acc["num_nodes"],
        "q_eval_s": acc["seconds"],
        "q_accuracy": acc,
        "q_nmse_rollout": roll["q_nmse"],
        "q_mse_rollout": roll["q_mse"],
        "q_accuracy_rollout": roll,
        "hyperparameters": {
            "algorithm": cfg.algorithm,
            "optimizer": tr.optimizer or ("radam" if cfg.algorithm == "pqn" else "adam"),
            "num_epochs": tr.num_epochs,
            "hiddens": list(cfg.network.hiddens),
            "input_dims": cfg.network.input_dims,
            "her": f"{cfg.her.strategy} k={cfg.her.k}",
            "num_envs": tr.num_envs,
            "rollout_fragment_length": tr.rollout_fragment_length,
            "train_batch_size": tr.train_batch_size,
            "training_intensity": tr.training_intensity,
            "lr": tr.lr,
            "target_update_freq": tr.target_update_freq,
        },
        "run_dir": str(run_dir),
        "reused_finished_run": reused,
        "equivalent_command": f"plray train {run_dir}/config.yaml --out {run_dir} --no-resume",
    }


def markdown(payload: dict[str, Any]) -> str:
    rows = [
        {
            "run": r["label"],
            "task": r["task"],
            "algorithm": r["hyperparameters"].get("algorithm", "dqn"),
            "env steps": r["env_steps"],
            "train s": round(r["train_wall_s"], 1),
            "steps/s": round(r["env_steps_per_s"]),
            "success": round(r["success_rate"], 3),
            "success per goal": " / ".join(f"{x:.2f}" for x in r["success_per_goal"]),
            "Q_NMSE": round(r["q_nmse"], 4),
            "Q_NMSE rollouts": round(r["q_nmse_rollout"], 4) if "q_nmse_rollout" in r else "-",
            "Q_MSE": f"{r['q_mse']:.3g}",
            "grid": "x".join(str(n) for n in r["q_resolution"]),
            "command": f"`{r.get('command', payload['command'])}`",
        }
        for r in payload["runs"]
    ]
    m = payload["machine"]
    lines = [
        "# Agent training on this machine: throughput, success and Q accuracy",
        "",
        f"Command: `{payload['command']}` (rows from partial re-runs with `--only` record their own command "
        "and machine in the JSON).",
        "",
        f"Machine: {m['cpus']} CPUs ({m['processor']}), python {m['python']}, plray {m['plray']} @ {m['commit']}, "
        f"{m['date']}.",
        "",
        "Success: greedy, 64 episodes per training goal (MountainCar goals x = -1.2, -0.6, 0.0, 0.6; Reacher "
        "fingertip goals (1,0), (0,1), (-1,0), (0,-1)). Q_NMSE rollouts: the same NMSE on 2048 states uniform "
        "over the state box against Q^pi from exact rollouts of the greedy policy on the true dynamics (no grid, "
        "so no interpolation error; plray.evaluation.q_accuracy.q_accuracy_rollout). "
        "Q_NMSE / Q_MSE: the agent's Q vs Q^pi of its own greedy "
        "policy by grid policy evaluation under the true dynamics (N-linear interpolation, tol 1e-10), "
        "MSE / Var(Q^pi) averaged over goals and actions (docs/method.md#q-accuracy). "
        "Paper targets: MountainCar-position Q_NMSE 0.10 (PQN, 5e6 steps, GPU); Reacher success >= 90%.",
        "",
        markdown_table(rows, list(rows[0]) if rows else []),
        "",
        "Configs (with the env-step budget overridden per run): "
        + ", ".join(sorted({f"`{r['config']}`" for r in payload["runs"]}))
        + ". Run directories (config.yaml, agent/, metrics.json, progress.jsonl) under "
        f"`{payload['out']}`.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="two tiny runs (smoke test, about a minute)")
    parser.add_argument("--out", default="/tmp/plray-bench-agents", help="root of the run directories")
    parser.add_argument("--only", nargs="*", default=None, help="run only these labels")
    parser.add_argument("--reacher-resolution", type=int, default=20, help="Reacher Q grid nodes per dim")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="evaluate finished runs of the same config found under --out again instead of retraining them",
    )
    parser.add_argument("--mc-resolution", type=int, default=200, help="MountainCar Q grid nodes per dim")
    args = parser.parse_args()

    runs = QUICK_RUNS if args.quick else FULL_RUNS
    if args.only:
        unknown = set(args.only) - {r[0] for r in runs}
        if unknown:
            parser.error(f"--only: unknown labels {sorted(unknown)}; choose from {[r[0] for r in runs]}")
        runs = [r for r in runs if r[0] in args.only]
    resolutions = {"mc": args.mc_resolution, "reacher": args.reacher_resolution}
    out_root = Path(args.out).resolve()
    inside = out_root == ROOT or ROOT in out_root.parents
    if inside and out_root.relative_to(ROOT).parts[:1] != ("runs",):
        parser.error("--out: write run directories under /tmp or runs/ (gitignored), not the tracked tree")
    name = "agents_quick" if args.quick else "agents"
    payload: dict[str, Any] = {
        "benchmark": "agents",
        "command": "python bench/agents.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "machine": machine(),
        "out": str(out_root),
        "torch_threads": torch.get_num_threads(),
        "runs": [],
    }
    previous = RESULTS / f"{name}.json"
    if args.only and previous.is_file():
        # a partial re-run keeps the other runs' rows (each row records its own command line)
        kept = json.loads(previous.read_text(encoding="utf-8")).get("runs", [])
        payload["runs"] = [r for r in kept if r["label"] not in set(args.only)]
    order = {r[0]: i for i, r in enumerate(QUICK_RUNS if args.quick else FULL_RUNS)}
    for label, config, steps, key in runs:
        print(f"[bench] {label}: {config} for {steps} env steps", file=sys.stderr, flush=True)
        row = run_one(label, config, steps, resolutions[key], out_root, reuse=args.reuse)
        row["command"] = payload["command"]
        row["machine"] = payload["machine"] | {"torch_threads": payload["torch_threads"]}
        payload["runs"] = sorted([*payload["runs"], row], key=lambda r: order.get(r["label"], len(order)))
        print(
            f"[bench] {label}: {row['env_steps']} steps in {row['train_wall_s']:.0f}s "
            f"({row['env_steps_per_s']:.0f}/s), success {row['success_rate']:.3f}, "
            f"Q_NMSE {row['q_nmse']:.4f} (grid eval {row['q_eval_s']:.0f}s)",
            file=sys.stderr,
            flush=True,
        )
        write_results(name, payload, markdown(payload))
    print(markdown(payload))


if __name__ == "__main__":
    main()
