"""Shared helpers for benchmarks: machine description and result files (JSON + markdown)."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from plray import __version__
from plray.utils.io import atomic_write_json, atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """Where and with what a benchmark ran."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "plray", "bench", "configs"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if changed:  # code not yet committed ran: say so rather than name a commit it differs from
            commit += "+uncommitted"
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "plray": __version__,
        "commit": commit,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def write_results(name: str, payload: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write ``bench/results/<name>.json`` and ``<name>.md`` atomically."""
    json_path = atomic_write_json(RESULTS / f"{name}.json", payload)
    md_path = atomic_write_text(RESULTS / f"{name}.md", markdown)
    return json_path, md_path


def timed(fn: Any, repeats: int) -> tuple[Any, list[float]]:
    """Run ``fn`` ``repeats`` times; return the last result and every wall-clock time (s)."""
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, times
