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
    """The benchmark does not record what was asked for (e.g. SoTL on NAS-Bench-101)."""


def choices(what: str, got: object, valid: Iterable[object]) -> HarnessError:
    """Build the standard 'unknown X; valid: ...' error."""
    valid_list = list(valid)
    shown = ", ".join(repr(v) for v in valid_list[:20])
    if len(valid_list) > 20:
        shown += f", ... ({len(valid_list)} in all)"
    return HarnessError(f"unknown {what} {got!r}; valid: {shown}")
