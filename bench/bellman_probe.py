"""Benchmark: which state dimensions do trained agents' Q-values pin down? (plray.evaluation.probe)

For each agent artifact (``plray train``'s ``agent/`` directory, or an agent of a ``plray run``
directory), the mean squared Bellman residual of its Q-values against the true successor with one
state dimension's per-step change scaled by c (c = 1: the true dynamics, c = 0: the action does not
move that dimension), on the task's reset states, every action (continuous tasks: 16 uniform draws)
and the agent's training goals. Reported per dimension: the favoured scale (least residual) and the
contrast R(0) / R(1) (above 1: the Q-values prefer the true change to none). A dimension the
Q-values favour c ≈ 0 on cannot be recovered by P-learning from that agent, however long it runs.

Usage::

    python bench/bellman_probe.py --agent runs/mujoco-reacher-pqn/agents/none-g4-fingertip-paper-s0/agent \
        --agent runs/reacher-pqn/agent [--states 2000] [--name bellman_probe]

writes ``bench/results/bellman_probe.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import agent_fields, machine, write_results
from plray.evaluation.report import markdown_table

DIM_NAMES = {4: ("θ1", "θ2", "ω1", "ω2"), 2: ("x", "v")}
"""Column names of the state dimensions by state size (the Reacher tasks, MountainCar)."""


def probe_row(agent: Path, states: int, seed: int) -> dict[str, Any]:
    """One agent's probe row: identifying fields, training figures and the probe's per-dimension results."""
    import numpy as np

    from plray.agents.qsource import load_qsource
    from plray.evaluation.probe import bellman_probe

    source = load_qsource(agent)
    manifest = json.loads((agent / "manifest.json").read_text())
    metrics = manifest.get("metrics") or {}
    t0 = time.perf_counter()
    result = bellman_probe(source, source.task.reset_states(states, np.random.default_rng(seed)))
    names = DIM_NAMES.get(source.task.state_dim, tuple(f"d{j}" for j in range(source.task.state_dim)))
    row: dict[str, Any] = {
        **agent_fields(agent),
        "agent": str(agent),
        "env_steps": manifest.get("env_steps"),
        "success_rate": metrics.get("success_rate"),
        "dims": list(names),
        "probe": result.to_dict(),
        "probe_seconds": time.perf_counter() - t0,
    }
    return row


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    flat = {k: row[k] for k in ("task", "algorithm", "goal_set", "env_steps", "success_rate")}
    for name, fav, con in zip(row["dims"], row["probe"]["favoured_scale"], row["probe"]["contrast"], strict=True):
        flat[f"c*_{name}"] = fav
        flat[f"R0/R1_{name}"] = con
    return flat


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The benchmark's markdown report: one line per agent, then each agent's residual curves."""
    flat = [_flat(r) for r in rows]
    lines = [
        "# Bellman-consistency probe: which dimensions do the agents' Q-values pin down?",
        "",
        f"Command: `python {' '.join(['bench/bellman_probe.py', *meta['argv']])}`.  ",
        f"Machine: {meta['machine']['cpus']} CPUs, commit {meta['machine']['commit']}, {meta['machine']['date']}; "
        f"load average {meta['load']:.2f}.",
        "",
        markdown_table(flat, list(flat[0]) if flat else []),
        "",
        "`c*_<dim>`: the scale c of the true per-step change of that dimension with the least mean squared",
        "Bellman residual of the agent's Q-values (1: the true dynamics; 0: the action does not move it);",
        "`R0/R1_<dim>`: the residual at c = 0 over that at c = 1 (above 1: the Q-values prefer the true change).",
        "States: the task's reset states; actions: every action (continuous: 16 uniform draws); goals: the",
        "agent's training goals. See plray/evaluation/probe.py.",
        "",
    ]
    for r in rows:
        lines += [f"## {r['task']} {r['algorithm']} {r['env_steps']} steps: residual R(c)", ""]
        table = [{"dim": n, **{f"c={c:g}": v for c, v in zip(r["probe"]["scales"], res, strict=True)}}
                 for n, res in zip(r["dims"], r["probe"]["residual"], strict=True)]  # fmt: skip
        lines += [markdown_table(table, list(table[0])), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", action="append", required=True, type=Path, help="an agent artifact dir (repeatable)")
    parser.add_argument("--states", type=int, default=2000, help="reset states probed per agent (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the probe states")
    parser.add_argument("--name", default="bellman_probe", help="result file name")
    args = parser.parse_args(argv)
    for agent in args.agent:
        if not (agent / "manifest.json").is_file():
            parser.error(f"--agent: {agent} is not an agent artifact (no manifest.json)")
    if args.states < 1:
        parser.error("--states: expected a positive integer")
    rows = []
    for agent in args.agent:
        print(f"[probe] {agent}", flush=True)
        rows.append(probe_row(agent, args.states, args.seed))
    meta = {"machine": machine(), "argv": sys.argv[1:] if argv is None else argv, "load": os.getloadavg()[0]}
    json_path, md_path = write_results(args.name, {**meta, "rows": rows}, markdown(rows, meta))
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
