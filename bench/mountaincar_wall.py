"""Benchmark: what MountainCar's Q-values can and cannot say about the dynamics at the left wall.

    python bench/mountaincar_wall.py [--states N] [--resolution R] [--model TASK=WORLD_MODEL ...]

Neural P-learning from the oracle reaches WM_NMSE ~2.3e-5 away from the left wall but ~6.4e-3
overall (bench/results/extraction_mc_eval250k.md): the error sits on the ~0.9% of (s, a) pairs that hit the
wall, where gymnax zeroes the velocity. This benchmark scores hand-built successor functions
against the oracle's Bellman equation, on uniform states (the extraction's evaluation
distribution), for both MountainCar agents (position and velocity goals):

* ``truth``: the true dynamics;
* ``continuation``: the truth, except that wall hits keep the free velocity (x' clipped to the
  wall, v' < 0 not zeroed): what gradient-based P-learning converges to;
* ``plateau p``: the truth, except that every (s, a) whose true successor lies in the plateau P
  (states from which every action hits the wall next step) gets the fixed successor p ∈ P.

and any extracted world models given with ``--model``. For each: WM_NMSE against the truth, and
the oracle's all-goal Bellman residual mean_g |Q(s, a, g) − r(s', g) − γ (1 − done) V(s', g)| over
all (s, a), over the wall hits and over the pairs whose true successor lies in the plateau. A model
whose residuals match the truth's is one the Q-values cannot tell from the truth: no P-learning,
gradient-based or not, can pick between them.
Writes bench/results/mountaincar_wall.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, model_fields, wm_fields, write_results
from plray.core.model_io import load_world_model
from plray.core.neural import bellman_targets
from plray.envs.mountaincar import MountainCarTask, _free_velocity
from plray.envs.registry import make_task
from plray.evaluation.oracle import OracleQSource
from plray.evaluation.report import markdown_table
from plray.evaluation.wm_metrics import evaluation_states, wm_errors

Successor = Callable[[np.ndarray, np.ndarray], np.ndarray]
PLATEAU_POINTS = ((-1.2, -0.07), (-1.2, -0.01), (-1.15, -0.07))


def continuation(task: MountainCarTask) -> Successor:
    """The truth, with wall hits keeping their free velocity (what P-learning learns there)."""

    def step(states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        out = task.next_state(states, actions)
        hit = task.left_wall_contact(states, actions)
        out[hit, 1] = _free_velocity(states, actions)[hit]
        return out

    return step


def plateau_swap(task: MountainCarTask, point: tuple[float, float]) -> Successor:
    """The truth, with every successor inside the plateau replaced by ``point`` (itself in the plateau)."""
    p = np.asarray(point, dtype=np.float64)
    if not task.wall_plateau(p[None])[0]:
        raise ValueError(f"{point} is not in the plateau")

    def step(states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        out = task.next_state(states, actions)
        out[task.wall_plateau(out)] = p
        return out

    return step


def all_goal_residual(
    oracle: OracleQSource, task: MountainCarTask, s: np.ndarray, a: np.ndarray, nxt: np.ndarray
) -> np.ndarray:
    """Per pair, mean over the training goals of |Q(s, a, g) − r(s', g) − γ (1 − done) V(s', g)|, shape (B,)."""
    goals = torch.as_tensor(np.asarray(task.training_goals), dtype=torch.float32)
    g_n, b = len(goals), len(s)
    st = torch.as_tensor(task.observe(s), dtype=torch.float32).repeat_interleave(g_n, 0)
    at = torch.as_tensor(a).repeat_interleave(g_n)
    gt = goals.repeat(b, 1)
    with torch.no_grad():
        q = oracle.q(st, gt, at)
        y = bellman_targets(oracle, task, torch.as_tensor(nxt, dtype=torch.float32).repeat_interleave(g_n, 0), gt)
    return (q - y).abs().reshape(b, g_n).mean(-1).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--states", type=int, default=100_000, help="uniform evaluation states")
    parser.add_argument("--resolution", type=int, default=200, help="oracle grid points per dim")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="TASK=PATH",
        help="also score this extracted world model (a world_model artifact directory)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    extracted = [m.split("=", 1) for m in args.model]
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    fractions: dict[str, dict[str, float]] = {}
    for name in ("mountaincar-position", "mountaincar-velocity"):
        task = make_task(name)
        assert isinstance(task, MountainCarTask)
        oracle = OracleQSource(task, args.resolution)
        states = evaluation_states(task, args.states, np.random.default_rng(args.seed), "uniform")
        n_act = int(task.num_actions or 0)
        s_all = np.repeat(states, n_act, axis=0)
        a_all = np.tile(np.arange(n_act), len(states))
        true_next = task.next_state(s_all, a_all)
        wall = task.left_wall_contact(s_all, a_all)
        plateau = task.wall_plateau(true_next) & ~wall
        built = wm_fields(task, "constructed", "dynamics")
        models: list[tuple[str, Successor, dict[str, Any]]] = [
            ("truth", task.next_state, wm_fields(task, "truth", "dynamics")),
            ("continuation", continuation(task), built),
        ]
        models += [(f"plateau ({p[0]}, {p[1]})", plateau_swap(task, p), built) for p in PLATEAU_POINTS]
        for model_task, path in extracted:
            if model_task == name:
                models.append((f"extracted: {path}", load_world_model(path)[0].predict, model_fields(path)))
        for label, model, ids in models:
            res = all_goal_residual(oracle, task, s_all, a_all, model(s_all, a_all))
            rows.append(
                {
                    **ids,
                    "model": label,
                    "wm_nmse": wm_errors(model, task, states, space="state")["wm_nmse"],
                    "residual_all": float(res.mean()),
                    "residual_wall": float(res[wall].mean()),
                    "residual_plateau": float(res[plateau].mean()),
                }
            )
            print(f"[{name}] {label}: WM_NMSE {rows[-1]['wm_nmse']:.2e}", flush=True)
        fractions[name] = {"wall": float(wall.mean()), "plateau": float(plateau.mean())}
    seconds = time.perf_counter() - start
    payload = {"machine": machine(), "args": vars(args), "rows": rows, "fractions": fractions, "seconds": seconds}
    frac = fractions["mountaincar-position"]
    md = [
        "# MountainCar's left wall: which successors the Q-values pin down",
        "",
        "Command: `python " + " ".join(["bench/mountaincar_wall.py", *sys.argv[1:]]) + "`",
        "",
        f"{args.states} uniform states x 3 actions; oracle: Q* by value iteration on a {args.resolution}² grid.",
        "`residual_*`: the oracle's Bellman residual |Q(s,a,g) − r(s',g) − γ(1−done)V(s',g)| at the model's s',",
        f"averaged over the training goals and over all pairs, the wall hits ({frac['wall']:.2%} of pairs: v' is",
        f"zeroed) and the pairs whose true successor lies in the plateau without a wall hit ({frac['plateau']:.2%}).",
        "`continuation`: wall hits keep their free velocity (what gradient-based P-learning converges to);",
        "`plateau p`: the truth with every successor inside the plateau (where every action hits the wall",
        "next) moved to the plateau state p.",
        "",
        markdown_table(rows, ("task", "model", "wm_nmse", "residual_all", "residual_wall", "residual_plateau")),
        "",
        "A model whose residuals match the truth's fits the agent's Bellman equation as well as the truth.",
        f"Wall-clock {seconds:.0f} s; {payload['machine']['cpus']} CPUs, commit {payload['machine']['commit']}.",
        "",
    ]
    write_results("mountaincar_wall", payload, "\n".join(md))


if __name__ == "__main__":
    main()
