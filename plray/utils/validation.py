"""Input checks shared by the core: every public function validates before it computes.

Errors are :class:`PlrayInputError` (a ``ValueError``) and name the argument, the shape or value
received and what was expected, so a caller sees *what* was wrong and *where*.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


class PlrayInputError(ValueError):
    """An argument has the wrong shape, dtype or value."""


def as_float_array(x: object, name: str, ndim: int | None = None) -> np.ndarray:
    """Convert ``x`` to a float64 array, checking its rank and that every entry is finite."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PlrayInputError(f"{name}: expected a numeric array, got {type(x).__name__} ({exc})") from exc
    if ndim is not None and arr.ndim != ndim:
        raise PlrayInputError(f"{name}: expected a {ndim}-D array, got shape {arr.shape}")
    check_finite(arr, name)
    return arr


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise if ``arr`` holds NaN or infinity, saying how many entries and the first position."""
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        kind = "NaN" if np.isnan(arr[first]) else "infinite"
        raise PlrayInputError(
            f"{name}: {int(bad.sum())} non-finite entries (first: {kind} at index {first}); "
            "P-learning needs finite Q-values and rewards"
        )


def check_shape(arr: np.ndarray, name: str, expected: Sequence[int | None], names: Sequence[str]) -> None:
    """Check ``arr.shape`` against ``expected`` (``None`` = any size), naming each axis on mismatch."""
    spec = "(" + ", ".join(names) + ")"
    if arr.ndim != len(expected):
        raise PlrayInputError(f"{name}: expected shape {spec}, got {arr.ndim}-D array of shape {arr.shape}")
    for axis, (got, want, axis_name) in enumerate(zip(arr.shape, expected, names, strict=True)):
        if want is not None and got != want:
            raise PlrayInputError(
                f"{name}: axis {axis} ({axis_name}) has size {got}, expected {want}; "
                f"expected shape {spec} = {tuple(expected)}, got {arr.shape}"
            )


def check_gamma(gamma: float) -> float:
    """Discount factors must lie in the open interval (0, 1)."""
    try:
        g = float(gamma)
    except (TypeError, ValueError) as exc:
        raise PlrayInputError(f"gamma: expected a number in (0, 1), got {gamma!r}") from exc
    if not (0.0 < g < 1.0) or not np.isfinite(g):
        raise PlrayInputError(f"gamma: must lie in the open interval (0, 1), got {gamma!r}")
    return g


def check_keys(mapping: Mapping[Any, Any], name: str, allowed: Sequence[str]) -> None:
    """Refuse keys of ``mapping`` not in ``allowed``, listing them sorted and the allowed ones."""
    unknown = sorted(str(k) for k in mapping if k not in allowed)
    if unknown:
        raise PlrayInputError(f"{name}: unknown keys {unknown}; allowed keys: {', '.join(allowed)}")


def check_choice(value: str, name: str, allowed: Sequence[str]) -> str:
    """Check that ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise PlrayInputError(f"{name}: unknown value {value!r}; choose one of {', '.join(allowed)}")
    return value
