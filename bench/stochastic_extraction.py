"""Benchmark: P-learning a stochastic kernel from Q-values, scored against the true noise.

    python bench/stochastic_extraction.py [--steps N] [--batch-size B] [--fine-resolution R]

Not in the paper, whose tasks are deterministic. The task is ``mountaincar-position-noisy``: the
paper's MountainCar with its four position goals, plus Gaussian process noise (σ_x, σ_v) =
(0.005, 0.001) on each step (plray.envs.mountaincar). The oracle's Q* integrates over that noise
(grid value iteration with a Gauss–Hermite quadrature of the kernel), so the Q-values carry it,
and a model can be scored against the true successor distribution:

* ``deterministic``: the paper's successor network (L1 residual), which can only give a point;
* ``gaussian two-sample``: the diagonal Gaussian with the unbiased two-sample gradient
  (docs/method.md#neural-gaussian-p-learning);
* ``gaussian one-sample``: the same with the biased one-sample square, whose extra Var term pulls
  σ towards 0;
* ``gaussian two-sample, oracle R²``: the two-sample kernel from a finer oracle grid (does the
  grid's interpolation limit how well σ is read?);
* ``supervised``: the same network regressed on sampled transitions (data P-learning never sees);
* with ``--floor``: the two-sample kernel on the noise-free ``mountaincar-position`` (true σ = 0):
  the spread the method reads into the oracle's interpolation error alone;
* with ``--agent PATH`` (an agent trained on the noisy task, e.g. ``plray train
  configs/agents/mountaincar-position-noisy-pqn.yaml``): the deterministic and two-sample models
  from that agent's Q-values, and the agent's grid Q_NMSE against Q^π of its greedy policy under
  the noisy dynamics.

Per model: WM_NMSE of its mean against the kernel's mean (250 000 uniform states, as MountainCar's
WM metrics), off the left wall, the per-dim σ it predicts against the true σ (median relative
error over 20 000 states × 3 actions, Monte Carlo moments from 256 draws per pair), the mean 2-
Wasserstein distance, and R_WM / R* on the three unseen goals: R* plans with the true kernel, a
Gaussian model plans with its own noise, deterministic ones with their point prediction; all act on
the noisy dynamics from 512 reset states (same seeded draws). Writes
bench/results/stochastic_extraction.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import WM_ROW_KEYS, agent_fields, machine, wm_fields, write_results
from plray.envs.registry import make_task
from plray.evaluation.report import markdown_table
from plray.experiments.extraction import ExtractionConfig, run_evaluation, run_extraction

TASK = "mountaincar-position-noisy"


def variants(fine: int, agent: str | None, only_agent: bool, floor: bool) -> list[tuple[str, dict[str, Any]]]:
    """(label, ExtractionConfig overrides) of the compared models; ``only_agent`` keeps the agent's and floor rows."""
    oracle = [
        ("deterministic", {"method": "deterministic"}),
        ("gaussian two-sample", {"method": "gaussian"}),
        ("gaussian one-sample", {"method": "gaussian", "estimator": "one-sample"}),
        (f"gaussian two-sample, oracle {fine}²", {"method": "gaussian", "oracle_resolution": fine}),
        ("supervised (sampled transitions)", {"method": "supervised"}),
    ]
    agents = []
    if agent is not None:
        agents = [
            ("agent: deterministic", {"method": "deterministic", "agent": agent}),
            ("agent: gaussian two-sample", {"method": "gaussian", "agent": agent}),
        ]
    if floor:
        agents.append(("gaussian two-sample, noise-free task", {"method": "gaussian", "task": "mountaincar-position"}))
    return agents if only_agent else oracle + agents


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6000, help="P-learning steps (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=2048, help="samples per step (default: %(default)s)")
    parser.add_argument("--fine-resolution", type=int, default=400, help="the finer oracle grid (default: 400)")
    parser.add_argument("--out", default="/tmp/plray-bench-stochastic", help="artifact directory")
    parser.add_argument("--starts", type=int, default=512, help="rollout starts per unseen goal")
    parser.add_argument("--agent", default=None, help="agent artifact trained on the noisy task (adds two rows)")
    parser.add_argument("--only-agent", action="store_true", help="only the --agent and --floor rows")
    parser.add_argument("--floor", action="store_true", help="add the two-sample kernel on the noise-free task")
    parser.add_argument("--name", default="stochastic_extraction", help="results file name (default: %(default)s)")
    return parser


def agent_quality(parser: argparse.ArgumentParser, agent: str) -> dict[str, Any]:
    """The agent's steps, greedy success and grid Q_NMSE on the noisy task."""
    from plray.agents.qsource import load_qsource
    from plray.evaluation.q_accuracy import q_accuracy

    source = load_qsource(agent)
    if source.task.name != TASK:
        parser.error(f"--agent: trained on {source.task.name!r}, not {TASK!r}")
    acc = q_accuracy(source, 200)
    return {
        "agent": agent,
        "env_steps": source.metadata.get("env_steps"),
        "q_nmse": acc["q_nmse"],
        "q_mse": acc["q_mse"],
        "success": source.metadata.get("metrics", {}).get("success_rate"),
    }


def _identity(overrides: dict[str, Any]) -> dict[str, Any]:
    """The result row's task / source / algorithm / goal set of one variant (bench.common.WM_ROW_KEYS)."""
    if "agent" in overrides:
        return agent_fields(overrides["agent"])
    task = make_task(overrides.get("task", TASK))
    if overrides.get("method") == "supervised":
        return wm_fields(task, "supervised", "regression")
    return wm_fields(task, "oracle", "value-iteration")


def run_variants(args: argparse.Namespace) -> tuple[list[dict], list[dict], list[dict]]:
    """Extract and evaluate every variant; returns the rows, the unseen-goal rows and the details."""
    rows: list[dict[str, Any]] = []
    unseen_rows: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    for label, overrides in variants(args.fine_resolution, args.agent, args.only_agent, args.floor):
        p_learning = {"steps": args.steps, "batch_size": args.batch_size}
        cfg = ExtractionConfig(**{"task": TASK, "p_learning": p_learning, "seed": 0, **overrides})
        out = Path(args.out) / label.replace(" ", "_").replace(",", "").replace("²", "")
        print(f"[bench] {label}: extracting", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        summary = run_extraction(cfg, out)
        extract_s = time.perf_counter() - t0
        print(f"[bench] {label}: evaluating", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        ev = run_evaluation(out / "world_model", out / "evaluation", num_starts=args.starts, seed=0)
        metrics = ev["metrics"]
        kernel = metrics["kernel"]
        row = {
            "model": label,
            "wm_nmse (mean)": metrics["state"]["wm_nmse"],
            "off the wall": metrics["state_off_wall"]["wm_nmse"],
            "σ_x model": kernel["std_model"][0],
            "σ_v model": kernel["std_model"][1],
            "σ_x rel. error": kernel["std_rel_error"][0],
            "σ_v rel. error": kernel["std_rel_error"][1],
            "W2": kernel["w2"],
            "extract s": extract_s,
        }
        rows.append(row | _identity(overrides) | {"wm_nmse": metrics["state"]["wm_nmse"]})
        for u in ev["unseen"]:
            unseen_rows.append({"model": label, **{k: u[k] for k in ("goal", "return_wm", "return_opt", "ratio")}})
        details.append({"label": label, "config": overrides, "summary": summary, "evaluation": ev})
        print(f"[bench] {label}: {row} ({time.perf_counter() - t0:.0f} s evaluation)", file=sys.stderr, flush=True)
    return rows, unseen_rows, details


def markdown(
    args: argparse.Namespace,
    rows: list[dict],
    unseen_rows: list[dict],
    details: list[dict],
    agent_info: dict[str, Any],
    command: str,
) -> str:
    """The benchmark's markdown report."""
    noisy_runs = [d for d in details if d["summary"]["task"] == TASK]
    true_std = noisy_runs[0]["evaluation"]["metrics"]["kernel"]["std_true"] if noisy_runs else [0.005, 0.001]
    return "\n".join(
        [
            "# P-learning a stochastic kernel: MountainCar-position with Gaussian process noise",
            "",
            f"Command: `{command.strip()}`",
            "",
            f"Machine: {machine()}",
            "",
            f"Task `{TASK}`: gymnax MountainCar plus N(0, diag(0.005, 0.001)²) on each step, clipped to the box "
            f"(true σ averaged over the evaluation pairs, clipping included: σ_x {true_std[0]:.4g}, σ_v "
            f"{true_std[1]:.4g}). Q-values: the oracle's Q* (200² grid unless stated, value iteration with a "
            f"25-node Gauss–Hermite quadrature of the kernel). P-learning: {args.steps} steps × {args.batch_size}, "
            "2 × 256 tanh, states rescaled over the box, uniform states. WM_NMSE of the model's mean against the "
            "kernel's mean on 250 000 uniform states; σ columns: mean predicted σ and the median |σ̂ − σ| / σ over "
            "20 000 states × 3 actions (Monte Carlo moments, 256 draws per pair); W2: mean 2-Wasserstein distance "
            "between the diagonal Gaussians.",
            "",
            markdown_table(rows, tuple(k for k in rows[0] if k not in WM_ROW_KEYS)),
            "",
            "## Unseen goals: R_WM (plan in the model, act on the task's true dynamics) vs R*",
            "",
            "R* plans with the true kernel; Gaussian models plan with their own σ (9-node quadrature), the others "
            f"with their point prediction; {args.starts} reset starts, the same seeded noise for both.",
            "",
            markdown_table(unseen_rows, ("model", "goal", "return_wm", "return_opt", "ratio")),
            "",
        ]
        + (
            [
                f"Agent `{agent_info['agent']}`: {agent_info['env_steps']} env steps, greedy success "
                f"{agent_info['success']}, grid Q_NMSE {agent_info['q_nmse']:.3g} (Q_MSE {agent_info['q_mse']:.3g}) "
                "against Q^π of its greedy policy under the noisy dynamics (200² grid, quadrature).",
                "",
            ]
            if agent_info
            else []
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.only_agent and args.agent is None and not args.floor:
        parser.error("--only-agent needs --agent or --floor")
    agent_info: dict[str, Any] = {}
    if args.agent is not None:
        agent_info = agent_quality(parser, args.agent)
        print(f"[bench] agent {args.agent}: {agent_info}", file=sys.stderr, flush=True)
    rows, unseen_rows, details = run_variants(args)
    command = "python bench/stochastic_extraction.py " + " ".join(argv if argv is not None else sys.argv[1:])
    md = markdown(args, rows, unseen_rows, details, agent_info, command)
    payload = {
        "command": command.strip(),
        "machine": machine(),
        "rows": rows,
        "unseen": unseen_rows,
        "agent": agent_info,
        "runs": details,
    }
    json_path, md_path = write_results(args.name, payload, md)
    print(md)
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
