"""The mathematics of P-learning (docs/method.md): third-party imports are numpy and torch, never Ray.

``import plray.core`` loads the tabular methods, which need numpy only (``bellman``, ``tabular``,
``baselines``, ``identifiability``, ``extraction``). The neural methods and world models
(``neural``, ``neural_stochastic``, ``neural_baselines``, ``worldmodel``, ``worldmodel_gaussian``,
``ensemble``) also use torch, and world-model artifacts are saved and loaded through
:mod:`plray.utils.artifact`.

The public entry points are :func:`bellman_matrix` and :func:`extract_kernel`; :func:`extract`
returns the kernel with its identifiability diagnostics.
"""

from plray.core.baselines import (
    separability,
    value_argmin_inversion,
    value_argmin_kernel,
    value_argmin_tolerance,
    wvf_kernel,
)
from plray.core.bellman import bellman_matrix, bellman_matrix_from_q, state_values
from plray.core.extraction import Extraction, extract, extract_kernel
from plray.core.identifiability import Identifiability, column_gap, identifiability
from plray.core.kernel import project_simplex
from plray.core.tabular import (
    closed_form,
    column_match,
    column_match_indices,
    exact_gradient,
    gradient_descent,
    sampled,
    score_function_gradient,
    simplex_least_squares,
)
from plray.core.types import KERNEL_METHODS, VALUE_MODES
from plray.utils.validation import PlrayInputError

__all__ = [
    "KERNEL_METHODS",
    "VALUE_MODES",
    "Extraction",
    "Identifiability",
    "PlrayInputError",
    "bellman_matrix",
    "bellman_matrix_from_q",
    "closed_form",
    "column_gap",
    "column_match",
    "column_match_indices",
    "exact_gradient",
    "extract",
    "extract_kernel",
    "gradient_descent",
    "identifiability",
    "project_simplex",
    "sampled",
    "score_function_gradient",
    "separability",
    "simplex_least_squares",
    "state_values",
    "value_argmin_inversion",
    "value_argmin_kernel",
    "value_argmin_tolerance",
    "wvf_kernel",
]
