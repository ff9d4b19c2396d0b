"""The one exception type the harness raises for bad input.

Every check of user input (an unknown architecture, a wrong dataset name, an epoch out of range, a
corrupt or truncated file, a directory that is not a benchmark, an estimator a benchmark cannot
support) raises :class:`HarnessError`. Its message names what was wrong and what is valid. The CLI
prints the message without a traceback and exits with status 2.
"""

from __future__ import annotations

from collections.abc import Iterable


class HarnessError(ValueError):
    """Bad input to the harness: the message says what was wrong and what is valid."""


class NotAvailableError(HarnessError):
    """The benchmark does not record what was asked for (e.g. SoTL on NAS-Bench-101).

    ``recorded_nowhere`` is True when the benchmark records it in none of its data (an ``Absence``
    of its capabilities), so its full official files would not have it either.
    """

    def __init__(self, message: str, recorded_nowhere: bool = False) -> None:
        super().__init__(message)
        self.recorded_nowhere = recorded_nowhere


def choices(what: str, got: object, valid: Iterable[object]) -> HarnessError:
    """Build the standard 'unknown X; valid: ...' error."""
    valid_list = list(valid)
    shown = ", ".join(repr(v) for v in valid_list[:20])
    if len(valid_list) > 20:
        shown += f", ... ({len(valid_list)} in all)"
    return HarnessError(f"unknown {what} {got!r}; valid: {shown}")
