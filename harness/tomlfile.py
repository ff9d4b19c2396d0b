"""Reading TOML config files (``tomllib`` on Python >= 3.11, the ``tomli`` backport before)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


def read_toml(path: str | Path) -> dict[str, Any]:
    """The parsed contents of the TOML file at ``path``; HarnessError names a missing or invalid file."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise HarnessError(f"config file {path} does not exist") from None
    except OSError as err:
        raise HarnessError(f"cannot read config file {path}: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise HarnessError(f"config file {path} is not valid TOML: {err}") from None
