"""Ranking estimators: a registry of small pure functions over curves, logs and static scores.

>>> from harness.metrics import get_estimator
>>> sotl = get_estimator("SoTL-E(E=3)")
>>> sotl.higher_is_better
False

See :mod:`harness.metrics.registry` for the registry and :func:`required_columns`, and
:mod:`harness.metrics.curves` for the formulas.
"""

from harness.metrics.registry import (
    CURVE_SIGNALS,
    STEP_SIGNALS,
    ZERO_COST_PROXIES,
    Estimator,
    estimator_names,
    get_estimator,
    register,
    required_columns,
)

__all__ = [
    "CURVE_SIGNALS",
    "STEP_SIGNALS",
    "ZERO_COST_PROXIES",
    "Estimator",
    "estimator_names",
    "get_estimator",
    "register",
    "required_columns",
]
