"""Training sweeps on Ray Tune: one trial per cell (reward-function set × seed).

The sweep is a Tune grid over the cells that have no result yet. Tune keeps its experiment state
under ``<run>/tune/train`` (on the object store itself for a URI run directory); when a driver
dies, the next ``plray run`` on the same run directory restores that experiment
(``Tuner.restore``), which resumes unfinished trials and keeps finished ones. Every trial also
writes its result to ``<run>/agents/<cell>/result.json`` and returns it without retraining if it
is already there, so no trial is ever reported twice, whatever state Tune saved before the driver
died. RLlib trials checkpoint inside their cell directory and resume from there when Tune retries
them (``FailureConfig(max_failures)``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plray.experiments.jobs import read_result, train_cell
from plray.experiments.rundir import RunDir, RunLayout, skip_checkpoints
from plray.experiments.schema import Cell, ExperimentConfig, experiment_from_mapping
from plray.utils.schema import to_mapping

Say = Callable[[str], None]

EXPERIMENT_NAME = "train"
"""Tune experiment name under ``<run>/tune``."""


def pending_cells(cells: list[Cell], run_dir: Path) -> list[Cell]:
    """Cells without a finished agent result."""
    layout = RunLayout(run_dir)
    return [c for c in cells if read_result(layout.cell_result(c.key)) is None]


def _trainable(config: dict[str, Any], experiment: dict[str, Any], run_dir: str) -> None:
    """Tune function trainable: train one cell and report its headline numbers.

    ``run_dir`` is the run's path or URI: the cell directory is pulled into this node's working
    copy first (a retried trial resumes from its RLlib checkpoints) and pushed when it is done.
    """
    from ray import tune

    cfg = experiment_from_mapping(experiment)
    cell = Cell(**config["cell"])
    run = RunDir(run_dir)
    cell_dir = run.layout.rel(run.layout.cell_dir(cell.key))
    run.pull(cell_dir)
    result = train_cell(cfg, cell, run.local, say=print)
    run.push(cell_dir)
    tune.report({k: v for k, v in result.items() if isinstance(v, int | float) and not isinstance(v, bool)})


def _progress_callback(say: Say, total: int, done: set[str]) -> Any:
    from ray.tune import Callback

    class TrialProgress(Callback):
        """One line per trial start, finish and failure, with a running count."""

        def __init__(self) -> None:
            self.finished = len(done)
            self.started: dict[str, float] = {}

        @staticmethod
        def _name(trial: Any) -> str:
            return Cell(**trial.config["cell"]).key

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.started[trial.trial_id] = time.perf_counter()
            if self._name(trial) not in done:
                say(f"[train] started  {self._name(trial)}")

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            if self._name(trial) in done:
                return  # restored after an interruption: its result was already there and counted
            self.finished += 1
            seconds = time.perf_counter() - self.started.get(trial.trial_id, time.perf_counter())
            last = trial.last_result or {}
            quality = "  ".join(
                f"{k}={last[k]:.3g}"
                for k in ("q_nmse", "q_max_error", "success_rate")
                if isinstance(last.get(k), float)
            )
            say(f"[train {self.finished}/{total}] finished {self._name(trial)} in {seconds:.1f} s  {quality}")

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            say(f"[train] FAILED   {self._name(trial)} (see {trial.local_path or trial.path})")

    return TrialProgress()


def run_sweep(
    cfg: ExperimentConfig,
    cells: list[Cell],
    run: RunDir | Path,
    *,
    say: Say = print,
) -> dict[str, str]:
    """Train every pending cell as a Tune trial; returns ``{cell key: error}`` for failed trials.

    Requires a connected Ray (local or cluster). Results are read back from the cell directories
    (on a URI run directory: pulled into the working copy when the sweep ends).
    """
    from ray import tune

    # Tune's own console table repeats what the progress callback prints; keep one voice
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    run = run if isinstance(run, RunDir) else RunDir(run)
    run_dir = run.local
    todo = pending_cells(cells, run_dir)
    if not todo:
        say(f"[train] all {len(cells)} agents already trained")
        return {}
    say(f"[train] {len(todo)} of {len(cells)} agents to train ({len(cells) - len(todo)} already done)")
    storage, fs = run.tune_storage()
    if fs is None:
        Path(storage).mkdir(parents=True, exist_ok=True)
    trainable = tune.with_resources(
        tune.with_parameters(
            _trainable,
            experiment=to_mapping(cfg),
            run_dir=run.uri,
        ),
        {"cpu": cfg.resources.cpus_per_trial},
    )
    exp_dir = f"{storage}/{EXPERIMENT_NAME}"
    callback = _progress_callback(say, len(cells), {c.key for c in cells} - {c.key for c in todo})
    tuner = _tuner(cfg, todo, trainable, run, callback, say)
    grid = tuner.fit()
    run.pull(RunLayout.AGENTS, skip=skip_checkpoints)
    errors: dict[str, str] = {}
    for res in grid:
        if res.error is not None:
            key = Cell(**res.config["cell"]).key
            errors[key] = str(res.error).strip().splitlines()[-1][:500] if str(res.error).strip() else repr(res.error)
    # a trial of this experiment that neither failed nor finished was stopped by Ctrl-C: stop too
    in_grid = {Cell(**res.config["cell"]).key for res in grid}
    pending = [c for c in pending_cells(cells, run_dir) if c.key not in errors]
    stopped = [c.key for c in pending if c.key in in_grid]
    if stopped:
        raise KeyboardInterrupt(f"training stopped with {len(stopped)} agents unfinished; run again to resume")
    # a restored experiment knows only the cells of its first attempt: train any others now
    missing = [c for c in pending if c.key not in in_grid]
    if missing and tune.Tuner.can_restore(exp_dir, storage_filesystem=fs):
        if fs is None:
            Path(exp_dir).rename(f"{storage}/{EXPERIMENT_NAME}-{int(time.time())}")
        else:
            run.delete_tune_experiment(EXPERIMENT_NAME)
        say(f"[train] {len(missing)} cells were not in the restored experiment; starting them")
        errors |= run_sweep(cfg, missing, run, say=say)
    return errors


def _tuner(cfg: ExperimentConfig, todo: list[Cell], trainable: Any, run: RunDir, callback: Any, say: Say) -> Any:
    """The Tune experiment to fit: restored from the run's Tune state if there is one, else new."""
    from ray import tune

    storage, fs = run.tune_storage()
    exp_dir = f"{storage}/{EXPERIMENT_NAME}"
    if tune.Tuner.can_restore(exp_dir, storage_filesystem=fs):
        say(f"[train] resuming the interrupted Tune experiment in {run.uri}/tune/{EXPERIMENT_NAME}")
        tuner = tune.Tuner.restore(
            exp_dir,
            trainable=trainable,
            resume_unfinished=True,
            resume_errored=True,
            restart_errored=False,
            storage_filesystem=fs,
        )
        # restoring brings back the pickled run config; give it this driver's progress callback
        internal = getattr(tuner, "_local_tuner", None)
        if internal is not None and hasattr(internal, "_run_config"):
            internal._run_config.callbacks = [callback]
        return tuner
    run_config = tune.RunConfig(
        name=EXPERIMENT_NAME,
        storage_path=storage,
        storage_filesystem=fs,
        verbose=0,
        callbacks=[callback],
        failure_config=tune.FailureConfig(max_failures=cfg.resources.max_failures),
    )
    return tune.Tuner(
        trainable,
        param_space={"cell": tune.grid_search([c.as_dict() for c in todo])},
        tune_config=tune.TuneConfig(
            max_concurrent_trials=cfg.resources.max_concurrent_trials or None,
            trial_dirname_creator=lambda trial: Cell(**trial.config["cell"]).key,
            trial_name_creator=lambda trial: Cell(**trial.config["cell"]).key,
        ),
        run_config=run_config,
    )
