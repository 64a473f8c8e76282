"""Deprecated location of :mod:`plray.utils.validation` (input checks and ``PlrayInputError``).

Kept so that code written against ``plray.core.validation`` keeps importing; new code imports
:mod:`plray.utils.validation`, the one owner.
"""

from plray.utils.validation import (
    PlrayInputError,
    as_float_array,
    check_choice,
    check_finite,
    check_gamma,
    check_shape,
)

__all__ = ["PlrayInputError", "as_float_array", "check_choice", "check_finite", "check_gamma", "check_shape"]
