"""Benchmark: plray against the official P-learning code (aletcher/inverting-bellman), side by side.

    python bench/throughput.py --official /work/scratch/inverting-bellman \
        --official-python /work/scratch/ib-venv/bin/python [--rounds 3] [--pqn-rounds 1] [--quick]

Figures, at the official implementation's own network sizes:

* P-learning samples/s, MountainCar (4 x 1024 LayerNorm Q-network, batch 4096) and Reacher
  (6 x 2048, batch 1024). Both sides train the official successor network (2 x 256 tanh, residual,
  Adam, cosine schedule) against a frozen Q-network of that size whose values are untrained (a
  throughput figure needs the network's cost, not its accuracy): plray a freshly initialised
  :class:`plray.agents.modules.GoalQNetwork` (seed 0), the official code the checkpoint of a
  512-step PQN run (made once with ``--phases pqn``, untimed).
* PQN env steps/s, MountainCar with 4 x 1024 (the official rollout: 256 envs x 64 steps, HER k = 4,
  minibatches of 256): plray through RLlib (``plray train``), the official code's jitted scan.
* plray's own default networks (configs/agents/*-pqn.yaml) for context.
* ``plray``: as shipped, the frozen Q-network on the matmul :func:`plray.core.frozen.onednn_preferred`
  picks for this processor (oneDNN off Intel, torch's MKL on Intel); next to it, in the same run, the
  other path forced (``plray-torch``: ``NetworkQSource(..., onednn=False)``, or ``plray-onednn``:
  ``onednn=True``), so the oneDNN path's speed-up (``onednn_speedup``) is a same-run ratio.

Every figure excludes start-up and JIT compilation by differencing two runs of the same program:
P-learning 5 and 65 steps (``--phases wm --WM_NUM_STEPS``; plray's small default networks 20 and
220), PQN one and two rollouts (``--TOTAL_TIMESTEPS``; ``--pqn-rollouts``); rate = extra work / extra time. Each
timing is a fresh process; the implementations alternate within each round and
``os.getloadavg()`` is recorded at every timing (``--settle-load``: wait for a quiet machine first).
Rates are given per wall-clock second and per CPU-second (user + sys of the child process, which a
loaded machine disturbs less); the table reports medians over rounds and ``ratio`` = plray / official.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, write_results

ROOT = Path(__file__).resolve().parents[1]
PQN_ROLLOUT = 256 * 64
"""Env steps of one PQN rollout (the official MountainCar config: 256 envs x 64 steps)."""

PLEARNING: dict[str, dict[str, Any]] = {
    "mountaincar": {"task": "mountaincar-position", "config": "mountaincar-position", "layers": 4, "width": 1024,
                    "batch": 4096, "schedule": "cosine"},
    "reacher": {"task": "reacher", "config": "reacher", "layers": 6, "width": 2048, "batch": 1024,
                "schedule": "cosine"},
}  # fmt: skip
DEFAULT_STEPS = (20, 220)
"""P-learning step counts differenced for plray's small default networks (5 vs 25 steps is too little work)."""
CONTEXT: dict[str, dict[str, Any]] = {  # plray's shipped agent networks (configs/agents/*-pqn.yaml)
    "mountaincar": {"task": "mountaincar-position", "layers": 2, "width": 256, "batch": 4096, "schedule": "cosine"},
    "reacher": {"task": "reacher", "layers": 3, "width": 256, "batch": 1024, "schedule": "cosine"},
}


SETTLE = {"below": 0.0, "max_wait_s": 240.0}
"""Before each timing, wait until the 1-minute load is below ``below`` (0: no wait), at most ``max_wait_s``."""


def settle_load() -> float:
    """Wait for the load average to fall below :data:`SETTLE` ``below``; the seconds waited."""
    start = time.perf_counter()
    while SETTLE["below"] > 0 and os.getloadavg()[0] >= SETTLE["below"]:
        if time.perf_counter() - start > SETTLE["max_wait_s"]:
            break
        time.sleep(2.0)
    return time.perf_counter() - start


def run_timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd`` to completion; its wall-clock and CPU seconds, the load average and its output."""
    settle_load()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return {"wall_s": wall, "cpu_s": cpu, "load1": load[0], "stdout": proc.stdout + proc.stderr}


def differenced(small: dict[str, Any], large: dict[str, Any], work: float, key: str = "wall_s") -> dict[str, Any]:
    """Rates from two runs that differ by ``work`` units: work / Δwall and work / ΔCPU."""
    d_wall, d_cpu = large[key] - small[key], large["cpu_s"] - small["cpu_s"]
    return {
        "per_s": work / d_wall if d_wall > 0 else None,
        "per_cpu_s": work / d_cpu if d_cpu > 0 else None,
        "load1": [round(small["load1"], 2), round(large["load1"], 2)],
        "wall_s": [round(small["wall_s"], 2), round(large["wall_s"], 2)],
    }


# ---- official side ----------------------------------------------------------------------------------------


def official_env() -> dict[str, str]:
    """The official code on CPU without wandb."""
    return {**os.environ, "JAX_PLATFORMS": "cpu", "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}


def official_checkpoint(args: argparse.Namespace, config: str) -> Path:
    """A 512-step official PQN checkpoint at the config's network size (made once, untimed)."""
    out = Path(args.work) / "official" / f"ckpt-{config}"
    if not (out / "pqn_checkpoint.pkl").exists():
        print(f"[official] making a PQN checkpoint for {config} (untimed)", flush=True)
        cmd = [args.official_python, "run.py", "--config", f"configs/{config}.py", "--phases", "pqn",
               "--run_dir", str(out), "--NUM_ENVS", "16", "--NUM_STEPS", "16", "--TOTAL_TIMESTEPS", "512",
               "--MINIBATCH_SIZE", "64"]  # fmt: skip
        run_timed(cmd, Path(args.official), official_env())
    return out


def official_plearning(args: argparse.Namespace, name: str, steps: tuple[int, int]) -> dict[str, Any]:
    """Official neural P-learning: ``--phases wm`` at two step counts, differenced."""
    spec = PLEARNING[name]
    ckpt = official_checkpoint(args, spec["config"])
    runs = []
    for n in steps:
        cmd = [args.official_python, "run.py", "--config", f"configs/{spec['config']}.py", "--phases", "wm",
               "--pqn_checkpoint", str(ckpt), "--WM_NUM_STEPS", str(n)]  # fmt: skip
        res = run_timed(cmd, Path(args.official), official_env())
        m = re.search(r"\[WM\] done in ([0-9.]+)s", res["stdout"])
        res["inner_s"] = float(m.group(1)) if m else float("nan")  # compile + steps, as the code prints it
        runs.append(res)
        for wm_dir in ckpt.glob("wm_*"):  # each run writes a timestamped WM dir with plots: not needed
            shutil.rmtree(wm_dir, ignore_errors=True)
    return differenced(runs[0], runs[1], (steps[1] - steps[0]) * spec["batch"])


def official_pqn(args: argparse.Namespace, rollouts: tuple[int, int]) -> dict[str, Any]:
    """Official PQN on MountainCar (its config: 4 x 1024): one and two rollouts, differenced."""
    runs = []
    for n in rollouts:
        out = Path(args.work) / "official" / f"pqn-{n}"
        cmd = [args.official_python, "run.py", "--config", "configs/mountaincar-position.py", "--phases", "pqn",
               "--run_dir", str(out), "--TOTAL_TIMESTEPS", str(n * PQN_ROLLOUT)]  # fmt: skip
        runs.append(run_timed(cmd, Path(args.official), official_env()))
    return differenced(runs[0], runs[1], (rollouts[1] - rollouts[0]) * PQN_ROLLOUT)


# ---- plray side -------------------------------------------------------------------------------------------


def plray_plearning(args: argparse.Namespace, spec: dict[str, Any], steps: tuple[int, int]) -> dict[str, Any]:
    """plray neural P-learning in a fresh process per step count (this script's ``--worker``), differenced."""
    runs = []
    for n in steps:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps({**spec, "steps": n}),
               "--threads", str(args.threads)]  # fmt: skip
        runs.append(run_timed(cmd, ROOT))
    return differenced(runs[0], runs[1], (steps[1] - steps[0]) * spec["batch"])


def plearning_worker(spec: dict[str, Any], threads: int) -> None:
    """One plray P-learning run (the process :func:`plray_plearning` times); prints its summary as JSON."""
    import numpy as np
    import torch

    from plray.agents.modules import GoalQNetwork
    from plray.agents.qsource import NetworkQSource
    from plray.core.neural import NeuralPConfig, train_successor
    from plray.envs.registry import make_task

    torch.set_num_threads(threads)
    task = make_task(spec["task"])
    torch.manual_seed(0)
    hiddens = (spec["width"],) * spec["layers"]
    net = GoalQNetwork(task.obs_dim + task.goal_dim, int(task.num_actions or 0), hiddens=hiddens, sigmoid=True)
    source = NetworkQSource(net, task, task.gamma, onednn=spec.get("onednn"))  # None: as shipped
    cfg = NeuralPConfig(steps=spec["steps"], batch_size=spec["batch"], schedule=spec["schedule"])
    res = train_successor(source, task, lambda rng, n: task.sample_states(n, rng), np.asarray(task.training_goals), cfg)
    summary = {"loop_s": res.seconds, "final_loss": res.losses[-1], "threads": torch.get_num_threads()}
    print(json.dumps(summary | {"onednn_layers": source.onednn_layers}))


def plray_pqn(args: argparse.Namespace, hiddens: list[int], rollouts: tuple[int, int]) -> dict[str, Any]:
    """plray PQN (RLlib, ``plray train``) on MountainCar with the official rollout shape, differenced."""
    import yaml

    base = yaml.safe_load((ROOT / "configs" / "agents" / "mountaincar-position-pqn.yaml").read_text())
    runs = []
    for n in rollouts:
        cfg = {**base, "name": f"throughput-{'x'.join(map(str, hiddens))}-{n}"}
        cfg["network"] = {**base["network"], "hiddens": hiddens}
        cfg["training"] = {**base["training"], "total_env_steps": n * PQN_ROLLOUT, "train_batch_size": 256,
                           "torch_threads": args.threads}  # fmt: skip
        cfg["checkpoint"] = {"every_iters": 1000, "keep": 1}
        out = Path(args.work) / "plray" / cfg["name"]
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        (out.parent / f"{cfg['name']}.yaml").write_text(yaml.safe_dump(cfg))
        plray = str(Path(sys.executable).with_name("plray"))
        runs.append(run_timed([plray, "train", str(out.parent / f"{cfg['name']}.yaml"), "--out", str(out)], ROOT))
    return differenced(runs[0], runs[1], (rollouts[1] - rollouts[0]) * PQN_ROLLOUT)


# ---- rounds, table ----------------------------------------------------------------------------------------


def one_round(args: argparse.Namespace, rnd: int, has_official: bool, save: Callable[[dict[str, Any]], None]) -> None:
    """One round: each figure measured once, the official side and plray alternating (first side flips).

    ``save`` receives each timing's row as soon as it is measured.
    """
    steps = (2, 6) if args.quick else (5, 65)  # 60 steps: start-up and compile noise well under 10%
    for name, spec in PLEARNING.items():
        if args.quick:
            spec = {**spec, "batch": 256}
        alt, forced = other_path()
        sides = [("plray", lambda s=spec: plray_plearning(args, s, steps)),
                 (alt, lambda s=spec, f=forced: plray_plearning(args, {**s, "onednn": f}, steps))]  # fmt: skip
        if has_official and not args.quick:
            sides.append(("official", lambda n=name: official_plearning(args, n, steps)))
        for impl, fn in sides if rnd % 2 == 0 else sides[::-1]:
            print(f"[round {rnd}] P-learning {name} {impl}", flush=True)
            save({"round": rnd, "figure": f"plearning-{name}", "impl": impl, **fn()})
        ctx = CONTEXT[name] if not args.quick else {**CONTEXT[name], "batch": 256}
        small = steps if args.quick else DEFAULT_STEPS  # small networks: enough steps to time
        for impl, onednn in (("plray", None), other_path()):
            save({"round": rnd, "figure": f"plearning-{name}-plray-default", "impl": impl,
                  **plray_plearning(args, {**ctx, "onednn": onednn}, small)})  # fmt: skip
    if rnd < args.pqn_rounds:
        rollouts = args.pqn_rollouts
        sides = [("plray", lambda: plray_pqn(args, [1024] * 4, rollouts))]
        if has_official and not args.quick:
            sides.append(("official", lambda: official_pqn(args, rollouts)))
        for impl, fn in sides if rnd % 2 == 0 else sides[::-1]:
            print(f"[round {rnd}] PQN mountaincar 4x1024 {impl}", flush=True)
            save({"round": rnd, "figure": "pqn-mountaincar", "impl": impl, **fn()})
        if not args.quick:
            save({"round": rnd, "figure": "pqn-mountaincar-plray-default", "impl": "plray",
                  **plray_pqn(args, [256, 256], rollouts)})  # fmt: skip


IMPLS = ("plray", "plray-torch", "plray-onednn", "official")
"""plray as shipped (the frozen Q-network on the matmul :func:`plray.core.frozen.onednn_preferred` picks),
plray forced onto torch's own matmul, plray forced onto oneDNN, the official code."""


def other_path() -> tuple[str, bool]:
    """The frozen-network path plray does not ship on this processor: (impl name, ``onednn`` to force it)."""
    from plray.core.frozen import onednn_preferred

    return ("plray-torch", False) if onednn_preferred() else ("plray-onednn", True)


def onednn_speedup(med: dict[str, dict[str, Any]]) -> float | None:
    """oneDNN's rate over torch's matmul, from whichever pair of plray paths a figure has."""
    if "plray-torch" in med and "plray" in med:
        return _ratio(med["plray"]["per_s"], med["plray-torch"]["per_s"])
    if "plray-onednn" in med and "plray" in med:
        return _ratio(med["plray-onednn"]["per_s"], med["plray"]["per_s"])
    return None


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median rates per (figure, implementation) and the plray / official ratios."""
    out: list[dict[str, Any]] = []
    for fig in dict.fromkeys(r["figure"] for r in rows):
        med: dict[str, dict[str, float | None]] = {}
        for impl in IMPLS:
            sel = [r for r in rows if r["figure"] == fig and r["impl"] == impl]
            if sel:
                med[impl] = {k: _median([r[k] for r in sel]) for k in ("per_s", "per_cpu_s")}
                med[impl]["load1"] = max(max(r["load1"]) for r in sel)
                med[impl]["n"] = len(sel)
        row: dict[str, Any] = {"figure": fig}
        for impl, m in med.items():
            row |= {f"{impl}_per_s": m["per_s"], f"{impl}_per_cpu_s": m["per_cpu_s"], f"{impl}_max_load": m["load1"]}
        if (speedup := onednn_speedup(med)) is not None:
            row["onednn_speedup"] = speedup
        if "plray" in med and "official" in med:
            row["ratio"] = _ratio(med["plray"]["per_s"], med["official"]["per_s"])
            row["ratio_cpu"] = _ratio(med["plray"]["per_cpu_s"], med["official"]["per_cpu_s"])
        row["rounds"] = med["plray"]["n"] if "plray" in med else 0
        out.append(row)
    return out


def _median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def markdown(summary: list[dict[str, Any]], rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The benchmark's markdown report."""
    from plray.evaluation.report import markdown_table

    cols = ("figure", "plray_per_s", "official_per_s", "ratio", "plray-torch_per_s", "plray-onednn_per_s",
            "onednn_speedup",
            "plray_per_cpu_s", "official_per_cpu_s", "ratio_cpu", "plray_max_load", "official_max_load",
            "rounds")  # fmt: skip
    per_run = ("round", "figure", "impl", "per_s", "per_cpu_s", "load1", "wall_s")
    lines = [
        "# Throughput: plray vs the official implementation (aletcher/inverting-bellman)",
        "",
        "Command: `python " + " ".join(["bench/throughput.py", *sys.argv[1:]]) + "`",
        "",
        "Rates: P-learning samples/s (steps x batch), PQN env steps/s; `_per_s` per wall-clock second,",
        "`_per_cpu_s` per CPU-second of the process (user + sys); medians over rounds; `ratio` = plray / official.",
        "Each rate differences two fresh runs (P-learning 5 and 65 steps; PQN A and B rollouts of 256 x 64",
        f"env steps, here A, B = {meta['pqn_rollouts']}), so start-up and JIT compilation cancel. `max_load`:",
        "the highest 1-minute load average seen at the start of its timings. Figures `*-plray-default`:",
        "plray's shipped network sizes.",
        f"`plray`: as shipped, the frozen Q-network on {meta['frozen_matmul']} here",
        "(plray.core.frozen.onednn_preferred);",
        "`plray-torch` / `plray-onednn`: the other path forced, measured in the same run;",
        "`onednn_speedup`: oneDNN's rate over torch's matmul (MKL).",
        "",
        markdown_table(summary, cols),
        "",
        meta["note"],
        "",
        "## Every timing",
        "",
        markdown_table(rows, per_run),
        "",
        f"Threads: {meta['threads']}",
        "",
        f"Machine: {meta['machine']}",
        "",
    ]
    return "\n".join(lines)


def rollout_pair(text: str) -> tuple[int, int]:
    """``--pqn-rollouts``: two rollout counts ``A,B`` with 1 <= A < B."""
    try:
        a, b = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two integers A,B (e.g. 1,4), got {text!r}") from None
    if not 1 <= a < b:
        raise argparse.ArgumentTypeError(f"expected 1 <= A < B, got {a},{b}")
    return a, b


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", default=None, help="checkout of aletcher/inverting-bellman (absent: skip)")
    parser.add_argument("--official-python", default=None, help="python of the official code's venv")
    parser.add_argument("--rounds", type=int, default=3, help="P-learning rounds")
    parser.add_argument("--pqn-rounds", type=int, default=1, help="rounds that also time PQN (slow: minutes each)")
    parser.add_argument("--pqn-rollouts", type=rollout_pair, default=(1, 2), metavar="A,B",
                        help="PQN runs of A and B rollouts of 256 x 64 env steps, differenced (default 1,2; "
                             "1,4 triples the timed work and divides start-up noise by three)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads for plray")
    parser.add_argument("--quick", action="store_true", help="plray only, tiny batches, no PQN default row")
    parser.add_argument("--work", default=None, help="scratch directory (default: a temporary one)")
    parser.add_argument("--name", default=None, help="result name (default throughput, quick: throughput_quick)")
    parser.add_argument("--settle-load", type=float, default=1.0,
                        help="before each timing, wait (at most 4 min) for the 1-minute load average to fall "
                             "below this (0: do not wait)")  # fmt: skip
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return parser


def threads_note(args: argparse.Namespace) -> str:
    """torch's and JAX's thread settings, as this benchmark runs them."""
    import torch

    return (
        f"plray: torch.set_num_threads({args.threads}) (default here {torch.get_num_threads()}, interop "
        f"{torch.get_num_interop_threads()}); official: JAX_PLATFORMS=cpu, XLA's own thread pool (all cores)"
    )


def main() -> None:
    args = build_parser().parse_args()
    if args.worker is not None:
        plearning_worker(json.loads(args.worker), args.threads)
        return
    SETTLE["below"] = max(0.0, float(args.settle_load))
    has_official = bool(args.official and Path(args.official, "run.py").exists() and args.official_python)
    note = "Official side measured." if has_official else "Official side skipped: no --official checkout given."
    if not has_official:
        print(note, flush=True)
    args.work = args.work or tempfile.mkdtemp(prefix="plray-throughput-")
    rows: list[dict[str, Any]] = []
    name = args.name or ("throughput_quick" if args.quick else "throughput")
    from plray.core.frozen import cpu_vendor, onednn_preferred

    meta = {
        "machine": machine() | {"cpu_vendor": cpu_vendor()},
        "threads": threads_note(args),
        "note": note,
        "pqn_rollouts": list(args.pqn_rollouts),
        "frozen_matmul": "oneDNN" if onednn_preferred() else "torch's matmul",
    }

    def save(row: dict[str, Any]) -> None:  # after every timing: an interrupted run keeps what it measured
        rows.append(row)
        summary = summarise(rows)
        payload = {**meta, "quick": args.quick, "summary": summary, "rows": rows}
        paths[:] = write_results(name, payload, markdown(summary, rows, meta))

    paths: list[Path] = []
    for rnd in range(args.rounds):
        one_round(args, rnd, has_official, save)
    print(f"wrote {paths[0]} and {paths[1]}")


if __name__ == "__main__":
    main()
