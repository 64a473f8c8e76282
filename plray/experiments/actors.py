"""Distributed extraction: a pool of Ray actors, each loading agents once and running many jobs.

Each :class:`ExtractionWorker` keeps the agents it has loaded (:class:`~plray.experiments.jobs.SourceCache`),
and the pool hands an idle worker a job on an agent it already holds when there is one, else a job
on an agent no other worker holds, so an agent with several methods is usually read once.

Fault tolerance comes in three layers:

* the actor is created with ``max_restarts`` and ``max_task_retries``: if its process dies, Ray
  restarts it and re-runs the job that was in flight;
* iterative methods checkpoint their optimiser state next to the job's result while they run, and
  the re-run job resumes from the newest checkpoint rather than from update 0;
* results are written atomically per job and a job whose result exists returns it unchanged, so
  finished results are never lost or produced twice, not even across driver restarts.

On a run directory on object storage (:mod:`plray.experiments.rundir`), a worker pulls the job's
agent and its folder (with a checkpoint to resume from) into its node's working copy first, and
pushes the job's folder and world model when it is done.

A worker that is dead for good (restarts exhausted) is replaced by a fresh actor and its job is
submitted again, up to ``max(1, resources.actor_restarts)`` times per job.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from plray.experiments.jobs import ExtractionJob, SourceCache, node_info, run_job
from plray.experiments.rundir import RunDir
from plray.experiments.schema import ExperimentConfig, experiment_from_mapping
from plray.utils.schema import to_mapping

Say = Callable[[str], None]


class ExtractionWorker:
    """One extraction actor (created through :func:`worker_class`)."""

    def __init__(self, experiment: dict[str, Any], run_dir: str) -> None:
        import torch

        torch.set_num_threads(1)
        self.cfg = experiment_from_mapping(experiment)
        self.store = RunDir(run_dir)
        self.run_dir = self.store.local
        self.cache = SourceCache()
        self.jobs_run = 0

    def info(self) -> dict[str, Any]:
        """The worker's process and node, and how many agents it has loaded."""
        return {
            **node_info(),
            "agent_loads": self.cache.loads,
            "jobs_run": self.jobs_run,
        }

    def run(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Run one job (:meth:`ExtractionJob.as_dict`), or return its finished result."""
        job = ExtractionJob.from_dict(spec)
        layout = self.store.layout
        agent, folder, model = (
            layout.rel(layout.agent_dir(job.cell.key, job.step)),
            layout.rel(layout.job_dir(job.key)),
            layout.rel(layout.model_dir(job.key)),
        )
        self.store.pull(agent, folder)
        result = run_job(self.cfg, job, self.run_dir, self.cache)
        self.store.push(folder, model)
        self.jobs_run += 1
        return {**result, "worker_agent_loads": self.cache.loads}


def worker_class(cfg: ExperimentConfig) -> Any:
    """The Ray actor class with the experiment's resources and restart policy."""
    restarts = cfg.resources.actor_restarts
    return ray.remote(ExtractionWorker).options(
        num_cpus=cfg.resources.cpus_per_actor,
        max_restarts=restarts,
        max_task_retries=restarts,
    )


@dataclass
class PoolReport:
    """What a pool run produced."""

    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Finished jobs by key."""
    errors: dict[str, str] = field(default_factory=dict)
    """Failed jobs by key, with the error's last line."""
    replaced_workers: int = 0
    """Workers that died for good and were replaced."""
    seconds: float = 0.0
    workers: list[dict[str, Any]] = field(default_factory=list)
    """Final :meth:`ExtractionWorker.info` of every live worker."""


class ExtractionPool:
    """A fixed number of extraction actors fed from a job queue (see the module docstring).

    Args:
        cfg: the experiment (its ``resources`` size the pool).
        run_dir: the run directory: a path every node sees (a shared volume), or a URI run
            directory (:class:`~plray.experiments.rundir.RunDir`) that workers sync with.
        num_actors: overrides ``cfg.resources.num_actors``.
    """

    def __init__(self, cfg: ExperimentConfig, run_dir: RunDir | Path, num_actors: int | None = None) -> None:
        self.cfg = cfg
        self.store = run_dir if isinstance(run_dir, RunDir) else RunDir(Path(run_dir).resolve())
        self.run_dir = self.store.local
        self.num_actors = num_actors or cfg.resources.num_actors
        self._cls = worker_class(cfg)
        self._mapping = to_mapping(cfg)
        self.workers = [self._spawn() for _ in range(self.num_actors)]

    def _spawn(self) -> Any:
        return self._cls.remote(self._mapping, self.store.uri)

    def worker_pids(self) -> list[int]:
        return [ray.get(w.info.remote())["pid"] for w in self.workers]

    def run(self, jobs: list[ExtractionJob], *, say: Say = print) -> PoolReport:
        """Run every job; returns when all have finished or failed for good."""
        report = PoolReport()
        start = time.perf_counter()
        pending = list(jobs)
        attempts: dict[str, int] = {}
        held: list[set[str]] = [set() for _ in self.workers]  # agents each worker has loaded
        in_flight: dict[Any, tuple[int, ExtractionJob]] = {}
        idle = list(range(len(self.workers)))
        total = len(jobs)

        def submit(w: int) -> None:
            # a job on an agent this worker holds; else one on an agent no other worker holds
            others = set().union(*(h for i, h in enumerate(held) if i != w))
            agent = lambda j: str(j.agent_dir(self.run_dir))  # noqa: E731
            pick = next((i for i, j in enumerate(pending) if agent(j) in held[w]), None)
            if pick is None:
                pick = next((i for i, j in enumerate(pending) if agent(j) not in others), 0)
            job = pending.pop(pick)
            attempts[job.key] = attempts.get(job.key, 0) + 1
            held[w].add(agent(job))
            in_flight[self.workers[w].run.remote(job.as_dict())] = (w, job)

        while pending or in_flight:
            while pending and idle:
                submit(idle.pop(0))
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            ref = ready[0]
            w, job = in_flight.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                report.replaced_workers += 1
                self.workers[w] = self._spawn()
                held[w] = set()
                if attempts[job.key] <= max(1, self.cfg.resources.actor_restarts):
                    say(f"[extract] worker {w} died ({type(exc).__name__}); replaced it, resubmitting {job.key}")
                    pending.insert(0, job)
                else:
                    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    report.errors[job.key] = f"worker died {attempts[job.key]} times: {first_line}"
                    say(f"[extract] FAILED {job.key}: {report.errors[job.key]}")
                idle.append(w)
                continue
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                report.errors[job.key] = f"{type(cause).__name__}: {cause}".strip().splitlines()[0][:500]
                say(f"[extract] FAILED {job.key}: {report.errors[job.key]}")
                idle.append(w)
                continue
            report.results[job.key] = result
            idle.append(w)
            done = len(report.results) + len(report.errors)
            say(f"[extract {done}/{total}] {job.key}: {_headline(result)}")
        report.seconds = time.perf_counter() - start
        report.workers = [ray.get(w.info.remote()) for w in self.workers]
        return report

    def shutdown(self) -> None:
        for w in self.workers:
            ray.kill(w, no_restart=True)
        self.workers = []


def _headline(result: dict[str, Any]) -> str:
    parts = []
    for key, label in (("tv_mean", "TV"), ("kernel_mse", "MSE"), ("wm_nmse", "WM_NMSE"), ("return_ratio", "R_WM/R*")):
        value = result.get(key)
        if isinstance(value, float):
            parts.append(f"{label} {value:.3g}")
    if result.get("resumed_from"):
        parts.append(f"resumed from update {result['resumed_from']}")
    parts.append(f"{result.get('seconds', 0.0):.1f} s")
    return ", ".join(parts)
