"""The ``harness`` command line: ``harness <command> ...``.

Each subcommand lives in its own module under ``harness.commands`` and adds itself through
``register(subparsers)``. A :class:`~harness.errors.HarnessError`, or an operating-system error
such as an output path that cannot be created, is printed as one line on stderr, without a
traceback, and the exit status is 2. Output cut short by a closed pipe (``harness ... | head``)
ends quietly with status 1. Ctrl-C (KeyboardInterrupt) ends any command with the one line
``harness: interrupted`` and status 130 (128 + SIGINT, as shells report it); a command that knows
what the interrupt left behind re-raises ``KeyboardInterrupt(message)`` and the message is appended,
e.g. ``harness: interrupted; no store was written at DEST``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from harness.errors import HarnessError

COMMAND_MODULES: tuple[str, ...] = (
    "harness.commands.query",
    "harness.commands.data",
    "harness.commands.ws",
    "harness.commands.search",
    "harness.commands.compare",
    "harness.commands.correlate",
    "harness.commands.plot",
    "harness.commands.table",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description="NAS benchmark evaluation harness")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)  # inside: a Ctrl-C while the command modules import is one line too
        return int(args.func(args) or 0)
    except KeyboardInterrupt as interrupt:
        detail = f"; {interrupt}" if str(interrupt) else ""
        print(f"harness: interrupted{detail}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away: say nothing more, and keep Python from complaining at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (HarnessError, OSError) as err:
        print(f"harness: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
