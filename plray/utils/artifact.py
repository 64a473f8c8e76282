"""plray's one artifact format, for agents and world models alike.

An artifact is a directory::

    manifest.json    {"format": "plray-artifact", "format_version": 1, "kind": "agent" | "world-model",
                      ... kind-specific fields (task, goals, method, metrics, configuration) ...,
                      "versions": {plray, python, numpy, torch}, "tensors": {name: {shape, dtype}},
                      "sha256": {"tensors.npz": "..."}}
    tensors.npz      every tensor as a plain array, read back with allow_pickle=False

Writing goes to a temporary directory renamed into place, so a reader never sees half an
artifact. Reading verifies the format, version, kind, checksum, and that the tensors are
exactly those the manifest lists with the listed shapes and numeric dtypes; anything else is an
:class:`ArtifactError` saying what is wrong and where. Nothing in an artifact is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from plray.utils.io import default_mode
from plray.utils.validation import PlrayInputError

FORMAT = "plray-artifact"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TENSORS = "tensors.npz"
KINDS = ("agent", "world-model")


class ArtifactError(PlrayInputError):
    """An artifact is missing, corrupt, tampered with, or of an unknown format or kind."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    import torch

    from plray import __version__

    return {
        "plray": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
    }


def save_artifact(
    out_dir: str | os.PathLike[str], kind: str, arrays: dict[str, np.ndarray], manifest: dict[str, Any]
) -> Path:
    """Write an artifact atomically (replacing ``out_dir`` if it exists).

    Args:
        out_dir: artifact directory.
        kind: ``"agent"`` or ``"world-model"``.
        arrays: named numeric arrays (names may contain "/" to group them).
        manifest: JSON-ready kind-specific fields.
    """
    if kind not in KINDS:
        raise ArtifactError(f"kind: unknown artifact kind {kind!r}; choose one of {', '.join(KINDS)}")
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    os.chmod(tmp, default_mode(directory=True))
    try:
        clean = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
        for name, a in clean.items():
            if a.dtype.kind not in "biuf":
                raise ArtifactError(f"tensor {name!r}: dtype {a.dtype} is not numeric")
        np.savez(tmp / TENSORS, allow_pickle=False, **clean)  # numeric only (checked above)
        full = {
            **manifest,
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "versions": library_versions(),
            "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in clean.items()},
            "sha256": {TENSORS: sha256_file(tmp / TENSORS)},
        }
        text = json.dumps(full, indent=2, sort_keys=True, allow_nan=False)
        (tmp / MANIFEST).write_text(text + "\n", encoding="utf-8")
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def read_manifest(path: str | os.PathLike[str], kind: str | None = None) -> dict[str, Any]:
    """Read and check an artifact's manifest (format, version and, if given, kind)."""
    root = Path(path)
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise ArtifactError(f"{root}: not a plray artifact (no {MANIFEST})")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{mpath}: unreadable manifest ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{mpath}: format is not {FORMAT!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{mpath}: format version {manifest.get('format_version')!r} is not supported "
            f"(this plray reads version {FORMAT_VERSION})"
        )
    if kind is not None and manifest.get("kind") != kind:
        raise ArtifactError(f"{mpath}: is a {manifest.get('kind')!r} artifact, expected {kind!r}")
    return manifest


def load_artifact(
    path: str | os.PathLike[str], kind: str | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and verify an artifact: (manifest, arrays). See the module docstring for the checks."""
    root = Path(path)
    manifest = read_manifest(root, kind)
    tpath = root / TENSORS
    if not tpath.is_file():
        raise ArtifactError(f"{root}: {TENSORS} is missing")
    expected = manifest.get("sha256", {}).get(TENSORS) if isinstance(manifest.get("sha256"), dict) else None
    actual = sha256_file(tpath)
    if expected != actual:
        raise ArtifactError(
            f"{tpath}: checksum mismatch (manifest {expected}, file {actual}); the file is corrupt or was modified"
        )
    try:
        with np.load(tpath, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise ArtifactError(f"{tpath}: unreadable tensors ({exc})") from exc
    spec = manifest.get("tensors", {})
    if not isinstance(spec, dict) or set(spec) != set(arrays):
        raise ArtifactError(f"{tpath}: tensors {sorted(arrays)} do not match the manifest's {sorted(spec)}")
    for name, arr in arrays.items():
        if list(arr.shape) != spec[name].get("shape") or arr.dtype.kind not in "biuf":
            raise ArtifactError(
                f"{tpath}: tensor {name} has shape {list(arr.shape)} and dtype {arr.dtype}; "
                f"the manifest says {spec[name]}"
            )
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ArtifactError(f"{tpath}: tensor {name} holds NaN or infinity")
    return manifest, arrays
