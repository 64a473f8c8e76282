"""Goal-set sweeps as a results table and plots: read a ``plray run`` directory of a continuous task.

For every cell of the run (one agent per goal set and seed) the table shows the agent (greedy success,
env steps, wall-clock), the world model inverted from it (WM_NMSE and per state dimension), and
R_WM / R* on each of the paper's unseen goals; next to them the paper's WM_NMSE and the oracle's
(neural P-learning from the true Q*, ``bench/results/extraction.json``). The plots put WM_NMSE and
R_WM / R* against the goal set.

Usage::

    plray run configs/experiments/mountaincar-goals-pqn.yaml --run-dir runs/mcg
    python bench/goalsets.py --run-dir runs/mcg --name goalsets_mountaincar

writes ``bench/results/<name>.{json,md,png}``. It reads what the run has finished, so it can be run
on a sweep that is still going (the table says how many cells are done).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, agent_fields, machine, write_results
from plray.evaluation.report import markdown_table

PAPER_WM_NMSE = {"reacher": 1.2e-4, "mountaincar-position": 6.7e-3, "mountaincar-velocity": 6.7e-3}
"""The paper's WM_NMSE from agents (|G| = 4, 10 seeds, GPU)."""
STATE_DIMS = {
    "reacher": ("θ1", "θ2", "ω1", "ω2"),
    "mountaincar-position": ("x", "v"),
    "mountaincar-velocity": ("x", "v"),
}


def _parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist() if path.is_file() else []


def _oracle(task: str) -> dict[str, Any]:
    """The oracle's WM_NMSE and R_WM / R* per unseen goal, from bench/results/extraction.json (if there)."""
    path = RESULTS / "extraction.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    rows = [r for r in data.get("rows", []) if r.get("task") == task and r.get("source") == "oracle"]
    unseen = {u["goal"]: u["ratio"] for u in data.get("unseen", []) if u["task"] == task and u["source"] == "oracle"}
    return {"wm_nmse": rows[0]["wm_nmse"], "unseen": unseen} if rows else {}


Q_RESOLUTION = {"mountaincar-position": 200, "mountaincar-velocity": 200}
"""Grid points per state dim of the agents' Q_NMSE (the paper's 200² for MountainCar). Tasks not listed (the
Reacher: a 4-D grid that fits a CPU's memory, 16⁴-20⁴, smears V^π between nodes) use exact rollouts of the
greedy policy from ROLLOUT_STATES uniform states instead (plray.evaluation.q_accuracy.q_accuracy_rollout)."""
ROLLOUT_STATES = 1024
"""States of the rollout Q_NMSE (x 9 actions x |G| goals rollouts: 16 goals take ~10 min of one core here)."""


def _identity(agent: str | None, task: str) -> dict[str, Any]:
    """The row's WM_ROW_KEYS but wm_nmse, from the agent's manifest (its task and training goals)."""
    if agent and (Path(agent) / "manifest.json").is_file():
        return agent_fields(agent)
    return {"task": task, "source": "agent", "algorithm": None, "goal_set": None, "num_goals": None}


def _q_nmse(agent: str | None, task: str) -> float | None:
    """The agent's Q_NMSE against Q^π of its own greedy policy on its training goals (grid policy evaluation)."""
    if not agent or not (Path(agent) / "manifest.json").is_file():
        return None
    from plray.agents.qsource import load_qsource
    from plray.evaluation.q_accuracy import q_accuracy, q_accuracy_rollout

    print(f"[goalsets] Q_NMSE of {agent}", file=sys.stderr, flush=True)
    source = load_qsource(agent)
    if task in Q_RESOLUTION:
        return float(q_accuracy(source, Q_RESOLUTION[task])["q_nmse"])
    return float(q_accuracy_rollout(source, ROLLOUT_STATES)["q_nmse"])


def collect(run_dir: Path) -> tuple[str, list[dict[str, Any]]]:
    """(task, one row per finished extraction) of a run directory."""
    from plray.experiments.schema import load_experiment

    cfg = load_experiment(run_dir / "config.yaml")
    results = run_dir / "results"
    agents = {a["cell"]: a for a in _parquet(results / "agents.parquet")}
    rows = []
    for job in _parquet(results / "extractions.parquet"):
        manifest = json.loads((Path(job["world_model"]) / "manifest.json").read_text())
        metrics = manifest.get("metrics", {})
        per_dim = metrics.get("state", {}).get("per_dim_nmse", [])
        off_wall = metrics.get("state_off_wall") or {}  # MountainCar: states whose step does not hit the wall
        agent = agents.get(job["cell"], {})
        row = {
            **_identity(agent.get("agent"), cfg.task),
            "wm_nmse": job["wm_nmse"],
            "q_nmse": _q_nmse(agent.get("agent"), cfg.task),
            "cell": job["cell"],
            "goal_family": job["goal_family"],
            "placement": job["placement"],
            "num_goals": job["num_goals"],
            "seed": job["seed"],
            "success_rate": agent.get("success_rate"),
            "agent_env_steps": agent.get("env_steps"),
            "train_seconds": agent.get("train_seconds"),
            "wm_nmse_per_dim": per_dim,
            "wm_nmse_off_wall": off_wall.get("wm_nmse"),
            "wm_nmse_off_wall_per_dim": off_wall.get("per_dim_nmse", []),
        }
        unseen = json.loads(job["unseen"]) if isinstance(job.get("unseen"), str) else job.get("unseen") or {}
        row["return_ratio"] = {
            g: (v["return_wm"] / v["return_opt"] if v["return_opt"] else None) for g, v in sorted(unseen.items())
        }
        rows.append(row)
    rows.sort(key=lambda r: (r["goal_family"], r["placement"], r["num_goals"], r["seed"]))
    return cfg.task, rows


def markdown(task: str, rows: list[dict[str, Any]], meta: dict[str, Any], plot: str | None) -> str:
    """The results table, with the paper's and the oracle's figures, and the plot."""
    dims = STATE_DIMS.get(task, ())
    goals = sorted({g for r in rows for g in r["return_ratio"]})
    flat = []
    for r in rows:
        f = {k: r[k] for k in ("goal_set", "num_goals", "seed", "success_rate", "q_nmse", "wm_nmse")}
        f["agent_steps"] = r["agent_env_steps"]
        f["train_s"] = round(r["train_seconds"]) if r["train_seconds"] is not None else None
        f |= {f"nmse_{d}": v for d, v in zip(dims, r["wm_nmse_per_dim"], strict=False)}
        if r.get("wm_nmse_off_wall") is not None:
            f["off_wall"] = r["wm_nmse_off_wall"]
            f |= {f"off_wall_{d}": v for d, v in zip(dims, r["wm_nmse_off_wall_per_dim"], strict=False)}
        f |= {f"R_WM/R* {g}": r["return_ratio"].get(g) for g in goals}
        flat.append(f)
    cols = ["goal_set", "num_goals", "seed", "agent_steps", "train_s", "success_rate", "q_nmse", "wm_nmse"]
    cols += [f"nmse_{d}" for d in dims]
    if any("off_wall" in f for f in flat):
        cols += ["off_wall"] + [f"off_wall_{d}" for d in dims]
    cols += [f"R_WM/R* {g}" for g in goals]
    oracle = meta["oracle"]
    lines = [
        f"# Goal-set sweep: {task}",
        "",
        f"Command: `{meta['command']}` on the run directory of `{meta['config']}`.  ",
        f"Machine: {meta['machine']['cpus']} CPUs, commit {meta['machine']['commit']}, {meta['machine']['date']}; "
        f"load average at collection {meta['load_average'][0]:.1f}. Cells finished: {len(rows)}.",
        "",
        markdown_table(flat, cols) if flat else "(no cell finished yet)",
        "",
        *_seed_summary(rows, goals),
        "`goal_set`: plray.envs.goalsets.goal_set_label (paper4: the paper's set; fingertip16: 16 evenly spread; "
        "fingertip-dist16: a goal per episode from a region); `q_nmse`: the agent's Q_NMSE against Q^π of its greedy "
        "policy (MountainCar: grid policy evaluation at 200²; the Reacher: exact rollouts from 1,024 uniform states); "
        "`wm_nmse`: WM_NMSE in the space the paper reports (the Reacher: its 6-D observation, fingertip included); "
        "`nmse_<dim>`: per state dimension; `off_wall`: WM_NMSE over the states whose step does not hit "
        "MountainCar's left wall (where v is reset to 0; bench/results/mountaincar_wall.md); "
        "R_WM/R*: plan in the world model, act in the true environment.",
        "",
        f"Paper (agents, |G| = 4, GPU): WM_NMSE {PAPER_WM_NMSE.get(task)}. "
        + (
            f"Oracle (P-learning from the true Q*, bench/results/extraction.md): WM_NMSE {oracle['wm_nmse']:.3g}, "
            + ", ".join(f"R_WM/R* {g} {v:.3f}" for g, v in sorted(oracle["unseen"].items()))
            if oracle
            else ""
        ),
        "",
    ]
    if plot:
        lines += [f"![WM_NMSE and R_WM/R* against the goal set]({plot})", ""]
    return "\n".join(lines)


def _seed_summary(rows: list[dict[str, Any]], goals: list[str]) -> list[str]:
    """Mean and range over seeds per goal set, when a goal set has more than one seed."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(str(r["goal_set"]), []).append(r)
    if all(len(g) < 2 for g in groups.values()):
        return []
    out = []
    for name, rs in groups.items():
        f: dict[str, Any] = {"goal_set": name, "seeds": len(rs)}
        for key, values in [("wm_nmse", [r["wm_nmse"] for r in rs])] + [
            (f"R_WM/R* {g}", [r["return_ratio"].get(g) for r in rs]) for g in goals
        ]:
            v = [x for x in values if x is not None]
            f[key] = f"{statistics.mean(v):.3g} [{min(v):.3g}, {max(v):.3g}]" if v else None
        out.append(f)
    cols = ["goal_set", "seeds", "wm_nmse"] + [f"R_WM/R* {g}" for g in goals]
    return ["Over seeds (mean [min, max]):", "", markdown_table(out, cols), ""]


def plot(task: str, rows: list[dict[str, Any]], path: Path) -> bool:
    """WM_NMSE (log) and R_WM / R* per unseen goal against the goal set, one point per cell."""
    if not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['goal_set']}\ns{r['seed']}" for r in rows]
    x = list(range(len(rows)))
    fig, (a, b) = plt.subplots(1, 2, figsize=(max(8.0, 1.4 * len(rows) + 4), 3.6))
    a.semilogy(x, [r["wm_nmse"] for r in rows], "o-", label="agent's world model")
    if task in PAPER_WM_NMSE:
        a.axhline(PAPER_WM_NMSE[task], color="gray", ls="--", label="paper (|G| = 4, GPU)")
    a.set_ylabel("WM_NMSE")
    for g in sorted({g for r in rows for g in r["return_ratio"]}):
        b.plot(x, [r["return_ratio"].get(g) for r in rows], "o-", label=g)
    b.axhline(1.0, color="gray", ls=":")
    b.set_ylabel("R_WM / R*")
    for ax in (a, b):
        ax.set_xticks(x, labels, fontsize=7)
        ax.legend(fontsize=7)
    fig.suptitle(task)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def included_rows(path: Path, parser: argparse.ArgumentParser) -> tuple[str, list[dict[str, Any]]]:
    """(task, rows) of an earlier results JSON of this script, each row marked with ``from``."""
    try:
        payload = json.loads(path.read_text())
        task, rows = payload["task"], payload["rows"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        parser.error(f"--include: {path} is not a results file of bench/goalsets.py ({exc})")
    return task, [{**r, "from": r.get("from", str(path))} for r in rows]


def main(argv: list[str] | None = None) -> int:
    """Collect a run directory into bench/results/<name>.{json,md,png}."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--run-dir", default=[], type=Path, nargs="+", help="plray run directories of one task (e.g. one per seed)"
    )
    parser.add_argument(
        "--include",
        default=[],
        type=Path,
        nargs="+",
        help="results JSON of earlier collections of the same task (e.g. seeds whose run directories are gone): "
        "their rows join the table as they were; a cell collected again from --run-dir replaces its old row",
    )
    parser.add_argument("--name", required=True, help="result file name, e.g. goalsets_mountaincar")
    parser.add_argument("--config", default="", help="the experiment config the run was started from (for the record)")
    args = parser.parse_args(argv)
    if not args.run_dir and not args.include:
        parser.error("give --run-dir, --include or both")
    rows, tasks = [], set()
    for run_dir in args.run_dir:
        if not (run_dir / "config.yaml").is_file():
            parser.error(f"--run-dir: {run_dir} holds no plray run (no config.yaml)")
        task, found = collect(run_dir)
        rows += found
        tasks.add(task)
    for path in args.include:
        task, old = included_rows(path, parser)
        fresh = {(r["cell"], r["seed"]) for r in rows}
        rows += [r for r in old if (r["cell"], r["seed"]) not in fresh]
        tasks.add(task)
    task = next(iter(tasks)) if len(tasks) == 1 else ""
    if len(tasks) != 1:
        parser.error(f"--run-dir: the runs are of different tasks {sorted(tasks)}; collect one task at a time")
    rows.sort(key=lambda r: (r["num_goals"], str(r["goal_set"]), r["seed"]))
    png = RESULTS / f"{args.name}.png"
    plotted = plot(task, rows, png)
    meta = {
        "command": " ".join(["python bench/goalsets.py", *(argv if argv is not None else sys.argv[1:])]),
        "config": args.config or ", ".join(str(d / "config.yaml") for d in args.run_dir),
        "included": [str(p) for p in args.include],
        "machine": machine(),
        "load_average": os.getloadavg(),
        "oracle": _oracle(task),
    }
    payload = {"task": task, **meta, "paper_wm_nmse": PAPER_WM_NMSE.get(task), "rows": rows}
    write_results(args.name, payload, markdown(task, rows, meta, png.name if plotted else None))
    print(f"wrote bench/results/{args.name}.json and .md ({len(rows)} cells)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
