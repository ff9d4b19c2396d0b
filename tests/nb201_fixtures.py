"""Generators of synthetic NB201 / NATS-Bench files in exactly the official layouts.

The structure copies the genuine NATS sample in ``tests/fixtures/nb201/`` (checked field by field):
a NATS arch file is an ``OrderedDict {hp: ArchResults state dict}``; each training run is a
ResultsCount state dict with python-float curves keyed by epoch index (``train_*``) or
``"<split>@<epoch index>"`` (``eval_*``), ``params`` as ``numpy.float64``, ``flop`` as float,
``latency`` as ``[numpy.float64]``, ``seed`` as the string ``"0777"``, ``train_times`` as an
OrderedDict, ``eval_times`` listing every epoch even where loss/accuracy exist only at the last one
(hp=200: cifar10-valid ori-test, cifar100/ImageNet16-120 x-valid and x-test).

* :func:`write_simple_dir` writes ``meta.pickle.pbz2`` + ``NNNNNN.pickle.pbz2`` (bz2 pickles,
  protocol 4, as ``nats_bench.api_utils.pickle_save``).
* :func:`write_pth` writes a NAS-Bench-201 ``.pth`` (``{"meta_archs", "arch2infos": {i: {"less",
  "full"}}, "evaluated_indexes", "total_archs"}``) with ``torch.save``, legacy or zip layout.
* :func:`write_full_simple_dir` writes all 15,625 arch files quickly (processes in parallel) for the
  performance benchmark.

Values are synthetic and deterministic: run (arch, hp, dataset, seed) draws from
``numpy.random.default_rng([arch, hp, dataset index, seed])``.
"""

from __future__ import annotations

import bz2
import collections
import os
import pickle
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

FIXTURE_DIR = Path(__file__).parent / "fixtures" / "nb201" / "NATS-tss-v1_0-3ffb9-simple"
DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
CLASSES = {"cifar10-valid": 10, "cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
OFFICIAL_SEEDS: dict[str, dict[str, list[int]]] = {
    "12": {"cifar10-valid": [111, 777], "cifar10": [111], "cifar100": [111], "ImageNet16-120": [111]},
    "200": {d: [777, 888, 999] for d in DATASETS},
}
# eval_names per (hp, dataset), in the order of the real files
EVAL_NAMES: dict[tuple[str, str], list[str]] = {
    ("12", "cifar10-valid"): ["x-valid", "ori-test"],
    ("12", "cifar10"): ["ori-test"],
    ("12", "cifar100"): ["x-valid", "x-test", "ori-test"],
    ("12", "ImageNet16-120"): ["x-valid", "x-test", "ori-test"],
    ("200", "cifar10-valid"): ["x-valid", "ori-test"],
    ("200", "cifar10"): ["ori-test"],
    ("200", "cifar100"): ["ori-test", "x-valid", "x-test"],
    ("200", "ImageNet16-120"): ["ori-test", "x-valid", "x-test"],
}
LAST_EPOCH_ONLY = {("200", "cifar10-valid", "ori-test"), ("200", "cifar100", "x-valid"), ("200", "cifar100", "x-test"),
                   ("200", "ImageNet16-120", "x-valid"), ("200", "ImageNet16-120", "x-test")}

Seeds = Mapping[str, Mapping[str, list[int]]]  # hp -> dataset -> seeds


def official_meta_archs() -> list[str]:
    """The 15,625 arch strings in the official order, from the real fixture's meta file."""
    from harness.safe_pickle import load_pickle

    return list(load_pickle(FIXTURE_DIR / "meta.pickle.pbz2")["meta_archs"])


def _curve(rng: np.random.Generator, n: int, start: float, end: float) -> np.ndarray:
    """A noisy monotone curve from ``start`` to ``end`` over ``n`` epochs."""
    base = start + (end - start) * (1 - np.exp(-np.arange(1, n + 1) / (n / 4)))
    return base + rng.normal(0, abs(end - start) * 0.02, n)


def make_run(index: int, arch_str: str, hp: str, dataset: str, seed: int) -> dict[str, Any]:
    """One ResultsCount state dict, structured as in the real files."""
    n = int(hp)
    rng = np.random.default_rng([index, n, DATASETS.index(dataset), seed])
    classes = CLASSES[dataset]
    top = rng.uniform(40, 95)
    train_acc = _curve(rng, n, 100 / classes + 10, top)
    train_loss = _curve(rng, n, 2.0, rng.uniform(0.05, 1.0))
    epoch_time = float(rng.uniform(5, 10))
    eval_acc, eval_loss, eval_times, split_times = {}, {}, {}, {}
    for split in EVAL_NAMES[(hp, dataset)]:
        acc = _curve(rng, n, 100 / classes, top - 5)
        loss = _curve(rng, n, 2.2, rng.uniform(0.3, 1.5))
        epochs = [n - 1] if (hp, dataset, split) in LAST_EPOCH_ONLY else range(n)
        for e in epochs:
            eval_acc[f"{split}@{e}"] = float(acc[e])
            eval_loss[f"{split}@{e}"] = float(loss[e])
        split_times[split] = float(rng.uniform(1, 3))
    for split in sorted(split_times, key=lambda s: ("x-valid", "x-test", "ori-test").index(s) if hp == "200" else 0):
        for e in range(n):
            eval_times[f"{split}@{e}"] = split_times[split]
    params = 0.1 + 0.01 * (index % 97) + (0.0 if classes == 10 else 0.00585 if classes == 100 else 0.00715)
    return {
        "name": dataset,
        "train_acc1es": {e: float(v) for e, v in enumerate(train_acc)},
        "train_acc5es": {e: float(min(v + 30, 100)) for e, v in enumerate(train_acc)} if n == 12 else None,
        "train_losses": {e: float(v) for e, v in enumerate(train_loss)},
        "train_times": collections.OrderedDict((e, epoch_time) for e in range(n)),
        "arch_config": {"channel": 16, "num_cells": 5, "arch_str": arch_str, "class_num": classes},
        "params": np.float64(params),
        "flop": float(15.0 + index % 101 + (0.0 if classes != 120 else -11.7)),
        "seed": f"{seed:04d}",
        "epochs": n,
        "latency": [np.float64(0.01 + 0.0001 * (index % 53))],
        "eval_names": list(EVAL_NAMES[(hp, dataset)]),
        "eval_acc1es": eval_acc,
        "eval_times": eval_times,
        "eval_losses": eval_loss,
        "net_state_dict": None,
    }


def make_arch_results(index: int, arch_str: str, hp: str, seeds: Mapping[str, list[int]]) -> dict[str, Any]:
    """One ArchResults state dict (one hp) of arch ``index``."""
    all_results = {}
    for dataset, dataset_seeds in seeds.items():
        for seed in dataset_seeds:
            all_results[(dataset, seed)] = make_run(index, arch_str, hp, dataset, seed)
    return {
        "arch_index": index,
        "arch_str": arch_str,
        "all_results": all_results,
        "dataset_seed": {d: sorted(s) for d, s in seeds.items()},
        "clear_net_done": True,
    }


def make_arch_file(index: int, arch_str: str, seeds: Seeds = OFFICIAL_SEEDS) -> collections.OrderedDict:
    """The content of one NATS ``NNNNNN.pickle.pbz2``: ``OrderedDict {hp: ArchResults}``."""
    return collections.OrderedDict((hp, make_arch_results(index, arch_str, hp, s)) for hp, s in seeds.items())


def _dump_pbz2(obj: Any, path: Path) -> None:
    partial = path.with_name(path.name + ".partial")
    with bz2.BZ2File(partial, "wb") as fh:
        pickle.dump(obj, fh, protocol=4)
    os.replace(partial, path)


def write_meta(dest: Path, meta_archs: list[str]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    meta = {"meta_archs": meta_archs, "total_archs": len(meta_archs), "arch2infos": None, "evaluated_indexes": set()}
    _dump_pbz2(meta, dest / "meta.pickle.pbz2")


def write_simple_dir(
    dest: Path, indices: Iterable[int], meta_archs: list[str], seeds: Mapping[int, Seeds] | Seeds | None = None
) -> Path:
    """A NATS simple directory with records for ``indices``.

    ``seeds`` is one hp -> dataset -> seeds mapping for every arch, or a dict arch index -> mapping
    (archs not in it get :data:`OFFICIAL_SEEDS`); default :data:`OFFICIAL_SEEDS`.
    """
    write_meta(dest, meta_archs)
    for index in indices:
        _dump_pbz2(make_arch_file(index, meta_archs[index], _seeds_for(index, seeds)), dest / f"{index:06d}.pickle.pbz2")
    return dest


def _seeds_for(index: int, seeds: Mapping[int, Seeds] | Seeds | None) -> Seeds:
    if seeds is None:
        return OFFICIAL_SEEDS
    if all(isinstance(k, str) for k in seeds):
        return seeds  # type: ignore[return-value]
    return seeds.get(index, OFFICIAL_SEEDS)  # type: ignore[return-value,arg-type]


def write_pth(
    dest: Path, indices: Iterable[int], meta_archs: list[str], seeds: Mapping[int, Seeds] | Seeds | None = None,
    legacy: bool = True,
) -> Path:
    """A NAS-Bench-201 ``.pth`` (``less`` = hp 12, ``full`` = hp 200); ``legacy`` = torch 1.4 layout."""
    import torch

    arch2infos = {}
    for index in indices:
        per_hp = make_arch_file(index, meta_archs[index], _seeds_for(index, seeds))
        arch2infos[index] = {{"12": "less", "200": "full"}[hp]: results for hp, results in per_hp.items()}
    data = {
        "meta_archs": meta_archs,
        "arch2infos": arch2infos,
        "evaluated_indexes": sorted(arch2infos),
        "total_archs": len(meta_archs),
    }
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, dest, _use_new_zipfile_serialization=not legacy)
    return dest


def _write_chunk(args: tuple[Path, list[int], list[str]]) -> int:
    dest, indices, arch_strs = args
    for index, arch_str in zip(indices, arch_strs):
        _dump_pbz2(make_arch_file(index, arch_str), dest / f"{index:06d}.pickle.pbz2")
    return len(indices)


def write_full_simple_dir(dest: Path, meta_archs: list[str], workers: int | None = None, progress: bool = True) -> Path:
    """All 15,625 arch files with the official seeds and schedules (about 1.3 GB; parallel)."""
    from tqdm import tqdm

    write_meta(dest, meta_archs)
    todo = [i for i in range(len(meta_archs)) if not (dest / f"{i:06d}.pickle.pbz2").exists()]
    chunks = [todo[i : i + 64] for i in range(0, len(todo), 64)]
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool, tqdm(
        total=len(todo), desc="writing synthetic NATS files", unit="arch", disable=not progress
    ) as bar:
        for done in pool.map(_write_chunk, [(dest, c, [meta_archs[i] for i in c]) for c in chunks]):
            bar.update(done)
    return dest
