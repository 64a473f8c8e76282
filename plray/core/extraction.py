"""One dispatch over every extraction method: :func:`extract` runs a method and attaches M's diagnostics.

The methods live in :mod:`plray.core.tabular` (closed-form, gradient, sampled, simplex, column-match)
and :mod:`plray.core.baselines` (value-argmin, wvf).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from plray.core import baselines, tabular
from plray.core.identifiability import Identifiability, identifiability
from plray.core.kernel import check_qm
from plray.core.types import KERNEL_METHODS, FloatArray
from plray.utils.validation import PlrayInputError, check_choice

_METHOD_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "closed-form": tabular.closed_form,
    "gradient": tabular.gradient_descent,
    "sampled": tabular.sampled,
    "simplex": tabular.simplex_least_squares,
    "column-match": tabular.column_match,
    "value-argmin": baselines.value_argmin_kernel,
    "wvf": baselines.wvf_kernel,
}


def _check_options(method: str, options: dict[str, Any]) -> None:
    """Reject keyword options the method's function does not take (checked before it runs, so a
    ``TypeError`` raised inside an algorithm is never mistaken for a bad option)."""
    params = inspect.signature(_METHOD_FUNCTIONS[method]).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    keyword = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    positional = 3 if method == "value-argmin" else 2  # Q, M (and gamma) are passed positionally
    accepted = {n for n, p in list(params.items())[positional:] if p.kind in keyword}
    unknown = sorted(set(options) - accepted)
    if unknown:
        name = _METHOD_FUNCTIONS[method].__name__
        raise PlrayInputError(
            f"method {method!r}: {name}() got an unexpected keyword argument {unknown[0]!r}"
            f" (it takes {sorted(accepted) or 'no options'})"
        )


@dataclass(frozen=True)
class Extraction:
    """An extracted kernel with the diagnostics and run information that belong to it.

    Attributes:
        kernel: P̂(s' | s, a), shape (S, A, K).
        method: the extraction method.
        diagnostics: identifiability of M, with error bounds at ``eps`` (None when gamma was not given).
        info: method-specific figures (iterations, convergence, updates per second, seconds).
    """

    kernel: FloatArray
    method: str
    diagnostics: Identifiability | None
    info: dict[str, Any] = field(default_factory=dict)


def extract(
    Q: object,
    M: object,
    method: str = "closed-form",
    *,
    gamma: float | None = None,
    eps: float = 0.0,
    **options: Any,
) -> Extraction:
    """Run one extraction method and attach the identifiability diagnostics of M.

    Args:
        Q: the agent's Q-values, shape (S, A, G).
        M: the Bellman matrix, shape (G, K) (see :func:`plray.core.bellman_matrix`).
        method: one of ``closed-form``, ``gradient``, ``sampled``, ``simplex``, ``column-match``,
            ``value-argmin``, ``wvf``.
        gamma: discount, needed for the diagnostics' error bounds (and by ``value-argmin``).
        eps: Q-error level (ℓ₁ over goals) at which to evaluate the bounds.
        **options: the method's own keyword arguments (see each function).

    Returns:
        an :class:`Extraction`.
    """
    check_choice(method, "method", KERNEL_METHODS)
    _check_options(method, options)
    Q, M = check_qm(Q, M)
    start = time.perf_counter()
    info: dict[str, Any] = {}
    if method == "closed-form":
        kernel = tabular.closed_form(Q, M, **options)
    elif method == "gradient":
        kernel, info = tabular.gradient_descent(Q, M, **options)
    elif method == "sampled":
        kernel, info = tabular.sampled(Q, M, **options)
    elif method == "simplex":
        kernel, info = tabular.simplex_least_squares(Q, M, **options)
    elif method == "column-match":
        kernel = tabular.column_match(Q, M, **options)
    elif method == "value-argmin":
        if gamma is None:
            raise PlrayInputError("value-argmin needs gamma")
        kernel = baselines.value_argmin_kernel(Q, M, gamma, **options)
    else:
        kernel, info = baselines.wvf_kernel(Q, M, **options)
    info = {**info, "seconds": time.perf_counter() - start}
    diagnostics = identifiability(M, Q.shape[1], gamma, eps) if gamma is not None else None
    return Extraction(kernel=kernel, method=method, diagnostics=diagnostics, info=info)


def extract_kernel(Q: object, M: object, method: str = "closed-form", **options: Any) -> FloatArray:
    """Recover the transition kernel, shape (S, A, K), from Q (S, A, G) and M (G, K).

    See :func:`extract` for the methods and their options; this returns only the kernel.
    """
    return extract(Q, M, method, **options).kernel
