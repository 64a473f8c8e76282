"""The model registry: world-model artifacts in a directory, by id and version, hot-reloaded.

Layout of the models directory (a local path, or any URI that ``pyarrow.fs.FileSystem.from_uri``
understands: ``file://``, ``s3://``, ``gs://``, ``hdfs://``)::

    <models>/<id>/<version>/manifest.json + tensors.npz     versioned: "1", "2", "v3", "2026-01-05" ...
    <models>/<id>/manifest.json + tensors.npz               unversioned: version "0"

Ids and versions are safe names (:data:`SAFE_NAME`: letters, digits, ``.``, ``_``, ``-``, not
starting with a dot, no ``..``), checked before any path is built, and every local path is resolved
(symlinks followed) and refused unless it lies inside the models directory. Artifacts are read
with :func:`plray.core.worldmodel.load_world_model`: JSON + ``np.load(allow_pickle=False)``, a
checksum and a shape check; nothing is ever unpickled.

The newest version is the largest under :func:`version_key` (numbers, optionally ``v``-prefixed,
compare numerically and above other names; other names compare as strings). :meth:`ModelRegistry.refresh`
(called periodically by the server) loads a new version, or a rewritten one (its tensors' checksum
changed), and swaps the id's entry in one assignment: requests that already hold the old
:class:`LoadedModel` finish on it, later ones get the new one. A version that fails to load is
recorded and not retried until its manifest changes; the old version keeps serving.
Directories whose names start with a dot (``save_artifact``'s temporary directories) are ignored.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plray.core.model_io import load_world_model
from plray.core.validation import PlrayInputError
from plray.core.worldmodel import WorldModel
from plray.serve import artifacts
from plray.serve.errors import ApiError
from plray.utils.artifact import MANIFEST, TENSORS, ArtifactError, read_manifest

log = logging.getLogger(__name__)

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
"""Model ids and versions: 1-128 characters, letters, digits, ``.``, ``_``, ``-``; no leading dot."""
UNVERSIONED = "0"
"""The version of an artifact stored directly under ``<models>/<id>/``."""
_NUMERIC = re.compile(r"^v?(\d{1,18})$")
_ARTIFACT_FAILURES = (
    ArtifactError,
    PlrayInputError,
    ApiError,
    OSError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    RuntimeError,  # torch refusing an architecture (e.g. a negative width), symlink loops
    RecursionError,
    OverflowError,
    MemoryError,
    zipfile.BadZipFile,
)
"""Whatever reading one artifact may raise: contained to that artifact, listed under ``unavailable``."""


def check_name(value: str, what: str = "model id") -> str:
    """Return ``value`` if it is a safe id / version name, else raise ``ApiError(invalid_model_id)``."""
    if not isinstance(value, str) or not SAFE_NAME.match(value) or ".." in value:
        shown = value if isinstance(value, str) and len(value) <= 80 else f"{str(value)[:80]}..."
        raise ApiError(
            "invalid_model_id",
            f"{what} {shown!r} is not a safe name: use 1-128 letters, digits, '.', '_' or '-', "
            "not starting with '.' and without '..'",
        )
    return value


def version_key(version: str) -> tuple[int, int, str]:
    """Sort key of versions: numeric ones ("12", "v12") by number and after all others, then by name."""
    m = _NUMERIC.match(version)
    return (1, int(m.group(1)), version) if m else (0, 0, version)


class _Store:
    """Where artifacts live: list directories, check files, and give a local directory to load from."""

    def list_dirs(self, rel: tuple[str, ...]) -> list[str]:
        raise NotImplementedError

    def is_file(self, rel: tuple[str, ...]) -> bool:
        raise NotImplementedError

    def read_text(self, rel: tuple[str, ...]) -> str:
        raise NotImplementedError

    def stamp(self, rel: tuple[str, ...]) -> str:
        """Modification time and size of a file ("" if missing): tells a rewritten file from an old one."""
        raise NotImplementedError

    def local_dir(self, rel: tuple[str, ...]) -> Path:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class _LocalStore(_Store):
    """A local directory; every path is resolved and must stay inside it."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def _path(self, rel: tuple[str, ...]) -> Path:
        try:
            path = self.root.joinpath(*rel).resolve()
        except (RuntimeError, OSError) as exc:  # a symlink loop (RuntimeError on Python 3.11) or I/O error
            raise ApiError("not_found", f"{'/'.join(rel)!r} cannot be resolved ({type(exc).__name__})") from exc
        if path != self.root and not path.is_relative_to(self.root):
            raise ApiError("invalid_model_id", f"{'/'.join(rel)!r} resolves outside the models directory")
        return path

    def list_dirs(self, rel: tuple[str, ...]) -> list[str]:
        try:
            path = self._path(rel)
            if not path.is_dir():
                return []
            names = [p.name for p in path.iterdir() if SAFE_NAME.match(p.name) and ".." not in p.name]
        except OSError:
            return []
        except ApiError as exc:
            if exc.kind == "invalid_model_id":  # a symlink out of the models directory: a 400
                raise
            return []  # a symlink loop: nothing there
        out = []
        for name in names:
            try:
                if self._path((*rel, name)).is_dir():
                    out.append(name)
            except ApiError:  # a symlink out of the models directory: invisible
                continue
        return sorted(out)

    def is_file(self, rel: tuple[str, ...]) -> bool:
        try:
            return self._path(rel).is_file()
        except ApiError:
            return False

    def read_text(self, rel: tuple[str, ...]) -> str:
        return self._path(rel).read_text(encoding="utf-8")

    def stamp(self, rel: tuple[str, ...]) -> str:
        try:
            st = self._path(rel).stat()
        except (OSError, ApiError):
            return ""
        return f"{st.st_mtime_ns}:{st.st_size}"

    def local_dir(self, rel: tuple[str, ...]) -> Path:
        return self._path(rel)

    def describe(self) -> str:
        return str(self.root)


class _ArrowStore(_Store):
    """A pyarrow filesystem (``s3://``, ``gs://``, ``file://`` ...); artifacts are copied to a local cache."""

    def __init__(self, uri: str, cache_dir: str | Path | None = None) -> None:
        from pyarrow import fs as pafs

        from plray.utils.storage import parse

        location = parse(uri)  # S3 endpoint, region and credentials from the environment
        self.uri = uri
        self.fs, self.base = location.fs, location.path.rstrip("/")
        self.cache = Path(cache_dir) if cache_dir else Path(tempfile.mkdtemp(prefix="plray-models-"))
        self.cache.mkdir(parents=True, exist_ok=True)
        self._pafs = pafs

    def _remote(self, rel: tuple[str, ...]) -> str:
        return "/".join([self.base, *rel]) if rel else self.base

    def list_dirs(self, rel: tuple[str, ...]) -> list[str]:
        try:
            infos = self.fs.get_file_info(self._pafs.FileSelector(self._remote(rel), allow_not_found=True))
        except OSError:
            return []
        names = [
            i.base_name
            for i in infos
            if i.type == self._pafs.FileType.Directory and SAFE_NAME.match(i.base_name) and ".." not in i.base_name
        ]
        return sorted(names)

    def is_file(self, rel: tuple[str, ...]) -> bool:
        try:
            return self.fs.get_file_info(self._remote(rel)).type == self._pafs.FileType.File
        except OSError:
            return False

    def read_text(self, rel: tuple[str, ...]) -> str:
        with self.fs.open_input_stream(self._remote(rel)) as fh:
            return fh.read(16 << 20).decode("utf-8")

    def stamp(self, rel: tuple[str, ...]) -> str:
        try:
            info = self.fs.get_file_info(self._remote(rel))
        except OSError:
            return ""
        return f"{info.mtime_ns}:{info.size}"

    def local_dir(self, rel: tuple[str, ...]) -> Path:
        """Copy the artifact's two files into a fresh cache directory and return it."""
        target = Path(tempfile.mkdtemp(prefix=f"{'-'.join(rel)}-", dir=self.cache))
        for name in (MANIFEST, TENSORS):
            with self.fs.open_input_stream(self._remote((*rel, name))) as src, (target / name).open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        return target

    def describe(self) -> str:
        return self.uri


def open_store(models: str | Path, cache_dir: str | Path | None = None) -> _Store:
    """A store for a local directory or a pyarrow-filesystem URI (``scheme://...``)."""
    text = str(models)
    if "://" in text and not text.startswith("file://"):
        return _ArrowStore(text, cache_dir)
    if text.startswith("file://"):
        # local files through pyarrow too, so the URI code path is exercised by plain tests
        return _ArrowStore(text, cache_dir)
    return _LocalStore(text)


@dataclass
class LoadedModel:
    """One loaded version of a model. Immutable in use: a reload makes a new one.

    Attributes:
        model_id, version: where it came from.
        model: the :class:`~plray.core.worldmodel.WorldModel`.
        manifest: the artifact's manifest (JSON).
        checksum: the tensors' sha256 from the manifest (a rewrite of the same version changes it).
        loaded_at: UNIX time of the load.
        load_seconds: how long loading took.
    """

    model_id: str
    version: str
    model: WorldModel
    manifest: dict[str, Any]
    checksum: str
    loaded_at: float
    load_seconds: float
    _task: Any = field(default=None, repr=False)
    _task_error: str | None = field(default=None, repr=False)

    def task(self) -> Any:
        """The manifest's task (``plray.envs.registry.make_task``), or ApiError if it has none we know."""
        if self._task is None and self._task_error is None:
            from plray.envs.registry import make_task

            name = str(self.manifest.get("task"))
            try:
                task = make_task(name, **dict(self.manifest.get("task_kwargs") or {}))
                if task.state_dim != self.model.state_dim:
                    raise PlrayInputError(
                        f"task {name!r} has state_dim {task.state_dim}, the model {self.model.state_dim}"
                    )
                self._task = task
            except (PlrayInputError, TypeError, ValueError, ImportError) as exc:
                self._task_error = f"model {self.model_id!r} has no usable task ({exc})"
        if self._task is None:
            raise ApiError("invalid_input", str(self._task_error))
        return self._task

    def summary(self) -> dict[str, Any]:
        """What ``GET /v1/models`` lists for it."""
        m = self.model
        return {
            "id": self.model_id,
            "version": self.version,
            "model_type": m.model_type,
            "task": self.manifest.get("task"),
            "method": self.manifest.get("method"),
            "state_dim": m.state_dim,
            "num_actions": m.num_actions,
            "action_dim": m.action_dim,
            "num_states": getattr(m, "num_states", None),
            "angle_dims": list(m.angle_dims),
            "loaded_at": self.loaded_at,
        }


LoadCallback = Callable[[str, str, str, float], None]
"""on_load(model_id, version, outcome ("ok" | "error"), seconds)."""


class ModelRegistry:
    """World models by id, loaded from a models directory, with versions and hot reload.

    Args:
        models: local directory or pyarrow-filesystem URI (see the module docstring).
        cache_dir: local copies of remote artifacts (default: a temporary directory).
        max_models: most ids served at once (further ids are refused with 503).
        on_load: called after every load attempt (metrics).
        max_tensor_bytes: cap on one artifact's decompressed tensors (checked before decompressing).
    """

    def __init__(
        self,
        models: str | Path,
        *,
        cache_dir: str | Path | None = None,
        max_models: int = 64,
        on_load: LoadCallback | None = None,
        max_tensor_bytes: int = artifacts.DEFAULT_MAX_TENSOR_BYTES,
    ) -> None:
        self.store = open_store(models, cache_dir)
        self.max_models = int(max_models)
        self.max_tensor_bytes = int(max_tensor_bytes)
        self.on_load = on_load
        self._current: dict[str, LoadedModel] = {}
        self._pinned: dict[tuple[str, str], LoadedModel] = {}
        self._failed: dict[tuple[str, str], tuple[str, str]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    # ------------------------------------------------------------------ discovery
    def ids(self) -> list[str]:
        """Model ids present in the directory (each with at least one artifact)."""
        return [i for i in self.store.list_dirs(()) if self.versions(i)]

    def versions(self, model_id: str) -> list[str]:
        """Versions of ``model_id``, oldest first (empty if there is no such model)."""
        check_name(model_id)
        if self.store.is_file((model_id, MANIFEST)):
            return [UNVERSIONED]
        found = [v for v in self.store.list_dirs((model_id,)) if self.store.is_file((model_id, v, MANIFEST))]
        return sorted(found, key=version_key)

    def _rel(self, model_id: str, version: str) -> tuple[str, ...]:
        if version == UNVERSIONED and self.store.is_file((model_id, MANIFEST)):
            return (model_id,)
        return (model_id, version)

    def _signature(self, model_id: str, version: str) -> str:
        """The tensors' checksum recorded in the manifest ("" if unreadable)."""
        try:
            manifest = json.loads(self.store.read_text((*self._rel(model_id, version), MANIFEST)))
            return str(manifest.get("sha256", {}).get(TENSORS, ""))
        except (OSError, ValueError, AttributeError, ApiError):
            return ""

    # ------------------------------------------------------------------ loading
    def _lock(self, model_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(model_id, threading.Lock())

    def _load(self, model_id: str, version: str) -> LoadedModel:
        start = time.perf_counter()
        rel = self._rel(model_id, version)
        signature = "|".join(
            [self._signature(model_id, version), self.store.stamp((*rel, MANIFEST)), self.store.stamp((*rel, TENSORS))]
        )
        failed = self._failed.get((model_id, version))
        if failed is not None and failed[0] == signature:
            raise ApiError("model_unavailable", failed[1])
        try:
            model, manifest = self._read_artifact(rel)
        except _ARTIFACT_FAILURES as exc:
            seconds = time.perf_counter() - start
            where = self.store.describe()
            message = f"model {model_id!r} version {version!r} failed to load: {exc}".replace(where, "<models>")
            self._failed[(model_id, version)] = (signature, message)
            log.warning(message)
            if self.on_load:
                self.on_load(model_id, version, "error", seconds)
            raise ApiError("model_unavailable", message) from exc
        seconds = time.perf_counter() - start
        if self.on_load:
            self.on_load(model_id, version, "ok", seconds)
        checksum = str(manifest.get("sha256", {}).get(TENSORS, ""))
        return LoadedModel(model_id, version, model, manifest, checksum, time.time(), seconds)

    def _read_artifact(self, rel: tuple[str, ...]) -> tuple[WorldModel, dict[str, Any]]:
        """Read and fully validate one artifact (see :mod:`plray.serve.artifacts`)."""
        path = self.store.local_dir(rel)
        manifest = read_manifest(path, kind="world-model")
        artifacts.check_manifest(manifest)
        artifacts.check_tensor_sizes(path, manifest, self.max_tensor_bytes)
        model, manifest = load_world_model(path)
        artifacts.check_model(model)
        return model, manifest

    def _load_newest(self, model_id: str, versions: list[str]) -> LoadedModel:
        """Load the newest version that loads; raise the newest's error if none does."""
        first_error: ApiError | None = None
        for version in reversed(versions):
            try:
                return self._load(model_id, version)
            except ApiError as exc:
                first_error = first_error or exc
        assert first_error is not None
        raise first_error

    def get(self, model_id: str, version: str | None = None) -> LoadedModel:
        """The served entry of ``model_id`` (its newest loadable version), or a pinned ``version``.

        Raises:
            ApiError: ``invalid_model_id`` (unsafe name), ``not_found`` (no such id or version),
                ``model_unavailable`` (its artifact does not load).
        """
        check_name(model_id)
        entry = self._current.get(model_id)
        if version is None and entry is not None:
            return entry
        if version is not None:
            check_name(version, "version")
            if entry is not None and entry.version == version:
                return entry
            pinned = self._pinned.get((model_id, version))
            if pinned is not None:
                return pinned
        with self._lock(model_id):
            entry = self._current.get(model_id)
            if version is None and entry is not None:
                return entry
            versions = self.versions(model_id)
            if not versions:
                raise ApiError("not_found", f"model {model_id!r} not found in {self._where()}")
            if version is None:
                if len(self._current) >= self.max_models:
                    raise ApiError("model_unavailable", f"the server holds its maximum of {self.max_models} models")
                entry = self._load_newest(model_id, versions)
                self._current[model_id] = entry
                return entry
            if version not in versions:
                raise ApiError(
                    "not_found", f"model {model_id!r} has no version {version!r}; versions: {', '.join(versions)}"
                )
            pinned = self._load(model_id, version)
            if len(self._pinned) >= 8:
                self._pinned.pop(next(iter(self._pinned)))
            self._pinned[(model_id, version)] = pinned
            return pinned

    def loaded_entry(self, model_id: str) -> LoadedModel | None:
        """The served entry of ``model_id`` if it is loaded (no I/O, no validation needed: a dict lookup)."""
        return self._current.get(model_id) if isinstance(model_id, str) else None

    def loaded(self) -> dict[str, LoadedModel]:
        """The served entries by id (a snapshot)."""
        return dict(self._current)

    def load_all(self) -> list[str]:
        """Load the newest version of every id (up to ``max_models``); return the ids that failed."""
        failed = []
        for model_id in self.ids()[: self.max_models]:
            try:
                self.get(model_id)
            except ApiError:
                failed.append(model_id)
        return failed

    def refresh(self) -> list[tuple[str, str | None, str]]:
        """Load new (or rewritten) newest versions and swap them in; drop ids that disappeared.

        Returns:
            ``(model_id, old_version, new_version)`` for every swap made.
        """
        swaps: list[tuple[str, str | None, str]] = []
        present = set(self.ids())
        for model_id in list(self._current):
            if model_id not in present:
                self._current.pop(model_id, None)
        for model_id in sorted(present):
            entry = self._current.get(model_id)
            if entry is None and len(self._current) >= self.max_models:
                continue
            versions = self.versions(model_id)
            if not versions:
                continue
            newest = versions[-1]
            if entry is not None and entry.version == newest and entry.checksum == self._signature(model_id, newest):
                continue
            if entry is not None and version_key(entry.version) > version_key(newest):
                continue
            with self._lock(model_id):
                try:
                    fresh = self._load(model_id, newest)
                except ApiError:
                    continue  # recorded; the old version keeps serving
                self._current[model_id] = fresh  # the atomic swap
            swaps.append((model_id, None if entry is None else entry.version, newest))
            log.info("model %s: now serving version %s", model_id, newest)
        return swaps

    def _where(self) -> str:
        return "the models directory"

    def describe(self) -> str:
        """The models directory or URI."""
        return self.store.describe()
