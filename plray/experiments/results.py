"""Results of an experiment: ensembles, tables (Parquet and markdown) and plots.

Everything here reads the finished units' ``result.json`` files and world-model artifacts, so the
tables can be rebuilt at any time from a run directory, and a unit counts once however often the
run was interrupted. Files under ``<run>/results``:

* ``agents.parquet``: one row per agent (cell): Q error against Q*, env steps, where it ran;
* ``extractions.parquet``: one row per (agent, method): kernel or WM error, R_WM, R*, R_WM/R*;
* ``summary.parquet``: mean and spread over seeds per (variant, |G|, family, placement, method);
* ``ensembles.parquet``: one row per ensemble (all seeds of a cell): its error, its members'
  disagreement, and how well the disagreement ranks the actual error (Spearman ρ over (s, a));
* ``goals_needed.parquet``: per (variant, method), the smallest |G| whose mean R_WM/R* is within
  ``evaluation.within`` of 1, next to the paper's;
* ``results.md`` and plots (``kernel_error.png``, ``return_ratio.png``).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from plray.evaluation.report import markdown_table
from plray.experiments.jobs import read_result
from plray.experiments.rundir import RunLayout
from plray.experiments.schema import Cell, ExperimentConfig
from plray.experiments.tasks import pipeline_for
from plray.utils.io import atomic_write_text

PAPER_GOALS_NEEDED = {"deterministic": 1, "windy": 4, "teleport": 20}
"""Goal counts at which the paper's FourRooms WM policies are within 5% of optimal
(docs/method.md#published-numbers)."""

PAPER_KERNEL_MSE = {
    ("windy", 1): 6e-3,
    ("windy", 2): 2.4e-3,
    ("windy", 3): 1.9e-3,
    ("windy", 4): 1.25e-3,
    ("teleport", 5): 8.3e-3,
    ("teleport", 10): 4.4e-3,
    ("teleport", 20): 1.7e-3,
    ("teleport", 68): 1.5e-4,
    ("deterministic", 1): 0.0,
}
"""The paper's kernel MSE at 10M steps, read from its figures (approximate; docs/method.md#published-numbers)."""

GROUP_FIELDS = ("variant", "num_goals", "goal_family", "placement", "method", "goals_used", "agent_steps")
METRICS = ("tv_mean", "kernel_mse", "wm_nmse", "return_wm", "return_opt", "return_ratio")


def collect(cfg: ExperimentConfig, run_dir: Path, cells: list[Cell]) -> tuple[list[dict], list[dict]]:
    """Finished agent and extraction results of the configured cells and jobs, once each."""
    from plray.experiments.jobs import jobs_for

    layout = RunLayout(run_dir)
    agents, extractions = [], []
    for cell in cells:
        a = read_result(layout.cell_result(cell.key))
        if a is not None:
            agents.append(a)
    for job in jobs_for(cfg, cells):
        e = read_result(layout.job_result(job.key))
        if e is not None:
            # the artifact in this run directory, wherever the worker that wrote it kept its copy
            extractions.append(e | {"world_model": str(layout.model_dir(job.key))})
    return agents, extractions


def final_rows(rows: list[dict]) -> list[dict]:
    """Extraction (or summary) rows from each reward-function set's final agents, not from snapshots."""
    where = lambda r: (r["variant"], r["num_goals"], r["goal_family"], r["placement"])  # noqa: E731
    last: dict[tuple, int] = {}
    for r in rows:
        if r.get("agent_steps") is not None:
            last[where(r)] = max(last.get(where(r), 0), r["agent_steps"])
    return [r for r in rows if r.get("agent_steps") is None or r["agent_steps"] == last[where(r)]]


def _stats(values: list[float]) -> tuple[float, float, float, float]:
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if arr.size == 0:
        return (math.nan,) * 4
    return float(arr.mean()), float(arr.std()), float(arr.min()), float(arr.max())


def summarise(extractions: list[dict], within: float) -> list[dict]:
    """Mean, std, min and max over seeds per (variant, |G|, family, placement, method)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in extractions:
        groups[tuple(row.get(f) for f in GROUP_FIELDS)].append(row)
    out = []
    for key in sorted(groups, key=lambda k: (k[0], k[4], k[1], k[5] or 0, k[6] or 0, k[2], k[3])):
        rows = groups[key]
        summary: dict[str, Any] = dict(zip(GROUP_FIELDS, key, strict=True)) | {"seeds": len(rows)}
        for metric in METRICS:
            values = [r[metric] for r in rows if isinstance(r.get(metric), int | float)]
            if values:
                mean, std, lo, hi = _stats(values)
                summary |= {metric: mean, f"{metric}_std": std, f"{metric}_min": lo, f"{metric}_max": hi}
        if "return_ratio" in summary:
            summary["quasi_optimal"] = bool(summary["return_ratio"] >= 1.0 - within)
        paper = PAPER_KERNEL_MSE.get((key[0], key[5])) if key[5] == key[1] else None
        if paper is not None:
            summary["paper_kernel_mse"] = paper
        out.append(summary)
    return out


def goals_needed(summary: list[dict]) -> list[dict]:
    """Per (variant, method): the fewest goals used in extraction that plan quasi-optimally (final
    agents only), next to the paper's count."""
    by: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in final_rows(summary):
        if "quasi_optimal" in row:
            by[(row["variant"], row["method"])].append(row)
    out = []
    for (variant, method), rows in sorted(by.items()):
        ok = sorted(r["goals_used"] for r in rows if r["quasi_optimal"])
        paper = PAPER_GOALS_NEEDED.get(variant)
        needed = ok[0] if ok else None
        out.append(
            {
                "variant": variant,
                "method": method,
                "swept": ",".join(str(n) for n in sorted({r["goals_used"] for r in rows})),
                "goals_needed": needed,
                "paper": paper,
                "meets_paper": needed is not None and paper is not None and needed <= paper,
            }
        )
    return out


# ---------------------------------------------------------------------- ensembles
def build_ensembles(cfg: ExperimentConfig, run_dir: Path, extractions: list[dict]) -> list[dict]:
    """One ensemble world model per job without its seed (cell group, method, goal subset, agent
    step) with two or more finished seeds (the task's :meth:`TaskPipeline.ensemble`).

    Writes ``<run>/models/<ensemble key>--ensemble`` and returns one row per ensemble.
    """
    from plray.core.model_io import save_world_model

    layout = RunLayout(run_dir)
    task = pipeline_for(cfg.task)
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in extractions:
        groups[row["ensemble_key"]].append(row)
    rows = []
    for key, members in sorted(groups.items()):
        if len(members) < 2:
            continue
        members = sorted(members, key=lambda r: r["seed"])
        out = layout.ensemble_dir(key)
        first = members[0]
        base = {f: first.get(f) for f in GROUP_FIELDS} | {
            "members": len(members),
            "seeds": [m["seed"] for m in members],
        }
        ensemble = task.ensemble(cfg, members)
        save_world_model(out, ensemble.model, ensemble.manifest)
        rows.append(base | ensemble.metrics | {"world_model": str(out)})
    return rows


# ---------------------------------------------------------------------- files
def _flat(row: dict[str, Any]) -> dict[str, Any]:
    """Nested values (per-task returns, lists) become JSON strings, so Parquet gets plain columns."""
    return {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in row.items()}


def write_parquet(rows: list[dict], path: Path) -> Path:
    """Rows as a Parquet table, written atomically."""
    import os
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    flat = [_flat(r) for r in rows]
    columns: list[str] = []
    for r in flat:
        columns += [k for k in r if k not in columns]
    table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in flat]) if flat else pa.table({})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def _line_label(row: dict) -> str:
    if row["goals_used"] == row["num_goals"]:
        return row["method"]
    return f"{row['method']}, subsets of the |G|={row['num_goals']} agents"


def plot_study(summary: list[dict], out: Path) -> list[Path]:
    """Kernel error and R_WM/R* against the goals used, one panel per variant, one line per method;
    with agent checkpoints, kernel error against training steps too."""
    from plray.evaluation.plots import _figure, _save

    plt = _figure()
    made: list[Path] = []
    final = final_rows(summary)
    variants = sorted({r["variant"] for r in final})
    for metric, label, fname, log in (
        ("kernel_mse", "kernel MSE (mean over s, a, s')", "kernel_error.png", True),
        ("wm_nmse", "WM_NMSE", "kernel_error.png", True),
        ("return_ratio", "R_WM / R* on unseen goals", "return_ratio.png", False),
    ):
        rows = [r for r in final if isinstance(r.get(metric), float)]
        if not rows or any(p.name == fname for p in made):
            continue
        fig, axes = plt.subplots(1, len(variants), figsize=(4.2 * len(variants), 3.4), squeeze=False)
        for ax, variant in zip(axes[0], variants, strict=True):
            mine = [r for r in rows if r["variant"] == variant]
            for line in sorted({_line_label(r) for r in mine}):
                pts = sorted((r for r in mine if _line_label(r) == line), key=lambda r: r["goals_used"])
                y = np.array([r[metric] for r in pts])
                yerr = np.array([r.get(f"{metric}_std", 0.0) for r in pts])
                ax.errorbar(
                    [r["goals_used"] for r in pts],
                    np.maximum(y, 1e-12) if log else y,
                    yerr=yerr,
                    marker="o",
                    capsize=3,
                    label=line,
                )
            if metric == "kernel_mse":
                paper = sorted((n, v) for (var, n), v in PAPER_KERNEL_MSE.items() if var == variant and v > 0)
                if paper:
                    ax.plot(*zip(*paper, strict=True), "k--", marker="x", label="paper (10M steps)")
            if metric == "return_ratio":
                ax.axhline(0.95, color="grey", lw=0.8, ls=":")
            if log:
                ax.set_yscale("log")
            ax.set_xscale("log")
            ticks = sorted({r["goals_used"] for r in mine})
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.xaxis.set_minor_locator(plt.NullLocator())
            ax.set_title(variant)
            ax.set_xlabel("goals used by P-learning")
            ax.set_ylabel(label)
            ax.legend(fontsize=7)
        made.append(_save(fig, out / fname))
    trained = [r for r in summary if r.get("agent_steps") and r["goals_used"] == r["num_goals"] and "kernel_mse" in r]
    if len({r["agent_steps"] for r in trained}) > 1:
        fig, axes = plt.subplots(1, len(variants), figsize=(4.2 * len(variants), 3.4), squeeze=False)
        for ax, variant in zip(axes[0], variants, strict=True):
            mine = [r for r in trained if r["variant"] == variant]
            for n, method in sorted({(r["num_goals"], r["method"]) for r in mine}):
                pts = sorted(
                    (r for r in mine if (r["num_goals"], r["method"]) == (n, method)), key=lambda r: r["agent_steps"]
                )
                ax.plot(
                    [r["agent_steps"] for r in pts],
                    [max(r["kernel_mse"], 1e-12) for r in pts],
                    marker="o",
                    label=f"|G|={n} {method}",
                )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(variant)
            ax.set_xlabel("agent training steps")
            ax.set_ylabel("kernel MSE")
            ax.legend(fontsize=6)
        made.append(_save(fig, out / "kernel_error_vs_steps.png"))
    return made


def write_results(
    cfg: ExperimentConfig,
    run_dir: Path,
    agents: list[dict],
    extractions: list[dict],
    ensembles: list[dict],
    failures: dict[str, str],
) -> tuple[Path, str]:
    """Write every table and plot under ``<run>/results``; returns (directory, the summary table)."""
    task = pipeline_for(cfg.task)
    out = RunLayout(run_dir).results_dir
    summary = summarise(extractions, cfg.evaluation.within)
    needed = goals_needed(summary) if task.goals_needed else []
    write_parquet(agents, out / "agents.parquet")
    write_parquet(extractions, out / "extractions.parquet")
    write_parquet(summary, out / "summary.parquet")
    write_parquet(ensembles, out / "ensembles.parquet")
    if needed:
        write_parquet(needed, out / "goals_needed.parquet")
    plots = plot_study(summary, out) if summary else []
    error_col = task.error_metric
    varying = [c for c in ("goal_family", "placement") if len({r.get(c) for r in summary}) > 1]
    cols = ["variant", "num_goals", *varying, "goals_used", "agent_steps", "method", "seeds"]
    cols += [error_col, f"{error_col}_std", *task.summary_columns]
    if cfg.evaluation.unseen:
        cols += ["return_ratio", "return_ratio_min", "quasi_optimal"]
    table = markdown_table(summary, cols)
    lines = [f"# Experiment `{cfg.name}` ({cfg.task}, agents: {cfg.agent.kind})", ""]
    lines += [f"{len(agents)} agents, {len(extractions)} extractions, {len(ensembles)} ensembles.", ""]
    lines += ["## Per reward-function set (mean over seeds; `_std`: spread over seeds)", "", table, ""]
    if needed:
        lines += ["## Goals needed for quasi-optimal unseen-goal planning", ""]
        lines += [markdown_table(needed, ("variant", "method", "swept", "goals_needed", "paper", "meets_paper")), ""]
    if ensembles:
        ecols = [
            "variant",
            "num_goals",
            "goals_used",
            "agent_steps",
            "method",
            "members",
            error_col,
            "disagreement_mean",
            "disagreement_error_spearman",
        ]
        ecols += task.ensemble_columns
        lines += ["## Ensembles over seeds (disagreement: mean distance of members from the mixture)", ""]
        lines += [markdown_table(ensembles, ecols), ""]
    if agents:
        lines += ["## Agents", "", markdown_table(agents, task.agent_columns), ""]
    if failures:
        lines += ["## Failures", ""] + [f"* `{k}`: {v}" for k, v in sorted(failures.items())] + [""]
    lines += [f"![{p.name}]({p.name})" for p in plots]
    atomic_write_text(out / "results.md", "\n".join(lines) + "\n")
    return out, table
