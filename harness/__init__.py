"""harness: one query interface over NAS benchmarks, estimators and rankings.

The query and metrics layers import without torch; only ``harness.supernet`` and
``harness.data`` need it.
"""

from harness.benchmark import Benchmark, Capabilities, Column, QueryResult
from harness.errors import HarnessError, NotAvailableError
from harness.registry import available_benchmarks, load_benchmark

__all__ = [
    "Benchmark",
    "Capabilities",
    "Column",
    "HarnessError",
    "NotAvailableError",
    "QueryResult",
    "available_benchmarks",
    "load_benchmark",
]

__version__ = "0.1.0"
