"""``plray run``: one experiment from config to results, on an embedded local Ray or a cluster.

Stages, each printed as it starts and as each unit finishes:

1. **train**: one Tune trial per cell (:mod:`plray.experiments.sweep`);
2. **extract**: every (agent, method) job on the extraction actor pool (:mod:`plray.experiments.actors`);
3. **ensemble**: one ensemble world model per cell group and method, over seeds;
4. **report**: Parquet tables, ``results.md`` and plots (:mod:`plray.experiments.results`).

The run directory's layout (``config.yaml``, ``agents/``, ``extractions/``, ``models/``, ``tune/``,
``results/``) is :class:`plray.experiments.rundir.RunLayout`'s; ``models/`` is a registry
directory, so ``plray serve --models <run>/models`` serves every world model of the run.

Running the same config on the same run directory again resumes: finished trials and jobs are
kept, unfinished ones are run, and the tables are rebuilt from what is on disk. On a cluster the
run directory must be on storage every node sees: a shared volume, or object storage named by a
URI (``--run-dir s3://bucket/runs/x``; see :mod:`plray.experiments.rundir`), where the same
layout is kept and every node works on a local copy that it syncs unit by unit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from plray.experiments.rundir import RunDir, RunLayout, skip_checkpoints
from plray.experiments.schema import ExperimentConfig
from plray.utils import ray_runtime
from plray.utils.stored_config import check_stored_config, write_stored_config

Say = Callable[[str], None]


@dataclass
class RunSummary:
    """What ``plray run`` reports at the end."""

    run_dir: Path
    """The run's local working copy (the run directory itself unless it is a URI)."""
    results_dir: Path
    table: str
    agents: int
    extractions: int
    ensembles: int
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    cluster_nodes: int = 0
    """Alive Ray nodes when the run started."""
    location: str = ""
    """The run directory as given: an absolute path or a URI (``s3://...``)."""

    @property
    def ok(self) -> bool:
        return not self.failures


def check_run_dir(cfg: ExperimentConfig, run_dir: Path) -> None:
    """Write ``config.yaml``, or check that a run directory's existing one is the same experiment."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = RunLayout(run_dir).config_file
    held = check_stored_config(
        path,
        cfg,
        different=(
            f"{run_dir}: holds a run of a different configuration; resume it with its own config.yaml "
            "(plray run <run>/config.yaml), or choose another --run-dir"
        ),
        unreadable="the run directory holds an unreadable config",
    )
    if not held:
        write_stored_config(path, cfg)


def run_experiment(
    cfg: ExperimentConfig,
    run_dir: str | os.PathLike[str] | RunDir,
    *,
    address: str | None = None,
    base_dir: Path | None = None,
    say: Say = print,
) -> RunSummary:
    """Run (or resume) an experiment; see the module docstring.

    Args:
        cfg: the validated experiment.
        run_dir: the run directory: a local path, or a URI pyarrow's filesystems understand
            (``s3://bucket/prefix``, ``gs://...``), where the run is kept and resumed from.
        address: a Ray cluster to join (``auto``, ``ray://...`` or ``host:port``); None starts an
            embedded local Ray (or joins the cluster of ``RAY_ADDRESS``, as under ``ray job submit``).
        base_dir: where a relative ``agent.rllib.config`` resolves (the experiment file's folder);
            default: the working directory. The file is read into the run's config
            (:func:`plray.experiments.jobs.embed_agent_config`), so the run needs it only once.
        say: progress printer.
    """
    import ray

    from plray.experiments.results import collect, write_results
    from plray.experiments.sweep import run_sweep

    cfg, store = _open_run(cfg, run_dir, base_dir, say)
    run = store.local
    start = time.perf_counter()
    stages: dict[str, float] = {}
    cells = cfg.cells()
    say(f"plray run: {cfg.name}: {len(cells)} agents x {len(cfg.extraction.methods)} methods -> {store.uri}")
    with ray_runtime.connect(address, num_cpus=cfg.resources.num_cpus):
        res = ray.cluster_resources()
        cluster_nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        say(f"Ray: {cluster_nodes} node(s), {res.get('CPU', 0):g} CPUs")

        t = time.perf_counter()
        say("== stage 1/4: train agents (Ray Tune) ==")
        failures = {f"train {k}": v for k, v in run_sweep(cfg, cells, store, say=say).items()}
        stages["train"] = time.perf_counter() - t

        t = time.perf_counter()
        failures |= _extract_stage(cfg, store, say)
        stages["extract"] = time.perf_counter() - t

        t = time.perf_counter()
        agents, extractions = collect(cfg, run, cells)
        ensembles = _ensemble_stage(cfg, store, extractions, say)
        stages["ensemble"] = time.perf_counter() - t

        t = time.perf_counter()
        say("== stage 4/4: results ==")
        results_dir, table = write_results(cfg, run, agents, extractions, ensembles, failures)
        store.push(store.layout.rel(results_dir))
        stages["report"] = time.perf_counter() - t
    return RunSummary(
        run_dir=run,
        results_dir=results_dir,
        table=table,
        agents=len(agents),
        extractions=len(extractions),
        ensembles=len(ensembles),
        failures=failures,
        seconds=time.perf_counter() - start,
        stage_seconds=stages,
        cluster_nodes=cluster_nodes,
        location=store.uri,
    )


def _open_run(
    cfg: ExperimentConfig, run_dir: str | os.PathLike[str] | RunDir, base_dir: Path | None, say: Say
) -> tuple[ExperimentConfig, RunDir]:
    """The validated config (agent config file embedded) and the run directory, checked and synced."""
    from plray.experiments.jobs import embed_agent_config

    cfg = embed_agent_config(cfg.validate(), base_dir or Path.cwd())
    store = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    if store.remote:
        say(f"run directory {store.uri} (working copy {store.local})")
        store.pull(skip=lambda rel: skip_checkpoints(rel) or RunLayout.is_tune_state(rel))
    check_run_dir(cfg, store.local)
    store.push(RunLayout.CONFIG)
    return cfg, store


def _extract_stage(cfg: ExperimentConfig, store: RunDir, say: Say) -> dict[str, str]:
    """Stage 2: every unfinished job of the trained cells on the actor pool; returns failures."""
    from plray.experiments.actors import ExtractionPool
    from plray.experiments.jobs import jobs_for, read_result

    layout = store.layout
    trained = [c for c in cfg.cells() if read_result(layout.cell_result(c.key)) is not None]
    jobs = jobs_for(cfg, trained)
    todo = [j for j in jobs if read_result(layout.job_result(j.key)) is None]
    say(f"== stage 2/4: extract world models ({len(todo)} of {len(jobs)} jobs to run) ==")
    if not todo:
        return {}
    pool = ExtractionPool(cfg, store, num_actors=min(cfg.resources.num_actors, len(todo)))
    try:
        report = pool.run(todo, say=say)
    finally:
        pool.shutdown()
    store.pull(RunLayout.EXTRACTIONS, RunLayout.MODELS)
    return {f"extract {k}": v for k, v in report.errors.items()}


def _ensemble_stage(cfg: ExperimentConfig, store: RunDir, extractions: list[dict], say: Say) -> list[dict]:
    """Stage 3: one ensemble per cell group and method over seeds (when enabled and seeds > 1)."""
    from plray.experiments.results import build_ensembles

    if not (cfg.extraction.ensemble.enabled and len(cfg.seeds) > 1):
        say("== stage 3/4: ensembles skipped (one seed, or disabled) ==")
        return []
    say("== stage 3/4: ensembles over seeds ==")
    ensembles = build_ensembles(cfg, store.local, extractions)
    store.push(*(store.layout.rel(e["world_model"]) for e in ensembles))
    return ensembles
