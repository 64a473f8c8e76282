"""Where a run lives: a local directory, or a URI on object storage with a working copy per node.

``plray run CONFIG --run-dir s3://bucket/prefix`` (or ``gs://...``, any URI pyarrow's filesystems
understand) keeps the whole run on object storage, so a cluster whose nodes share no disk (worker
pods on Kubernetes) can train, extract, resume and serve from one place:

* every process works on a local working copy of the run, under
  ``$PLRAY_CACHE_DIR/runs/<hash of the URI>`` (default ``~/.cache/plray``); the same URI maps to
  the same folder on every node, so the driver and the workers of one node share it;
* a unit of work pulls what it reads before it starts (a trial its cell directory, with RLlib
  checkpoints to resume from; an extraction job its agent and its own checkpoint) and pushes what
  it wrote when it finishes (one atomic PUT per file: an object is visible whole or not at all);
* the driver pulls the results between stages and pushes ``config.yaml``, ensembles and
  ``results/``; Tune keeps its experiment state directly on the store (``storage_filesystem``),
  so an interrupted run resumes from the URI alone, on any machine.

For a local run directory every pull and push is a no-op: the working copy is the directory.

:class:`RunLayout` is the one place that names the files and folders of a run directory::

    config.yaml            the validated experiment (a rerun checks it is unchanged)
    agents/<cell>/         agent/ artifact, result.json, snapshots/step-<n>/ (and RLlib checkpoints/)
    extractions/<job>/     result.json (+ checkpoint.npz while running; + reports for neural jobs)
    models/<id>/           world-model artifacts (a Serve registry directory); ensembles are
                           models/<ensemble key>--ensemble
    tune/                  Tune's experiment state
    results/               tables, results.md and plots
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pyarrow.fs as pafs

from plray.utils.storage import Location, StorageError, parse

CACHE_ENV = "PLRAY_CACHE_DIR"
"""Environment variable naming the root of the nodes' working copies (default ``~/.cache/plray``)."""


def cache_root() -> Path:
    """The root under which remote runs get their local working copies."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "plray").expanduser()


class RunLayout:
    """Every path inside one run directory: the only code that spells them.

    Methods return paths under ``root`` (the working copy); :meth:`rel` turns one back into the
    name relative to the run that :meth:`RunDir.pull` and :meth:`RunDir.push` take.

    Args:
        root: the run directory's local working copy.
    """

    CONFIG = "config.yaml"
    AGENTS = "agents"
    EXTRACTIONS = "extractions"
    MODELS = "models"
    """World-model artifacts, laid out as a registry directory (``<models>/<id>/manifest.json``)."""
    TUNE = "tune"
    RESULTS = "results"
    CHECKPOINTS = "checkpoints"
    """RLlib checkpoints, inside a cell's folder."""
    RESULT = "result.json"
    """A finished unit's result, in its cell or job folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunLayout({str(self.root)!r})"

    def rel(self, path: str | os.PathLike[str]) -> str:
        """``path`` (under :attr:`root`) relative to the run, in POSIX form: ``agents/<cell>``."""
        return Path(path).relative_to(self.root).as_posix()

    @property
    def config_file(self) -> Path:
        return self.root / self.CONFIG

    @property
    def agents_dir(self) -> Path:
        return self.root / self.AGENTS

    @property
    def extractions_dir(self) -> Path:
        return self.root / self.EXTRACTIONS

    @property
    def models_dir(self) -> Path:
        """The run's model registry: ``plray serve --models <run>/models`` serves it."""
        return self.root / self.MODELS

    @property
    def tune_dir(self) -> Path:
        return self.root / self.TUNE

    @property
    def results_dir(self) -> Path:
        return self.root / self.RESULTS

    # ------------------------------------------------------------------ agents (one per cell)
    def cell_dir(self, cell: str) -> Path:
        """Everything of the agent of cell ``cell`` (a :attr:`Cell.key`); a training run's output folder."""
        return self.agents_dir / cell

    def cell_result(self, cell: str) -> Path:
        return self.cell_dir(cell) / self.RESULT

    def agent_dir(self, cell: str, step: int | None = None) -> Path:
        """The cell's agent artifact, or (``step``) its training snapshot at ``step`` env steps."""
        return self.snapshot_dir(cell, step) if step else self.cell_dir(cell) / "agent"

    def snapshot_dir(self, cell: str, step: int) -> Path:
        return self.cell_dir(cell) / "snapshots" / f"step-{step}"

    # ------------------------------------------------------------------ extraction jobs and models
    def job_dir(self, job: str) -> Path:
        """The folder of extraction job ``job`` (an :attr:`ExtractionJob.key`)."""
        return self.extractions_dir / job

    def job_result(self, job: str) -> Path:
        return self.job_dir(job) / self.RESULT

    def job_checkpoint(self, job: str) -> Path:
        """An iterative job's saved state while it runs (removed when it finishes)."""
        return self.job_dir(job) / "checkpoint.npz"

    def job_evaluation_dir(self, job: str) -> Path:
        """Unseen-goal evaluation reports of a neural job."""
        return self.job_dir(job) / "evaluation"

    def model_dir(self, model_id: str) -> Path:
        """A world-model artifact of the registry, ``models/<id>``."""
        return self.models_dir / model_id

    def ensemble_dir(self, ensemble_key: str) -> Path:
        """The ensemble world model of the jobs with ``ensemble_key`` (one per seed)."""
        return self.model_dir(f"{ensemble_key}--ensemble")

    # ------------------------------------------------------------------ pull filters
    @classmethod
    def is_checkpoint(cls, rel: str) -> bool:
        """Whether ``rel`` (relative to the run) lies under some folder's RLlib ``checkpoints/``."""
        return f"/{cls.CHECKPOINTS}/" in f"/{rel}"

    @classmethod
    def is_tune_state(cls, rel: str) -> bool:
        """Whether ``rel`` lies under ``tune/`` (Tune reads it from the store itself)."""
        return rel.startswith(f"{cls.TUNE}/")


def _in_progress(rel: str) -> bool:
    """A temporary file of a write in progress (``plray.utils.io`` and :meth:`RunDir.pull` name them so)."""
    name = rel.rsplit("/", 1)[-1]
    return name.startswith(".") and name.endswith((".tmp", ".pull"))


def skip_checkpoints(rel: str) -> bool:
    """Pull filter for the driver: RLlib checkpoints are only read by the trial that resumes them."""
    return RunLayout.is_checkpoint(rel)


class RunDir:
    """A run directory (``location``) and this node's working copy of it (``local``).

    Args:
        location: a local path, or a URI such as ``s3://bucket/runs/x``.
        cache: root of the working copies of remote runs (default :func:`cache_root`).
    """

    def __init__(self, location: str | os.PathLike[str] | Location, cache: Path | None = None) -> None:
        self.location = parse(location)
        if self.location.is_local:
            self.local = self.location.local_path
        else:
            digest = hashlib.sha256(self.location.uri.encode()).hexdigest()[:16]
            self.local = (cache or cache_root()) / "runs" / f"{self.location.name or 'run'}-{digest}"
        self.local.mkdir(parents=True, exist_ok=True)
        self.layout = RunLayout(self.local)
        """The paths of the working copy."""

    @property
    def uri(self) -> str:
        """The run directory as the user named it (absolute path or URI): what workers are given."""
        return self.location.uri

    @property
    def remote(self) -> bool:
        return not self.location.is_local

    def __repr__(self) -> str:
        return f"RunDir({self.uri!r})" if not self.remote else f"RunDir({self.uri!r}, local={str(self.local)!r})"

    def show(self, path: str | os.PathLike[str]) -> str:
        """``path`` inside the working copy, written as the user would find it (a URI on remote runs)."""
        p = Path(path)
        if not self.remote or not p.is_relative_to(self.local):
            return str(p)
        rel = p.relative_to(self.local).as_posix()
        return self.uri if rel == "." else str(self.location.join(rel))

    def pull(self, *rels: str, skip: Callable[[str], bool] | None = None) -> int:
        """Copy the run's files under each folder ``rels`` (all if none) into the working copy.

        A file already there with the same size is kept (finished units never change); ``skip``
        takes names relative to the run. Returns the number of files copied; 0 on local runs.
        """
        if not self.remote:
            return 0
        copied = 0
        for rel in rels or ("",):
            prefix = f"{rel}/" if rel else ""
            inner = None if skip is None else (lambda name, p=prefix: skip(p + name))
            where = self.location.join(rel) if rel else self.location
            copied += where.download_files(self.local / rel, skip=inner, changed_only=True)
        return copied

    def push(self, *rels: str) -> int:
        """Upload the working copy's files under each ``rels`` (a folder or a file) to the run.

        Returns the number of files uploaded; 0 on local runs. Other processes' writes in progress
        (``.<name>.tmp`` / ``.pull``) are left out.
        """
        if not self.remote:
            return 0
        uploaded = 0
        for rel in rels:
            src = self.local / rel
            if src.is_file():
                self.location.join(rel).write_bytes(src.read_bytes())
                uploaded += 1
            elif src.is_dir():
                uploaded += self.location.join(rel).upload_dir(src, skip=_in_progress)
        return uploaded

    def tune_storage(self) -> tuple[str, pafs.FileSystem | None]:
        """Tune's ``(storage_path, storage_filesystem)`` for this run's ``tune/`` folder."""
        if not self.remote:
            return str(self.layout.tune_dir), None
        return self.location.join(RunLayout.TUNE).path, self.location.fs

    def delete_tune_experiment(self, name: str) -> None:
        """Remove Tune's state of experiment ``name`` (it is re-created for cells it never knew)."""
        path, fs = self.tune_storage()
        if fs is None:
            return
        try:
            fs.delete_dir(f"{path}/{name}")
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"{self.uri}/{RunLayout.TUNE}/{name}: cannot delete it ({exc})") from exc
