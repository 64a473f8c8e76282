"""The ``plray`` command.

    plray fourrooms --variant windy --goals 4 --goal-family generic --method closed-form [--json]
    plray run CONFIG.yaml [--run-dir DIR] [--address ADDRESS]
    plray exact-table
    plray serve [--models DIR] [--address ADDRESS]

Flags that set a config field (``FourRoomsSpec``, ``ExtractionConfig`` and the P-learning overrides of
``NeuralPConfig``, the experiments' ``EvaluationSection``, ``ServeSettings``, ``DeploymentOptions``) are
generated from those dataclasses by :mod:`plray.utils.cli_fields`: type, default, choices and help come
from the field, so the config and the command line cannot drift; each also answers to the field's own
name (``--num-goals`` beside ``--goals``). Those flags are added when their command runs, so a command
never imports another's heavy modules. Bad arguments print a message that says what was wrong and exit
with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from plray import __version__
from plray.core.types import KERNEL_METHODS, VALUE_MODES
from plray.utils.cli_fields import (
    FlagSpec,
    LazyArgumentParser,
    add_dataclass_arguments,
    dataclass_from_args,
    given_values,
)
from plray.utils.validation import PlrayInputError

TABLE_COLUMNS = (
    "variant",
    "num_goals",
    "goal_family",
    "method",
    "local",
    "tv_mean",
    "tv_max",
    "kernel_mse",
    "rank",
    "identifiable",
    "return_wm",
    "return_opt",
)

# (variant, goal counts): the paper's FourRooms study (docs/method.md#fourrooms) plus |G| = |S| = 68
DEMO_GRID: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("deterministic", (1, 3, 5, 68)),
    ("windy", (1, 2, 3, 4, 68)),
    ("teleport", (5, 10, 20, 68)),
)


METHOD_ALIASES: dict[str, dict[str, Any]] = {"simplex-local": {"method": "simplex", "local": True}}
"""FourRooms methods by the names experiment configs give them, as :class:`FourRoomsSpec` fields (the rule of
:func:`plray.experiments.fourrooms.method_options`)."""

P_LEARNING_FLAGS = ("steps", "batch_size", "lr")
""":class:`NeuralPConfig` fields ``plray extract`` sets on the command line (overrides of the task's defaults)."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``plray`` command line: one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="plray",
        description=(
            "plray extracts world models from goal-conditioned agents' Q-values (P-learning) "
            "and serves them to planners."
        ),
    )
    parser.add_argument("--version", action="version", version=f"plray {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=LazyArgumentParser)

    _add_fourrooms(sub)
    _add_train(sub)
    _add_extract(sub)
    _add_evaluate(sub)
    _add_serve(sub)
    _add_run(sub)
    _add_exact_table(sub)
    return parser


def _add_fourrooms(sub: Any) -> None:
    """``plray fourrooms``: exact agent, extraction, evaluation on FourRooms."""
    fr = sub.add_parser(
        "fourrooms",
        help="extract the FourRooms kernel from an exact goal-conditioned agent and evaluate it",
        description=(
            "Build FourRooms, train an exact agent (value iteration) on |G| reward functions, extract "
            "the transition kernel from its Q-values and compare it with the true kernel: total "
            "variation (mean and max over state-action pairs), kernel MSE, the identifiability of the "
            "Bellman matrix, and returns on unseen goals when planning inside the extracted kernel "
            "(R_WM) next to the optimum (R*)."
        ),
    )
    fr.defer(_fourrooms_flags)


def _fourrooms_flags(fr: argparse.ArgumentParser) -> None:
    """``plray fourrooms``'s flags: one per :class:`FourRoomsSpec` field, then ``--json``."""
    from plray.envs.fourrooms import GOAL_FAMILIES, GOAL_PLACEMENTS, VARIANTS
    from plray.experiments.fourrooms import FourRoomsSpec

    add_dataclass_arguments(
        fr,
        FourRoomsSpec,
        flags={
            "variant": FlagSpec(choices=VARIANTS),
            "num_goals": FlagSpec(names=("--goals",), type=_positive_int, metavar="N"),
            "goal_family": FlagSpec(choices=GOAL_FAMILIES),
            "method": FlagSpec(
                choices=(*KERNEL_METHODS, *METHOD_ALIASES),
                note="simplex-local, as experiment configs name it: simplex with --local",
            ),
            "placement": FlagSpec(choices=GOAL_PLACEMENTS),
            "q_noise": FlagSpec(metavar="EPS"),
            "value_mode": FlagSpec(choices=VALUE_MODES),
            "updates": FlagSpec(type=_positive_int),
        },
    )
    fr.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def _add_train(sub: Any) -> None:
    """``plray train``: one RLlib agent from a YAML config."""
    tr = sub.add_parser(
        "train",
        help="train a goal-conditioned agent on RLlib (DQN, PQN or SAC, with hindsight relabelling)",
        description=(
            "Train one goal-conditioned agent from a YAML config (see configs/agents/). Writes config.yaml, "
            "checkpoints/ (resumable), agent/ (pickle-free Q-network artifact for P-learning), progress.jsonl "
            "and metrics.json under the output directory. Started again on the same directory, it resumes "
            "from the newest checkpoint."
        ),
    )
    tr.add_argument("config", help="agent config YAML")
    tr.add_argument("--out", default=None, help="run directory (default: runs/agents/<name>)")
    tr.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    tr.add_argument("--no-resume", action="store_true", help="start afresh even if the directory holds checkpoints")
    tr.add_argument("--max-iterations", type=_positive_int, default=None, help="stop after N iterations")
    tr.add_argument("--quiet", action="store_true", help="no progress line")


def _add_extract(sub: Any) -> None:
    """``plray extract``: neural P-learning from an agent or the oracle."""
    ex = sub.add_parser(
        "extract",
        help="extract a world model from an agent (or the oracle) by neural P-learning",
        description=(
            "Run neural P-learning on a trained agent's Q-values (or on ground-truth Q* from grid value "
            "iteration with --agent oracle), then write the world-model artifact (manifest.json + tensors.npz, "
            "no pickle), extraction.json and a report with plots under --out. Defaults follow the paper's "
            "released settings for each task."
        ),
    )
    ex.defer(_extract_flags)


def _extract_flags(ex: argparse.ArgumentParser) -> None:
    """``plray extract``'s flags: :class:`ExtractionConfig`'s fields, the P-learning overrides, ``--out``."""
    from plray.core.neural import NeuralPConfig
    from plray.core.types import ESTIMATORS, EXTRACTION_METHODS
    from plray.experiments.extraction import ExtractionConfig

    add_dataclass_arguments(
        ex,
        ExtractionConfig,
        exclude=("p_learning",),
        flags={
            "task": FlagSpec(
                note="mountaincar-position-noisy has Gaussian process noise, which --method gaussian recovers"
            ),
            "method": FlagSpec(choices=EXTRACTION_METHODS),
            "oracle_resolution": FlagSpec(type=_positive_int),
            "normalize_inputs": FlagSpec(negative_names=("--raw-inputs",)),
            "eval_states": FlagSpec(type=_positive_int),
            "estimator": FlagSpec(choices=ESTIMATORS),
        },
    )
    add_dataclass_arguments(
        ex,
        NeuralPConfig,
        only=P_LEARNING_FLAGS,
        overrides_only=True,
        flags={
            name: FlagSpec(type=None if name == "lr" else _positive_int, default_text=_task_default(name))
            for name in P_LEARNING_FLAGS
        },
    )
    ex.add_argument("--out", required=True, help="output directory")
    ex.add_argument("--quiet", action="store_true", help="no progress output")


def _task_default(name: str) -> str:
    """``the task's: 20000 (mountaincar-position, ...), 1000 (reacher)``: a P-learning field's default per task."""
    from plray.core.neural import NeuralPConfig
    from plray.experiments.extraction import TASK_DEFAULTS

    base = getattr(NeuralPConfig(), name)
    by_value: dict[Any, list[str]] = {}
    for task, defaults in TASK_DEFAULTS.items():
        by_value.setdefault(defaults["p"].get(name, base), []).append(task)
    return "the task's: " + ", ".join(f"{value:g} ({', '.join(tasks)})" for value, tasks in by_value.items())


def _add_evaluate(sub: Any) -> None:
    """``plray evaluate``: a world-model artifact against the truth and on unseen goals."""
    ev = sub.add_parser(
        "evaluate",
        help="evaluate a world-model artifact against the true dynamics and on unseen goals",
        description=(
            "Load a world-model artifact, compute WM_MSE/WM_NMSE against the true dynamics and, unless "
            "--no-unseen, plan inside the model for the paper's unseen goals (grid value iteration) and roll "
            "the plans out in the true environment from 512 reset states: R_WM next to R*."
        ),
    )
    ev.add_argument("artifact", help="world-model artifact directory")
    ev.add_argument("--out", default=None, help="report directory (default: <artifact>/../evaluation)")
    ev.defer(_evaluate_flags)


def _evaluate_flags(ev: argparse.ArgumentParser) -> None:
    """``plray evaluate``'s flags: the evaluation section's fields and the extraction's ``eval_states``."""
    from plray.experiments.extraction import ExtractionConfig
    from plray.experiments.schema import EvaluationSection

    add_dataclass_arguments(
        ev,
        EvaluationSection,
        only=("unseen", "resolution", "num_starts"),
        flags={
            "resolution": FlagSpec(type=_positive_int),
            "num_starts": FlagSpec(names=("--starts",), type=_positive_int),
        },
    )
    add_dataclass_arguments(
        ev, ExtractionConfig, only=("eval_states",), flags={"eval_states": FlagSpec(type=_positive_int)}
    )
    ev.add_argument("--seed", type=int, default=0, help="seeds the evaluation states and rollouts (default: 0)")


def _add_serve(sub: Any) -> None:
    """``plray serve``: the world-model API on Ray Serve."""
    sv = sub.add_parser(
        "serve",
        help="serve world models to planners over HTTP (Ray Serve)",
        description=(
            "Deploy the world-model API (predict, rollout, plan, models, healthz, metrics) on Ray Serve over the "
            "artifacts in --models (<id>/<version>/ or <id>/; a local path or a pyarrow URI such as s3://...). "
            "Without --address a local Ray is started; with one the application runs on that cluster. Set "
            "PLRAY_SERVE_TOKEN to require 'Authorization: Bearer <token>'. See docs/serve.md."
        ),
    )
    sv.defer(_serve_flags)


def _serve_flags(sv: argparse.ArgumentParser) -> None:
    """``plray serve``'s flags: :class:`ServeSettings` and :class:`DeploymentOptions` fields, and where to listen."""
    from plray.serve.settings import DeploymentOptions, ServeSettings

    add_dataclass_arguments(sv, ServeSettings, only=("models",), flags={"models": FlagSpec(metavar="DIR")})
    sv.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    sv.add_argument("--host", default="127.0.0.1", help="HTTP host (default: 127.0.0.1; 0.0.0.0 to expose)")
    sv.add_argument("--port", type=_positive_int, default=8000, help="HTTP port (default: 8000)")
    sv.add_argument("--route-prefix", default="/", help="URL prefix of the application (default: /)")
    add_dataclass_arguments(
        sv,
        DeploymentOptions,
        only=("num_replicas",),
        flags={
            "num_replicas": FlagSpec(
                names=("--replicas",), type=_positive_int, metavar="N", default=1, help="replicas of the API deployment"
            )
        },
    )
    add_dataclass_arguments(
        sv,
        ServeSettings,
        only=("reload_interval_s",),
        flags={"reload_interval_s": FlagSpec(names=("--reload-interval",), metavar="S")},
    )


def _add_run(sub: Any) -> None:
    """``plray run``: one experiment, from config to results."""
    rn = sub.add_parser(
        "run",
        help="run an experiment: train agents (Tune), extract world models (actor pool), evaluate, report",
        description=(
            "Run one experiment from its YAML config (see configs/experiments/): trains one agent per reward-"
            "function set and seed as Ray Tune trials, inverts every agent with every extraction method on a pool "
            "of Ray actors, builds ensembles over seeds, scores everything against the true dynamics and writes "
            "Parquet tables, results.md and plots under the run directory. Without --address it starts an "
            "embedded local Ray (under `ray job submit` it joins that job's cluster). Started again on the same "
            "run directory it resumes: finished trials and jobs are kept."
        ),
    )
    rn.add_argument("config", help="experiment config YAML")
    rn.add_argument(
        "--run-dir",
        default=None,
        metavar="DIR_OR_URI",
        help=(
            "run directory (default: runs/<name>): a local path, or object storage as a URI pyarrow understands "
            "(s3://bucket/prefix, gs://bucket/prefix), which nodes that share no disk need; Tune state, checkpoints, "
            "artifacts, Parquet tables and plots go there and a rerun resumes from it. S3 reads AWS_ACCESS_KEY_ID, "
            "AWS_SECRET_ACCESS_KEY, AWS_REGION and AWS_ENDPOINT_URL_S3 (S3-compatible stores such as MinIO)"
        ),
    )
    rn.add_argument(
        "--address", default=None, help="Ray cluster to join: auto, host:port or ray://host:10001 (default: local)"
    )


def _add_exact_table(sub: Any) -> None:
    """``plray exact-table``: P-learning from exact Q* over every variant."""
    demo = sub.add_parser(
        "exact-table",
        help="P-learning from exact Q* over every FourRooms variant and several goal counts (no Ray)",
        description="Closed-form P-learning (and column matching where the dynamics are deterministic) "
        "from exact goal-conditioned Q-values over every FourRooms variant and the paper's goal counts; "
        "prints one table.",
    )
    demo.add_argument("--json", metavar="PATH", default=None, help="also write all results to PATH (JSON)")


def _print_err(msg: str) -> None:
    print(f"plray: error: {msg}", file=sys.stderr)


def cmd_fourrooms(args: argparse.Namespace) -> int:
    from plray.evaluation.report import markdown_table
    from plray.experiments.fourrooms import FourRoomsSpec, run_fourrooms

    spec = dataclass_from_args(FourRoomsSpec, args, **METHOD_ALIASES.get(args.method, {}))
    spec.validate()
    progress = None if args.json else (lambda msg: print(msg, file=sys.stderr, flush=True))
    result = run_fourrooms(spec, progress=progress)
    if args.json:
        print(json.dumps(result, sort_keys=True))
        return 0
    print(markdown_table([result], TABLE_COLUMNS))
    print()
    print(markdown_table([{"task": k, **v} for k, v in result["unseen"].items()], ("task", "return_wm", "return_opt")))
    d = result
    print(
        f"\nidentifiability: rank(M) = {d['rank']} of 68, sigma_min = {d['sigma_min']:.3g}, "
        f"column gap = {d['column_gap']:.3g}; identifiable for {spec.variant} dynamics: "
        f"{'yes' if d['identifiable'] else 'no'}"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from plray.evaluation.report import markdown_table
    from plray.experiments.fourrooms import FourRoomsSpec, run_fourrooms
    from plray.utils.io import atomic_write_json

    specs = []
    for variant, counts in DEMO_GRID:
        for n in counts:
            specs.append(FourRoomsSpec(variant=variant, num_goals=n, goal_family="generic", method="closed-form"))
            if variant == "deterministic" and n < 68:
                specs.append(FourRoomsSpec(variant=variant, num_goals=n, goal_family="generic", method="column-match"))
            elif n < 68:
                specs.append(
                    FourRoomsSpec(variant=variant, num_goals=n, goal_family="generic", method="simplex", local=True)
                )
    start = time.perf_counter()
    results: list[dict[str, Any]] = []
    for i, spec in enumerate(specs, 1):
        print(
            f"[{i:2d}/{len(specs)}] {spec.variant:13s} |G|={spec.num_goals:<3d} {spec.method}",
            file=sys.stderr,
            flush=True,
        )
        results.append(run_fourrooms(spec))
    print()
    print("P-learning on FourRooms from exact goal-conditioned Q-values (generic goals, gamma = 0.95)")
    print(markdown_table(results, TABLE_COLUMNS))
    print(
        "\ntv: total variation to the true kernel (mean/max over state-action pairs); identifiable: "
        "for the variant's kernel class (from Q and M alone);\nreturn_wm: plan in the extracted kernel, act in "
        "the true one (mean over 3 unseen tasks); return_opt: optimal.\nsimplex/local: least squares over "
        "distributions supported on each state's neighbours (not in the paper; see docs/extraction.md)."
    )
    print(f"\n{len(results)} extractions in {time.perf_counter() - start:.1f} s")
    if args.json:
        path = atomic_write_json(args.json, results)
        print(f"results written to {path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from plray.experiments.pipeline import run_experiment
    from plray.experiments.schema import load_experiment

    cfg = load_experiment(args.config)
    run_dir = args.run_dir or str(Path("runs") / cfg.name)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    summary = run_experiment(cfg, run_dir, address=args.address, base_dir=Path(args.config).resolve().parent, say=say)
    print()
    print(summary.table)
    print()
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in summary.stage_seconds.items())
    print(
        f"{summary.agents} agents, {summary.extractions} world models, {summary.ensembles} ensembles in "
        f"{summary.seconds:.0f} s ({stages}) on a Ray cluster of {summary.cluster_nodes} node(s)"
    )
    where = summary.location or str(summary.run_dir)
    print(f"results: {where}/results/results.md")
    print(f"artifacts: {where}")
    print(f"serve the world models: plray serve --models {where}/models")
    if summary.failures:
        for key, err in sorted(summary.failures.items()):
            _print_err(f"{key}: {err}")
        _print_err(f"{len(summary.failures)} units failed; run the same command again to retry them")
        return 1
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from plray.agents.train import load_config, train

    cfg = load_config(args.config)
    out = Path(args.out) if args.out else Path("runs") / "agents" / cfg.run_name
    print(f"training {cfg.algorithm} on {cfg.task} -> {out}", file=sys.stderr)
    metrics = train(
        cfg,
        out,
        resume=not args.no_resume,
        progress=not args.quiet,
        address=args.address,
        max_iterations=args.max_iterations,
    )
    print(json.dumps(metrics, indent=2))
    if not metrics["finished"]:
        print(f"stopped early at {metrics['env_steps']} steps; run again to resume", file=sys.stderr)
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    from plray.core.neural import NeuralPConfig
    from plray.experiments.extraction import ExtractionConfig, run_extraction

    overrides = given_values(NeuralPConfig, args, only=P_LEARNING_FLAGS)
    cfg = dataclass_from_args(ExtractionConfig, args, p_learning=overrides).validate()
    steps, batch = cfg.neural_config().steps, cfg.neural_config().batch_size
    first: list[tuple[int, float]] = []  # (step, time) of the first report: rates exclude the set-up

    def progress(step: int, loss: float) -> None:
        now = time.perf_counter()
        first[:] = first or [(step, now)]
        if step % max(100, steps // 20) and step != steps:
            return
        (step0, t0), line = first[0], f"[extract {cfg.task}] step {step}/{steps}  loss {loss:.3g}"
        if step > step0 and now > t0:
            rate = (step - step0) * batch / (now - t0)
            line += f"  {rate:,.0f} samples/s  ~{(steps - step) * batch / rate:.0f} s left"
        print(line, file=sys.stderr, flush=True)

    print(f"extracting a {cfg.method} world model from {cfg.agent} on {cfg.task} -> {args.out}", file=sys.stderr)
    summary = run_extraction(cfg, args.out, progress=None if args.quiet else progress)
    print(json.dumps(summary, indent=2))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from plray.experiments.extraction import run_evaluation

    out = Path(args.out) if args.out else Path(args.artifact).resolve().parent / "evaluation"
    print(f"evaluating {args.artifact} -> {out}", file=sys.stderr)
    result = run_evaluation(
        args.artifact,
        out,
        unseen=args.unseen,
        resolution=args.resolution,
        num_starts=args.num_starts,
        seed=args.seed,
        eval_states=args.eval_states,
    )
    from plray.evaluation.report import markdown_table

    for space, m in result["metrics"].items():
        if space == "kernel":
            print(f"kernel: std true {m['std_true']}, model {m['std_model']}, median rel. error {m['std_rel_error']}")
        else:
            print(f"WM_NMSE ({space} space): {m['wm_nmse']:.3g}")
    if result.get("unseen"):
        print(markdown_table(result["unseen"], ("goal", "return_wm", "return_opt", "ratio")))
    print(f"report: {out / 'report.md'}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    from plray.serve.app import run

    if not args.route_prefix.startswith("/"):
        raise PlrayInputError(f"--route-prefix: must start with '/', got {args.route_prefix!r}")
    if args.reload_interval_s < 0:
        raise PlrayInputError(f"--reload-interval: must be >= 0, got {args.reload_interval_s}")
    if "://" not in args.models and not os.path.isdir(args.models):
        raise PlrayInputError(f"--models: {args.models!r} is not a directory")
    run(
        args.models,
        address=args.address,
        host=args.host,
        port=args.port,
        route_prefix=args.route_prefix,
        settings={"reload_interval_s": args.reload_interval_s},
        deployment={"num_replicas": args.num_replicas},
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handlers = {
        "fourrooms": cmd_fourrooms,
        "exact-table": cmd_demo,
        "run": cmd_run,
        "train": cmd_train,
        "extract": cmd_extract,
        "evaluate": cmd_evaluate,
        "serve": cmd_serve,
    }
    try:
        return handlers[args.command](args)
    except PlrayInputError as exc:
        _print_err(str(exc))
        return 2
    except KeyboardInterrupt:
        _print_err("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
