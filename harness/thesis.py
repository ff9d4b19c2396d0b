"""The reference thesis's published tables, as the harness sets them beside its own results.

The thesis ("Improving weight-sharing Neural Architecture Search with a marginal likelihood
estimator", Oxford, 2021) is the spec this harness reproduces. Its numeric tables are embedded as
tidy CSVs under ``harness/embedded/reference/thesis/`` (one row per printed cell, values as printed;
``harness/embedded/reference/ATTRIBUTION.md`` gives their provenance and the conditions of each).
:func:`table` reads one with ``mean`` and ``std`` as floats (NaN where the thesis prints ``-`` or no
std) and every other column as text.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from harness.errors import choices

TABLES = ("3.1", "4.1", "4.2", "4.3", "4.4", "4.5", "4.6", "4.7", "4.8", "B.1")
NUMERIC = ("mean", "std")
SOURCE = 'MSc thesis "Improving weight-sharing NAS with a marginal likelihood estimator" (Oxford, 2021)'


def table(name: str) -> pd.DataFrame:
    """Thesis Table ``name`` (e.g. ``"4.1"``): ``mean``/``std`` as floats, the rest as strings."""
    if name not in TABLES:
        raise choices("thesis table", name, TABLES)
    path = resources.files("harness.embedded") / "reference" / "thesis" / f"thesis-table-{name}.csv"
    with resources.as_file(path) as file:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    for column in NUMERIC:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column].replace("", None), errors="raise").astype(float)
    return frame
