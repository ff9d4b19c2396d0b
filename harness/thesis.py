"""The reference thesis's published tables, as the harness sets them beside its own results.

The thesis ("Improving weight-sharing Neural Architecture Search with a marginal likelihood
estimator", Oxford, 2021) is the spec this harness reproduces. Its numeric tables are embedded as
tidy CSVs under ``harness/embedded/reference/thesis/`` (one row per printed cell, values as printed;
``harness/embedded/reference/ATTRIBUTION.md`` gives their provenance and the conditions of each).
:func:`table` reads one with ``mean`` and ``std`` as floats (NaN where the thesis prints ``-`` or no
std) and every other column as text.

One table of another thesis is embedded beside them, :func:`li_table_6_4`: Liam Li's PhD thesis
("Towards Efficient Automated Machine Learning", CMU, 2020), Table 6.4, NAS-Bench-201 test accuracy
of GAEA DARTS and other methods (``harness/embedded/reference/li-thesis-table-6.4.csv``).
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from harness.errors import choices

TABLES = ("3.1", "4.1", "4.2", "4.3", "4.4", "4.5", "4.6", "4.7", "4.8", "B.1")
NUMERIC = ("mean", "std")
SOURCE = 'MSc thesis "Improving weight-sharing NAS with a marginal likelihood estimator" (Oxford, 2021)'
LI_SOURCE = 'Li, "Towards Efficient Automated Machine Learning", PhD thesis (CMU, 2020)'


def table(name: str) -> pd.DataFrame:
    """Thesis Table ``name`` (e.g. ``"4.1"``): ``mean``/``std`` as floats, the rest as strings."""
    if name not in TABLES:
        raise choices("thesis table", name, TABLES)
    return _read(f"thesis/thesis-table-{name}.csv", NUMERIC)


def li_table_6_4() -> pd.DataFrame:
    """Li's Table 6.4 (:data:`LI_SOURCE`; NAS-Bench-201, ``dataset`` CIFAR-10, CIFAR-100 or
    ImageNet16-120, one row per method and dataset): ``test_acc_mean``/``test_acc_std`` as floats,
    the rest as strings."""
    return _read("li-thesis-table-6.4.csv", ("test_acc_mean", "test_acc_std"))


def _read(name: str, numeric: tuple[str, ...]) -> pd.DataFrame:
    """The embedded CSV ``reference/<name>``: the ``numeric`` columns as floats (NaN where empty),
    every other column as text."""
    path = resources.files("harness.embedded") / "reference" / name
    with resources.as_file(path) as file:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    for column in numeric:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column].replace("", None), errors="raise").astype(float)
    return frame
