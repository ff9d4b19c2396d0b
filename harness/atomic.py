"""Atomic file writes: write beside the destination, then rename over it.

A reader (or a resumed run) sees either the old file or the whole new one, never a half-written
file: ``os.replace`` is atomic within one filesystem. If writing fails, the temp file is removed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def write_atomic(path: str | Path, write: Callable[[Path], object], tmp_suffix: str = ".tmp") -> Path:
    """Call ``write(tmp)`` for a temp path beside ``path`` (its name + ``tmp_suffix``), then rename it to
    ``path``; returns ``path``. ``tmp_suffix`` must keep any ending the writer insists on (``np.savez``
    appends ".npz" to a name without it, so pass ".tmp.npz" there)."""
    path = Path(path)
    tmp = path.with_name(path.name + tmp_suffix)
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
