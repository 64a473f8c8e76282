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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, timed, write_results  # noqa: E402
from plray.core import bellman_matrix_from_q, extract  # noqa: E402
from plray.envs import FourRooms  # noqa: E402
from plray.envs.fourrooms import DEFAULT_GAMMA  # noqa: E402
from plray.evaluation import kernel_metrics, value_iteration  # noqa: E402
from plray.evaluation.report import markdown_table  # noqa: E402


def agent(variant: str, num_goals: int) -> tuple[FourRooms, Any, Any, Any]:
    env = FourRooms(variant)
    goals = env.goal_set(num_goals, "generic", seed=0)
    Q = value_iteration(env.kernel, goals.rewards, goals.dones, DEFAULT_GAMMA).Q
    M = bellman_matrix_from_q(Q, goals.rewards, DEFAULT_GAMMA, goals.dones)
    return env, goals, Q, M


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sampled updates (smoke run)")
    args = parser.parse_args()
    repeats = 2 if args.quick else 5
    sampled_updates = 500 if args.quick else 20_000
    gradient_iters = 2_000 if args.quick else 200_000

    rows: list[dict[str, Any]] = []

    def record(variant: str, G: int, method: str, run: Any, reps: int, P: Any) -> None:
        ext, times = timed(run, reps)
        row = {
            "variant": variant,
            "num_goals": G,
            "method": method,
            "seconds_median": statistics.median(times),
            "seconds_min": min(times),
            "repeats": reps,
            **kernel_metrics(ext.kernel, P),
        }
        row |= {k: v for k, v in ext.info.items() if k in ("updates_per_s", "iterations", "converged", "updates")}
        rows.append(row)
        print(f"{variant:13s} |G|={G:<3d} {method:28s} {row['seconds_median']:.4f} s  tv_mean={row['tv_mean']:.2e}")

    for variant in ("deterministic", "windy", "teleport"):
        env, goals, Q, M = agent(variant, 68)
        P = env.kernel
        kw = {"gamma": DEFAULT_GAMMA}
        record(variant, 68, "closed-form", lambda Q=Q, M=M: extract(Q, M, "closed-form", **kw), repeats, P)
        record(
            variant,
            68,
            "closed-form (projected)",
            lambda Q=Q, M=M: extract(Q, M, "closed-form", project=True, **kw),
            repeats,
            P,
        )
        record(
            variant,
            68,
            f"gradient ({gradient_iters} it max)",
            lambda Q=Q, M=M: extract(Q, M, "gradient", max_iters=gradient_iters, **kw),
            1,
            P,
        )
        record(
            variant,
            68,
            "sampled (full sweep)",
            lambda Q=Q, M=M: extract(Q, M, "sampled", num_updates=sampled_updates, **kw),
            1,
            P,
        )
        record(
            variant,
            68,
            "sampled (batch 4096)",
            lambda Q=Q, M=M: extract(Q, M, "sampled", num_updates=sampled_updates, batch_size=4096, **kw),
            1,
            P,
        )
        record(
            variant,
            68,
            "wvf (local pinv)",
            lambda Q=Q, M=M, env=env, goals=goals: extract(
                Q, M, "wvf", candidates=env.local_candidates(), goal_states=goals.states, **kw
            ),
            repeats,
            P,
        )
        if variant == "deterministic":
            env1, _, Q1, M1 = agent(variant, 1)
            record(variant, 1, "column-match", lambda: extract(Q1, M1, "column-match", **kw), repeats, P)
            record(variant, 1, "value-argmin", lambda: extract(Q1, M1, "value-argmin", **kw), repeats, P)
            record(variant, 68, "column-match", lambda Q=Q, M=M: extract(Q, M, "column-match", **kw), repeats, P)

    columns = ("variant", "num_goals", "method", "seconds_median", "tv_mean", "tv_max", "updates_per_s", "converged")
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
