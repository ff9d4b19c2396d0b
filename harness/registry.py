"""``load_benchmark(name, root=None)``: the one entry point to every adapter.

Each adapter module exposes ``open_benchmark(root)``. ``root=None`` opens the data embedded in the
package (small real tables); a path opens a converted store or an official file/directory.
Adapters are imported lazily so that loading NB201 never imports onnxruntime, for example.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from harness.benchmark import Benchmark
from harness.errors import HarnessError, choices

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
    """Open benchmark ``name`` from ``root`` (None: the embedded default data).

    ``options`` are the keyword arguments of the adapter's ``open_benchmark`` (e.g. ``nb_models=`` of
    nb301); an unknown one raises HarnessError naming the valid ones.
    """
    key = canonical_name(name)
    module_name, fixed = _ADAPTERS[key]
    open_benchmark = importlib.import_module(module_name).open_benchmark
    valid = [
        p.name for p in inspect.signature(open_benchmark).parameters.values()
        if p.name != "root" and p.name not in fixed and p.kind is not p.VAR_KEYWORD
    ]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise HarnessError(
            f"unknown keyword argument {', '.join(unknown)} for benchmark {key!r}; valid: {', '.join(valid) or 'none (only name and root)'}"
        )
    return open_benchmark(None if root is None else Path(root).expanduser(), **fixed, **options)
