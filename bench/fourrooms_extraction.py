"""Benchmark: time to extract the full FourRooms kernel by each method, and sampled updates/s.

    python bench/fourrooms_extraction.py [--quick]

For every variant, an exact agent on all 68 generic goals (plus one generic goal for the
deterministic-only methods) is inverted by each method; the table gives the median wall-clock
over repeats and the accuracy reached (mean and max TV to the true kernel). The sampled method
is timed at full-sweep updates (all S·A·G = 18 496 tuples per update) and at 4 096-tuple
minibatches. Writes bench/results/fourrooms_extraction.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, timed, write_results
from plray.core import bellman_matrix_from_q, extract
from plray.envs import FourRooms
from plray.envs.fourrooms import DEFAULT_GAMMA
from plray.envs.goalsets import goal_set_label
from plray.evaluation import kernel_metrics, value_iteration
from plray.evaluation.report import markdown_table


def agent(variant: str, num_goals: int) -> tuple[FourRooms, Any, Any, Any]:
    env = FourRooms(variant)
    goals = env.goal_set(num_goals, "generic", seed=0)
    Q = value_iteration(env.kernel, goals.rewards, goals.dones, DEFAULT_GAMMA).Q
    M = bellman_matrix_from_q(Q, goals.rewards, DEFAULT_GAMMA, goals.dones)
    return env, goals, Q, M


def _identity(num_goals: int) -> dict[str, Any]:
    """A row's bench.common.WM_ROW_KEYS: Q* by value iteration on G generic goals; no WM_NMSE on FourRooms."""
    return {
        "task": "fourrooms",
        "source": "oracle",
        "algorithm": "value-iteration",
        "goal_set": goal_set_label("generic", "random", num_goals),
        "wm_nmse": None,  # FourRooms' error is the kernel's: kernel_mse, tv_mean, tv_max
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sampled updates (smoke run)")
    args = parser.parse_args()
    repeats = 2 if args.quick else 5
    sampled_updates = 500 if args.quick else 20_000
    gradient_iters = 2_000 if args.quick else 200_000

    rows: list[dict[str, Any]] = []
    for variant in ("deterministic", "windy", "teleport"):
        env, goals, Q, M = agent(variant, 68)
        local = {"candidates": env.local_candidates(), "goal_states": goals.states}
        # (label, goals, method, options, repeats): slow iterative methods run once
        cases: list[tuple[str, int, str, dict[str, Any], int]] = [
            ("closed-form", 68, "closed-form", {}, repeats),
            ("closed-form (projected)", 68, "closed-form", {"project": True}, repeats),
            (f"gradient ({gradient_iters} it max)", 68, "gradient", {"max_iters": gradient_iters}, 1),
            ("sampled (full sweep)", 68, "sampled", {"num_updates": sampled_updates}, 1),
            ("sampled (batch 4096)", 68, "sampled", {"num_updates": sampled_updates, "batch_size": 4096}, 1),
            ("wvf (local pinv)", 68, "wvf", local, repeats),
        ]
        if variant == "deterministic":
            cases += [
                ("column-match", 1, "column-match", {}, repeats),
                ("value-argmin", 1, "value-argmin", {}, repeats),
                ("column-match", 68, "column-match", {}, repeats),
            ]
        one_goal = agent(variant, 1) if variant == "deterministic" else None
        for label, G, method, options, reps in cases:
            Qc, Mc = (Q, M) if G == 68 else (one_goal[2], one_goal[3])  # type: ignore[index]
            ext, times = timed(partial(extract, Qc, Mc, method, gamma=DEFAULT_GAMMA, **options), reps)
            row = {
                **_identity(G),
                "variant": variant,
                "num_goals": G,
                "method": label,
                "seconds_median": statistics.median(times),
                "seconds_min": min(times),
                "repeats": reps,
                **kernel_metrics(ext.kernel, env.kernel),
            }
            keep = ("updates_per_s", "iterations", "converged", "updates")
            row |= {k: v for k, v in ext.info.items() if k in keep}
            rows.append(row)
            print(f"{variant:13s} |G|={G:<3d} {label:28s} {row['seconds_median']:.4f} s  tv_mean={row['tv_mean']:.2e}")

    columns = (
        "variant",
        "num_goals",
        "method",
        "seconds_median",
        "tv_mean",
        "tv_max",
        "updates_per_s",
        "converged",
    )
    md = "\n".join(
        [
            "# FourRooms kernel extraction",
            "",
            "Exact goal-conditioned agent (Q* by value iteration), generic goals, gamma = 0.95; S = 68, A = 4.",
            "`seconds_median`: median wall-clock of extracting all 68 x 4 rows; tv: total variation to the",
            "true kernel. The sampled method's `updates_per_s` counts parameter updates (a full sweep is",
            "18 496 (s, a, g) tuples, each with two next-state draws).",
            "",
            "Command: `python bench/fourrooms_extraction.py`" + (" --quick" if args.quick else ""),
            "",
            markdown_table(rows, columns),
            "",
            f"Machine: {machine()}",
            "",
        ]
    )
    json_path, md_path = write_results(
        "fourrooms_extraction",
        {"machine": machine(), "quick": args.quick, "rows": rows},
        md,
    )
    print(f"\nwrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
