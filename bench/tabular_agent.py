"""Benchmark: the learned tabular FourRooms agent, and P-learning from its Q-values.

    python bench/tabular_agent.py [--quick] [--steps 1e5 3e5 1e6 3e6 1e7] [--seeds 0 1 2] [--variants windy] [--jobs 2]

For each variant and goal count of the paper's FourRooms study (deterministic |G| in {1, 3, 5},
windy {1, 2, 3, 4}, teleport {5, 10, 20, 68}; generic goals, random placement, goal seed = run seed)
the goal-conditioned tabular Q-learner (:mod:`plray.agents.tabular`, settings of
``recommended_config(variant)`` unless overridden by the flags) is trained once up to the largest
step count, with snapshots at the others. Each snapshot, and the exact Q* for reference
(``env_steps`` 0), is then inverted exactly as :func:`plray.experiments.fourrooms.run_fourrooms`
does: M = bellman_matrix_from_q(Q, r, γ, done), extraction by ``closed-form`` (projected onto the
simplex), ``simplex`` over each state's local candidates, and ``column-match`` (deterministic
variant), then the kernel's mean TV and MSE to the truth and R_WM / R* averaged over
``FourRooms.unseen_tasks()``.

Q error: ``q_max_abs`` = max |Q − Q*|; ``q_rel_mse`` = Σ (Q − Q*)² / Σ Q*². Writes
bench/results/<name>.{json,md} (``--name``, default ``tabular_agent``).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.common import machine, write_results
from plray.agents.tabular import recommended_config, train_tabular_q
from plray.core import bellman_matrix_from_q, extract
from plray.core.types import FloatArray
from plray.envs import FourRooms, GoalSet
from plray.envs.fourrooms import DEFAULT_GAMMA
from plray.envs.goalsets import goal_set_label
from plray.evaluation import kernel_metrics, unseen_summary, value_iteration
from plray.evaluation.report import markdown_table
from plray.experiments.fourrooms import method_options

STUDY: dict[str, tuple[int, ...]] = {"deterministic": (1, 3, 5), "windy": (1, 2, 3, 4), "teleport": (5, 10, 20, 68)}
TARGET_GOALS = {"deterministic": 1, "windy": 4, "teleport": 20}
TARGET_RATIO = 0.95


def methods(variant: str) -> list[str]:
    out = ["closed-form", "simplex"]
    return [*out, "column-match"] if variant == "deterministic" else out


def evaluate(mdp: FourRooms, goals: GoalSet, Q: FloatArray, Q_star: FloatArray, method: str) -> dict[str, Any]:
    """Extract from Q with one method and score it as run_fourrooms does."""
    gamma = DEFAULT_GAMMA
    P = mdp.kernel
    M = bellman_matrix_from_q(Q, goals.rewards, gamma, goals.dones)
    name, options = method_options(mdp, method, goals.states, local=True, project=True)
    ext = extract(Q, M, name, gamma=gamma, **options)
    unseen = unseen_summary(ext.kernel, mdp, gamma)
    err = Q - Q_star
    return {
        "q_max_abs": float(np.abs(err).max()),
        "q_rel_mse": float((err**2).sum() / (Q_star**2).sum()),
        **kernel_metrics(ext.kernel, P),
        **{k: unseen[k] for k in ("return_wm", "return_opt", "return_ratio")},
        "extract_seconds": float(ext.info["seconds"]),
    }


def run_case(job: tuple[str, int, int, list[int], dict[str, Any]]) -> list[dict[str, Any]]:
    """Train one agent (variant, |G|, seed) to max(steps) and evaluate every snapshot and Q*."""
    variant, num_goals, seed, steps, learner = job
    mdp = FourRooms(variant)
    goals = mdp.goal_set(num_goals, "generic", placement="random", seed=seed)
    Q_star = value_iteration(mdp.kernel, goals.rewards, goals.dones, DEFAULT_GAMMA).Q
    cfg = recommended_config(variant, env_steps=max(steps), seed=seed, **learner)
    result = train_tabular_q(mdp, goals, DEFAULT_GAMMA, cfg, snapshot_steps=steps)
    tables = {0: Q_star, **{k: result.snapshots[k] for k in steps}}
    rows = []
    for env_steps, Q in tables.items():
        for method in methods(variant):
            row = {
                "task": "fourrooms",
                "source": "agent" if env_steps else "oracle",  # env_steps 0: Q* itself
                "algorithm": "q-learning" if env_steps else "value-iteration",
                "goal_set": goal_set_label("generic", "random", num_goals),
                "wm_nmse": None,  # FourRooms' error is the kernel's: kernel_mse, tv_mean, tv_max
                "variant": variant,
                "num_goals": num_goals,
                "seed": seed,
                "env_steps": env_steps,
                "method": method,
            }
            row |= evaluate(mdp, goals, Q, Q_star, method)
            row |= {"train_seconds": result.seconds, "steps_per_s": result.steps_per_s, "total_steps": max(steps)}
            rows.append(row)
    best = max((r for r in rows if r["env_steps"] == max(steps)), key=lambda r: r["return_ratio"])
    print(
        f"{variant:13s} |G|={num_goals:<3d} seed={seed} trained {max(steps):.0e} steps in {result.seconds:5.1f} s "
        f"({result.steps_per_s / 1e6:.2f} M/s); best {best['method']}: R_WM/R*={best['return_ratio']:.3f} "
        f"tv={best['tv_mean']:.2e}",
        flush=True,
    )
    return rows


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean (and worst seed's R_WM/R*) over seeds per (variant, |G|, env_steps, method)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["variant"], r["num_goals"], r["env_steps"], r["method"])].append(r)
    order = {v: i for i, v in enumerate(STUDY)}
    out = []
    for (variant, G, steps, method), rs in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], *kv[0][1:])):
        mean = lambda k, rs=rs: float(np.mean([r[k] for r in rs]))  # noqa: E731
        out.append(
            {
                "variant": variant,
                "num_goals": G,
                "env_steps": "exact Q*" if steps == 0 else f"{steps:.0e}",
                "steps": steps,
                "method": method,
                "seeds": len(rs),
                "q_max_abs": mean("q_max_abs") if steps else 0.0,
                "q_rel_mse": mean("q_rel_mse") if steps else 0.0,
                "tv_mean": mean("tv_mean"),
                "kernel_mse": mean("kernel_mse"),
                "ratio_mean": mean("return_ratio"),
                "ratio_min": float(min(r["return_ratio"] for r in rs)),
            }
        )
    return out


def recommendations(agg: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per variant at the paper's goal count: the fewest steps at which a method reaches the target."""
    out = []
    for variant, G in TARGET_GOALS.items():
        cands = [
            a
            for a in agg
            if a["variant"] == variant and a["num_goals"] == G and a["steps"] > 0 and a["ratio_min"] >= TARGET_RATIO
        ]
        if not cands:
            out.append({"variant": variant, "num_goals": G, "env_steps": "not reached", "method": ""})
            continue
        best = min(cands, key=lambda a: (a["steps"], -a["ratio_mean"]))
        out.append(
            {
                "variant": variant,
                "num_goals": G,
                "env_steps": best["env_steps"],
                "method": best["method"],
                "ratio_mean": best["ratio_mean"],
                "ratio_min": best["ratio_min"],
                "tv_mean": best["tv_mean"],
            }
        )
    return out


def parse_steps(text: str) -> int:
    return int(float(text))


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1e5 and 3e5 steps, seed 0 (smoke run)")
    parser.add_argument(
        "--steps", type=parse_steps, nargs="+", default=[100_000, 300_000, 1_000_000, 3_000_000, 10_000_000]
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", choices=list(STUDY), default=list(STUDY))
    parser.add_argument("--goals", type=int, nargs="+", default=None, help="restrict the goal counts")
    overrides = "overrides recommended_config(variant)"
    parser.add_argument("--num-envs", type=int, help=overrides)
    parser.add_argument("--episode-length", type=int, help=overrides)
    parser.add_argument("--lr-power", type=float, help=overrides)
    parser.add_argument("--lr-offset", type=float, help=overrides)
    parser.add_argument("--lr-min", type=float, help=overrides)
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (one numpy thread each)")
    parser.add_argument("--name", default="tabular_agent", help="result file name under bench/results")
    return parser


def markdown(configs: dict, recs: list[dict], agg: list[dict], speed_rows: list[dict], flags: str) -> str:
    """The benchmark's markdown report."""
    return "\n".join(
        [
            "# Learned tabular FourRooms agent: Q error and P-learning from it",
            "",
            "Goal-conditioned tabular Q-learning (plray/agents/tabular.py): uniform random behaviour, all-goals",
            "relabelling; generic goals, random placement (goal seed = run seed),",
            f"gamma = {DEFAULT_GAMMA}. Rows `exact Q*` extract from Q* itself. Learner settings per variant",
            "(`recommended_config`; env_steps and seed set per run):",
            "",
            *(f"* {v}: {c}" for v, c in configs.items()),
            "",
            "`q_max_abs` = max |Q - Q*|, `q_rel_mse` = sum (Q - Q*)^2 / sum Q*^2; `tv_mean`: mean total variation",
            "of the extracted kernel (closed-form: projected onto the simplex; simplex: local candidates);",
            "`ratio_mean` / `ratio_min`: R_WM / R* averaged over the three unseen tasks, mean and worst over seeds.",
            "",
            f"Command: `python bench/tabular_agent.py{' ' + flags if flags else ''}`",
            "",
            f"## Fewest steps reaching R_WM / R* >= {TARGET_RATIO} on every seed (paper's goal counts)",
            "",
            markdown_table(recs, ("variant", "num_goals", "env_steps", "method", "ratio_mean", "ratio_min", "tv_mean")),
            "",
            "## All runs (mean over seeds)",
            "",
            markdown_table(
                agg,
                (
                    "variant",
                    "num_goals",
                    "env_steps",
                    "method",
                    "seeds",
                    "q_max_abs",
                    "q_rel_mse",
                    "tv_mean",
                    "kernel_mse",
                    "ratio_mean",
                    "ratio_min",
                ),
            ),
            "",
            "## Training speed (per worker process, one numpy thread each; `--jobs` processes run side by side)",
            "",
            markdown_table(speed_rows, ("variant", "num_goals", "steps_per_s", "seconds_1e7")),
            "",
            f"Machine: {machine()}",
            "",
        ]
    )


def main() -> None:
    args = build_parser().parse_args()
    steps = [100_000, 300_000] if args.quick else sorted(set(args.steps))
    seeds = [0] if args.quick else args.seeds
    learner = {
        name: getattr(args, name)
        for name in ("num_envs", "episode_length", "lr_power", "lr_offset", "lr_min")
        if getattr(args, name) is not None
    }
    configs = {v: asdict(recommended_config(v, **learner)) for v in args.variants}
    jobs = [
        (variant, G, seed, steps, learner)
        for variant in args.variants
        for G in STUDY[variant]
        if args.goals is None or G in args.goals
        for seed in seeds
    ]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            rows = [r for rs in pool.map(run_case, jobs) for r in rs]
    else:
        rows = [r for job in jobs for r in run_case(job)]

    agg = aggregate(rows)
    recs = recommendations(agg)
    speed = defaultdict(list)
    for r in rows:
        speed[(r["variant"], r["num_goals"])].append(r["steps_per_s"])
    speed_rows = [
        {"variant": v, "num_goals": G, "steps_per_s": float(np.mean(s)), "seconds_1e7": 1e7 / float(np.mean(s))}
        for (v, G), s in speed.items()
    ]
    flags = " ".join(sys.argv[1:])
    md = markdown(configs, recs, agg, speed_rows, flags)
    payload = {
        "machine": machine(),
        "command": f"python bench/tabular_agent.py {flags}".strip(),
        "learner_overrides": learner,
        "configs": configs,
        "steps": steps,
        "seeds": seeds,
        "recommendations": recs,
        "aggregate": agg,
        "speed": speed_rows,
        "rows": rows,
    }
    json_path, md_path = write_results(args.name, payload, md)
    print(f"\nwrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
