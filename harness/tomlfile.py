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


_KINDS = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string"}


def typed(value: Any, hint: str, where: str, minimum: int | None = None) -> Any:
    """``value`` checked against a type ``hint`` as a dataclass field writes it (``int``, ``float``,
    ``bool``, ``str``, ``tuple[int, ...]``, ``tuple[str, ...]``, each optionally ``| None``); lists
    become tuples, integers floats where a float is wanted, nothing else is converted (a TOML boolean
    is no integer, ``"yes"`` no boolean). ``minimum`` bounds integers. Raises HarnessError naming
    ``where`` and what is valid."""
    if hint.endswith(" | None"):
        if value is None:
            return None
        hint = hint.removesuffix(" | None")
    if hint.startswith("tuple["):
        item = hint.removeprefix("tuple[").removesuffix(", ...]")
        if not isinstance(value, (list, tuple)):
            raise HarnessError(f"{where} must be a list of {item}, got {value!r}")
        return tuple(typed(v, item, f"{where} entry", minimum) for v in value)
    ok = {
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool) and (minimum is None or value >= minimum),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "str": isinstance(value, str),
    }[hint]
    if not ok:
        bound = f" >= {minimum}" if hint == "int" and minimum is not None else ""
        raise HarnessError(f"{where} must be {_KINDS[hint]}{bound}, got {value!r}")
    return float(value) if hint == "float" else value
