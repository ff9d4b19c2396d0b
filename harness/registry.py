"""``load_benchmark(name, root=None)``: the one entry point to every adapter.

Each adapter module exposes ``open_benchmark(root)``. ``root=None`` opens the data embedded in the
package (small real tables); a path opens a converted store or an official file/directory.
Adapters are imported lazily so that loading NB201 never imports onnxruntime, for example.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from harness.benchmark import Benchmark
from harness.errors import choices

_ADAPTERS: dict[str, tuple[str, dict[str, object]]] = {
    "nb201": ("harness.adapters.nb201", {}),
    "nb101": ("harness.adapters.nb101", {}),
    "nb1shot1-1": ("harness.adapters.nb1shot1", {"space": 1}),
    "nb1shot1-2": ("harness.adapters.nb1shot1", {"space": 2}),
    "nb1shot1-3": ("harness.adapters.nb1shot1", {"space": 3}),
    "nb301": ("harness.adapters.nb301", {}),
}

_ALIASES = {
    "nasbench201": "nb201",
    "nas-bench-201": "nb201",
    "nats-tss": "nb201",
    "natsbench-tss": "nb201",
    "nasbench101": "nb101",
    "nas-bench-101": "nb101",
    "nb101-1": "nb1shot1-1",
    "nb101-2": "nb1shot1-2",
    "nb101-3": "nb1shot1-3",
    "nasbench301": "nb301",
    "nas-bench-301": "nb301",
}


def available_benchmarks() -> tuple[str, ...]:
    return tuple(_ADAPTERS)


def canonical_name(name: str) -> str:
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key not in _ADAPTERS:
        raise choices("benchmark", name, list(_ADAPTERS) + list(_ALIASES))
    return key


def load_benchmark(name: str, root: str | Path | None = None, **options: object) -> Benchmark:
    """Open benchmark ``name`` from ``root`` (None: the embedded default data)."""
    module_name, fixed = _ADAPTERS[canonical_name(name)]
    module = importlib.import_module(module_name)
    return module.open_benchmark(None if root is None else Path(root).expanduser(), **fixed, **options)
