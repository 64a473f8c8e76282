"""World models from continuous-action agents, next to discrete-action agents on the same task.

Reads ``plray run`` directories (one agent per run dir: a continuous-action agent, e.g. SAC on
``reacher-continuous`` via ``configs/experiments/reacher-continuous-sac.yaml``, and a discrete one
at the same env-step budget, e.g. PQN on ``reacher`` via ``configs/experiments/reacher-pqn-budget.yaml``)
and writes one row per extraction: the agent (algorithm, env steps, env steps/s, wall-clock,
greedy success), WM_NMSE (headline space, state space, per state dimension; for a continuous agent
also on the 9 discrete torques the unseen goals are planned with), R_WM / R* per unseen goal.
Next to them: the published discrete reference (PQN at 1e7 steps,
``bench/results/extraction_agents_reacher_10m.json``), the oracle and the supervised line
(``bench/results/extraction.json``), and the ratio of each continuous agent's WM_NMSE to each
discrete agent's (the issue's target: within 2x).

Usage::

    python bench/continuous_action.py --run-dir /tmp/runs/h2-sac --run-dir /tmp/runs/h2-pqn
    python bench/continuous_action.py --run-dir /tmp/runs/new --include bench/results/continuous_action.json

writes ``bench/results/continuous_action.{json,md}`` (``--name`` to change).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, WM_ROW_KEYS, machine, model_fields, write_results
from bench.goalsets import PAPER_WM_NMSE, _parquet
from plray.evaluation.report import markdown_table

STATE_DIMS = ("θ1", "θ2", "ω1", "ω2")
UNSEEN = ("far_fingertip", "target_angle", "target_velocity")
REFERENCE = "extraction_agents_reacher_10m.json"
"""The discrete reference: PQN on ``reacher`` at the paper's 1e7 env steps (bench/results)."""


def _agent_manifest(world_model: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(world-model manifest, the manifest of the agent it was inverted from)."""
    manifest = json.loads((world_model / "manifest.json").read_text())
    agent_dir = Path(manifest["source"]["agent"])
    agent = json.loads((agent_dir / "manifest.json").read_text()) if (agent_dir / "manifest.json").is_file() else {}
    return manifest, agent


def _training_intensity(run_dir: Path, cell: str) -> float | None:
    """The agent's replayed / sampled transitions (off-policy learners), from its config in the run dir."""
    import yaml

    path = run_dir / "agents" / cell / "config.yaml"
    if not path.is_file():
        return None
    return (yaml.safe_load(path.read_text()).get("training") or {}).get("training_intensity")


def run_rows(run_dir: Path) -> list[dict[str, Any]]:
    """One row per finished extraction of a run directory (see the module docstring)."""
    import yaml

    task = yaml.safe_load((run_dir / "config.yaml").read_text())["task"]  # plain YAML: no pipeline needed
    results = run_dir / "results"
    agents = {a["cell"]: a for a in _parquet(results / "agents.parquet")}
    rows = []
    for job in _parquet(results / "extractions.parquet"):
        manifest, agent = _agent_manifest(Path(job["world_model"]))
        metrics, info = manifest.get("metrics", {}), agent.get("metrics", {})
        unseen = json.loads(job["unseen"]) if isinstance(job.get("unseen"), str) else job.get("unseen") or {}
        cell = agents.get(job["cell"], {})
        row: dict[str, Any] = {
            "task": task,
            "source": "agent",
            "algorithm": agent.get("algorithm"),
            "goal_set": model_fields(job["world_model"])["goal_set"],  # plray.envs.goalsets' label
            "num_goals": job["num_goals"],
            "seed": job["seed"],
            "run_dir": str(run_dir),
            "env_steps": agent.get("env_steps", cell.get("env_steps")),
            "train_seconds": cell.get("train_seconds"),
            "env_steps_per_s": info.get("env_steps_per_s_this_call"),
            "training_intensity": _training_intensity(run_dir, job["cell"]),
            "success_rate": info.get("success_rate", cell.get("success_rate")),
            "wm_nmse": job["wm_nmse"],
            "wm_nmse_state": metrics.get("state", {}).get("wm_nmse"),
            "wm_nmse_per_dim": metrics.get("state", {}).get("per_dim_nmse", []),
            "extraction_seconds": manifest.get("extraction_seconds"),
            "unseen": {
                g: {**v, "ratio": v["return_wm"] / v["return_opt"] if v["return_opt"] else None}
                for g, v in sorted(unseen.items())
            },
        }
        # the headline's space: the kinematic Reacher's 6-D observation, the MuJoCo Reacher's state
        space = "obs" if metrics.get("obs", {}).get("wm_nmse") == job["wm_nmse"] else "state"
        row["wm_space"] = space
        planning = metrics.get(f"{space}_planning_actions")
        if planning is not None:  # continuous agents: the WM on the 9 torques unseen goals are planned with
            row["wm_nmse_planning_actions"] = planning["wm_nmse"]
            row["wm_nmse_planning_actions_per_dim"] = metrics["state_planning_actions"]["per_dim_nmse"]
        rows.append(row)
    return rows


def reference_rows() -> list[dict[str, Any]]:
    """The discrete PQN 1e7 agent, the oracle and the supervised line on ``reacher``, from bench/results."""
    rows: list[dict[str, Any]] = []
    for name, sources in ((REFERENCE, ("agent",)), ("extraction.json", ("oracle", "supervised"))):
        path = RESULTS / name
        if not path.is_file():
            continue
        data = json.loads(path.read_text())
        for r in data.get("rows", []):
            if r.get("task") != "reacher" or r.get("source") not in sources:
                continue
            unseen = {
                u["goal"]: {k: u[k] for k in ("return_wm", "return_opt", "ratio")}
                for u in data.get("unseen", [])
                if u["task"] == "reacher" and u["source"] == r["source"]
            }
            rows.append(
                {
                    **{k: r[k] for k in WM_ROW_KEYS},  # the reference files' own identifying fields
                    "env_steps": 10_000_000 if r["source"] == "agent" else None,
                    "wm_nmse": r["wm_nmse"],
                    "wm_nmse_state": r.get("wm_nmse_state"),
                    "from": f"bench/results/{name}",
                    "unseen": unseen,
                }
            )
    return rows


class _Identity:
    """The model s' = s: what a world model that learned nothing of the dynamics scores."""

    def predict(self, states: Any, actions: Any) -> Any:
        """(B, d) states, any actions -> the states unchanged, (B, d)."""
        import numpy as np

        return np.array(states, dtype=np.float64, copy=True)


def identity_rows(tasks: list[str]) -> list[dict[str, Any]]:
    """The identity model's WM errors on each task, on the evaluation states of a seed-0 extraction.

    A reference line: a dimension whose NMSE a model does not bring below the identity's (the
    Reacher's θ, which one step moves by only dt·ω') has learned nothing there.
    """
    from bench.common import wm_fields
    from plray.envs.registry import make_task
    from plray.experiments.extraction import TASK_DEFAULTS, ExtractionConfig, wm_metrics

    rows = []
    for name in tasks:
        task = make_task(name)
        metrics = wm_metrics(task, _Identity(), ExtractionConfig(task=name))  # type: ignore[arg-type]
        space = TASK_DEFAULTS[name].get("wm_space", "state")  # the headline's space, as the pipeline reports it
        rows.append(
            {
                **wm_fields(task, "constructed", "identity"),
                "wm_nmse": metrics[space]["wm_nmse"],
                "wm_nmse_state": metrics["state"]["wm_nmse"],
                "wm_nmse_per_dim": metrics["state"]["per_dim_nmse"],
                "wm_space": space,
                "unseen": {},
            }
        )
    return rows


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """WM_NMSE of every continuous-action agent over every discrete-action agent's (target: <= 2)."""
    from plray.envs.registry import make_task

    cont = [r for r in rows if r["source"] == "agent" and r["algorithm"] == "sac"]
    disc = [r for r in rows if r["source"] == "agent" and r["algorithm"] in ("pqn", "dqn")]
    out = []
    for c in cont:
        same_task = make_task(c["task"]).discrete_counterpart().name  # type: ignore[attr-defined]
        for d in (d for d in disc if d["task"] == same_task):
            ratio = c["wm_nmse"] / d["wm_nmse"]
            on_9 = c.get("wm_nmse_planning_actions")
            out.append(
                {
                    "continuous": f"{c['algorithm']} {c['task']} {c['env_steps']}",
                    "discrete": f"{d['algorithm']} {d['task']} {d['env_steps']}",
                    "wm_nmse_continuous": c["wm_nmse"],
                    "wm_nmse_discrete": d["wm_nmse"],
                    "ratio": ratio,
                    "ratio_9τ": on_9 / d["wm_nmse"] if on_9 is not None else None,
                    "within_2x": bool(ratio <= 2.0),
                }
            )
    return out


def _flat(r: dict[str, Any]) -> dict[str, Any]:
    f = {k: r.get(k) for k in ("task", "source", "algorithm", "goal_set", "env_steps", "success_rate", "wm_nmse")}
    f["train_s"] = round(r["train_seconds"]) if r.get("train_seconds") is not None else None
    f["steps/s"] = round(r["env_steps_per_s"]) if r.get("env_steps_per_s") is not None else None
    f["intensity"] = r.get("training_intensity")
    f["wm_nmse_9τ"] = r.get("wm_nmse_planning_actions")
    f |= {f"nmse_{d}": v for d, v in zip(STATE_DIMS, r.get("wm_nmse_per_dim") or [], strict=False)}
    f |= {f"R_WM/R* {g}": r["unseen"].get(g, {}).get("ratio") for g in UNSEEN}
    return f


def markdown(rows: list[dict[str, Any]], comparison: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The results table, the WM_NMSE ratios and what the columns mean."""
    cols = ["task", "source", "algorithm", "goal_set", "env_steps", "intensity", "train_s", "steps/s"]
    cols += ["success_rate", "wm_nmse"]
    cols += ["wm_nmse_9τ"] + [f"nmse_{d}" for d in STATE_DIMS] + [f"R_WM/R* {g}" for g in UNSEEN]
    lines = [
        "# World models from continuous-action agents",
        "",
        f"Command: `{meta['command']}`.  ",
        f"Machine: {meta['machine']['cpus']} CPUs (shared), commit {meta['machine']['commit']}, "
        f"{meta['machine']['date']}; load average at collection {meta['load_average'][0]:.1f}.",
        "",
        markdown_table([_flat(r) for r in rows], cols) if rows else "(nothing finished yet)",
        "",
        "`wm_nmse`: WM_NMSE in the kinematic Reacher's 6-D observation space (as the paper reports), in the "
        "state space [θ1, θ2, ω1, ω2] for the MuJoCo Reacher (`mujoco-reacher`, SAC; `mujoco-reacher-discrete`, "
        "its 9 corner and centre controls, PQN); for a continuous task over reset states x 16 torques drawn "
        "uniformly from [-1, 1]^2, each applied to every state; `wm_nmse_9τ`: the same on the 9 torques of the "
        "discrete counterpart (the corners and centre of the box); "
        "`nmse_<dim>`: per state dimension. R_WM/R*: grid value iteration (20^4) in the world model, greedy "
        "rollouts on the true dynamics from 512 reset states; for the continuous task the planner maximises "
        "over the 9 torques, so R* is the discrete task's own. `steps/s`: the agent's env steps per second "
        "of training on this machine (sampling and updates together). `intensity`: an off-policy agent's "
        "`training.training_intensity`, replayed over sampled transitions (SAC: 16 is one update of 256 "
        "relabelled transitions per 16 env steps); `-` where the run's config is not at hand.",
        "",
        f"Paper (PQN agents, |G| = 4, GPU): WM_NMSE {PAPER_WM_NMSE['reacher']}.",
        "",
        "## Continuous over discrete WM_NMSE (target: within 2x)",
        "",
        markdown_table(
            comparison,
            ("continuous", "discrete", "wm_nmse_continuous", "wm_nmse_discrete", "ratio", "ratio_9τ", "within_2x"),
        )
        if comparison
        else "(no pair yet)",
        "",
        "`ratio`: the continuous agent's WM_NMSE (16 uniform torques) over the discrete agent's (its 9 "
        "torques) on the same physics (`reacher-continuous` / `reacher`, `mujoco-reacher` / "
        "`mujoco-reacher-discrete`); `ratio_9τ`: the continuous agent's on the same 9 torques over the "
        "discrete agent's. The MuJoCo Reacher has no unseen goals (the paper defines none) and no grid oracle.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Collect run directories into bench/results/<name>.{json,md}."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", action="append", required=True, type=Path, help="a plray run dir (repeatable)")
    parser.add_argument("--name", default="continuous_action", help="result file name")
    parser.add_argument(
        "--include",
        action="append",
        default=[],
        type=Path,
        help="an earlier results file of this script: its agent rows are kept (repeatable; run dirs given "
        "with --run-dir replace their old rows), so runs whose directories are gone stay in the table",
    )
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for run_dir in args.run_dir:
        if not (run_dir / "config.yaml").is_file():
            parser.error(f"--run-dir: {run_dir} holds no plray run (no config.yaml)")
        rows += run_rows(run_dir)
    fresh = {str(d) for d in args.run_dir}
    for path in args.include:
        try:
            old = json.loads(path.read_text())["rows"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            parser.error(f"--include: {path} is not a results file of bench/continuous_action.py ({exc})")
        rows += [r for r in old if r.get("run_dir") and r["run_dir"] not in fresh]
    rows += reference_rows()
    rows += identity_rows(sorted({r["task"] for r in rows if r.get("source") == "agent"}))
    comparison = ratios(rows)
    meta = {
        "command": " ".join(["python bench/continuous_action.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "load_average": os.getloadavg(),
    }
    payload = {**meta, "paper_wm_nmse": PAPER_WM_NMSE["reacher"], "rows": rows, "comparison": comparison}
    write_results(args.name, payload, markdown(rows, comparison, meta))
    print(f"wrote bench/results/{args.name}.json and .md ({len(rows)} rows, {len(comparison)} comparisons)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
