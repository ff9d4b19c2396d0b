"""Readers of the official NAS-Bench-201 / NATS-Bench topology files, one architecture at a time.

Two layouts hold the same per-architecture records (the ``ArchResults`` state dicts of the
official APIs ``nats_bench/api_utils.py`` and ``nas_201_api/api_utils.py`` by Xuanyi Dong):

* **NATS-Bench tss "simple" directory** (``NATS-tss-v1_0-3ffb9-simple/``): ``meta.pickle.pbz2`` =
  ``{"meta_archs": [15,625 arch strings in the official order], "total_archs", ...}`` and one
  ``NNNNNN.pickle.pbz2`` per architecture = ``{hp: ArchResults state dict}`` with hp ``"12"``/``"200"``.
* **NAS-Bench-201 ``.pth``** (``NAS-Bench-201-v1_0-e61699.pth``, ``NAS-Bench-201-v1_1-096897.pth``):
  one torch-pickled dict ``{"meta_archs", "arch2infos": {index: {"less": ArchResults (12 epochs),
  "full": ArchResults (200 epochs)}}, "evaluated_indexes", "total_archs"}``.

An ArchResults state dict is ``{"arch_index", "arch_str", "dataset_seed": {dataset: [seeds]},
"all_results": {(dataset, seed): ResultsCount state dict}}``. A ResultsCount (one training run) holds
``epochs``, ``train_losses``/``train_acc1es``/``train_times`` (dicts epoch index -> value),
``eval_losses``/``eval_acc1es``/``eval_times`` (dicts ``"<split>@<epoch index>"`` -> value),
``params`` (M), ``flop`` (M) and ``latency`` (list of seconds).

What the real files contain (checked on the genuine 3-arch NATS sample): hp=12 trains cifar10-valid
with seeds 111 and 777 and the other datasets with seed 111; hp=200 uses seeds 777, 888, 999. At
hp=200 the ``ori-test`` split of ``cifar10-valid`` and the ``x-valid``/``x-test`` splits of
``cifar100`` and ``ImageNet16-120`` are evaluated only after the last epoch; ``eval_times`` still
lists every epoch, but the official API raises for those epochs (no loss/accuracy), so we keep a
split's time only at the epochs where it was evaluated.

Everything is read through :mod:`harness.safe_pickle` (never plain ``pickle``), and every damaged,
truncated or unexpected input raises HarnessError naming the file.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.safe_pickle import load_pickle, load_torch_file

DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
SCHEDULES = ("12", "200")
SPLITS = ("train", "x-valid", "x-test", "ori-test")
EPOCH_METRICS = ("loss", "accuracy", "time")
COST_METRICS = ("params", "flops", "latency")
N_ARCHS = 15_625

NATS_META = "meta.pickle.pbz2"
NATS_SUFFIX = ".pickle.pbz2"
_NATS_ARCH_FILE = re.compile(r"^(\d+)\.pickle\.pbz2$")
_PTH_HP = {"less": "12", "full": "200"}  # nas_201_api: hp2archres['12'] = 'less', ['200'] = 'full'


@dataclass
class RunRecord:
    """One training run (schedule, dataset, seed) of one architecture.

    ``curves[(split, metric)]`` is float64 ``[n_epochs]``, entry ``i`` = the value after epoch
    ``i + 1`` (official ``iepoch = i``), NaN where the split was not evaluated at that epoch.
    ``time`` is the seconds of that one epoch (the official ``cur_time``; the API's ``all_time`` is
    its running sum).
    """

    schedule: str
    dataset: str
    seed: int
    n_epochs: int
    curves: dict[tuple[str, str], np.ndarray]
    params: float
    flops: float
    latency: float  # mean of the run's latency list; NaN when not measured


@dataclass
class ArchRecord:
    """Everything the official files hold about one architecture (weights excluded)."""

    index: int
    arch_str: str
    runs: list[RunRecord]
    costs: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)  # (schedule, dataset) -> metric


class NB201Source:
    """An opened official source: the arch order plus a stream of :class:`ArchRecord`."""

    format: str
    path: Path
    meta_archs: list[str]

    def indices(self) -> list[int]:
        """Indices of the architectures with a record, ascending."""
        raise NotImplementedError

    def read(self, index: int) -> ArchRecord:
        raise NotImplementedError

    def __iter__(self) -> Iterator[ArchRecord]:
        for index in self.indices():
            yield self.read(index)

    def checksums(self) -> dict[str, str]:
        """sha256 of the source files read so far (file name -> hex digest)."""
        raise NotImplementedError


def open_source(path: str | Path) -> NB201Source:
    """Open a NATS simple directory or an NB201 ``.pth`` file; raises HarnessError for anything else."""
    path = Path(path)
    if path.is_dir():
        return NatsSimpleDir(path)
    if path.is_file():
        return NB201PthFile(path)
    raise HarnessError(
        f"{path} does not exist; expected a NATS-Bench directory like NATS-tss-v1_0-3ffb9-simple/ "
        "or a NAS-Bench-201 .pth file"
    )


class NatsSimpleDir(NB201Source):
    """The NATS-Bench tss fast-mode directory: ``meta.pickle.pbz2`` + ``NNNNNN.pickle.pbz2`` per arch."""

    format = "nats-tss-simple"

    def __init__(self, path: Path):
        self.path = Path(path)
        meta_file = self.path / NATS_META
        if not meta_file.is_file():
            raise HarnessError(
                f"{self.path} is not a NATS-Bench topology 'simple' directory: expected {NATS_META} and "
                f"one NNNNNN{NATS_SUFFIX} file per architecture (as in NATS-tss-v1_0-3ffb9-simple/)"
            )
        self._checksums: dict[str, str] = {}
        meta = self._load(meta_file)
        if not isinstance(meta, dict) or "meta_archs" not in meta:
            raise HarnessError(f"{meta_file} has no 'meta_archs' list; not a NATS-Bench meta file")
        self.meta_archs = _check_meta_archs(meta["meta_archs"], meta_file)
        self._files: dict[int, Path] = {}
        for file in self.path.iterdir():
            match = _NATS_ARCH_FILE.match(file.name)
            if match is None:
                continue
            index = int(match.group(1))
            if not 0 <= index < len(self.meta_archs):
                raise HarnessError(f"{file} names arch {index}; valid indices 0..{len(self.meta_archs) - 1}")
            if index in self._files:
                raise HarnessError(f"arch {index} has two files in {self.path}: {self._files[index].name}, {file.name}")
            self._files[index] = file
        if not self._files:
            raise HarnessError(f"{self.path} has {NATS_META} but no NNNNNN{NATS_SUFFIX} architecture files")

    def _load(self, file: Path) -> Any:
        try:
            data = file.read_bytes()
        except OSError as err:
            raise HarnessError(f"cannot read {file}: {err}") from None
        self._checksums[file.name] = hashlib.sha256(data).hexdigest()
        return load_pickle(io.BytesIO(data), str(file))

    def indices(self) -> list[int]:
        return sorted(self._files)

    def read(self, index: int) -> ArchRecord:
        file = self._files.get(index)
        if file is None:
            raise HarnessError(f"{self.path} has no file for arch {index}")
        data = self._load(file)
        if not isinstance(data, Mapping) or not data:
            raise HarnessError(f"{file} should hold a dict {{hp: ArchResults}}, found {type(data).__name__}")
        return _arch_record(index, self.meta_archs[index], {str(hp): value for hp, value in data.items()}, str(file))

    def checksums(self) -> dict[str, str]:
        return dict(self._checksums)


class NB201PthFile(NB201Source):
    """A NAS-Bench-201 ``.pth``: the whole dict is loaded once (it is one pickle), then streamed."""

    format = "nb201-pth"

    def __init__(self, path: Path):
        self.path = Path(path)
        data = load_torch_file(self.path)
        if not isinstance(data, Mapping) or not {"meta_archs", "arch2infos"} <= set(data):
            raise HarnessError(
                f"{self.path} is not a NAS-Bench-201 .pth file: expected a dict with 'meta_archs', "
                f"'arch2infos' and 'evaluated_indexes' (as in NAS-Bench-201-v1_1-096897.pth)"
            )
        self.meta_archs = _check_meta_archs(data["meta_archs"], self.path)
        infos = data["arch2infos"]
        if not isinstance(infos, Mapping):
            raise HarnessError(f"{self.path}: 'arch2infos' should be a dict, found {type(infos).__name__}")
        self._infos: dict[int, Any] = {}
        for key, value in infos.items():
            if not isinstance(key, (int, np.integer)) or not 0 <= int(key) < len(self.meta_archs):
                raise HarnessError(f"{self.path}: arch2infos key {key!r} is not an arch index 0..{len(self.meta_archs) - 1}")
            self._infos[int(key)] = value

    def indices(self) -> list[int]:
        return sorted(self._infos)

    def read(self, index: int) -> ArchRecord:
        if index not in self._infos:
            raise HarnessError(f"{self.path} has no record for arch {index}")
        where = f"{self.path} arch {index}"
        entry = self._infos[index]
        if not isinstance(entry, Mapping) or not set(entry) <= set(_PTH_HP) or not entry:
            raise HarnessError(f"{where}: expected a dict with keys 'less' and 'full', found {_keys(entry)}")
        return _arch_record(index, self.meta_archs[index], {_PTH_HP[k]: v for k, v in entry.items()}, where)

    def __iter__(self) -> Iterator[ArchRecord]:
        for index in self.indices():
            record = self.read(index)
            del self._infos[index]  # free the raw dict as we go
            yield record

    def checksums(self) -> dict[str, str]:
        digest = hashlib.sha256()
        with self.path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
        return {self.path.name: digest.hexdigest()}


def _keys(value: Any) -> str:
    return repr(sorted(map(str, value))) if isinstance(value, Mapping) else type(value).__name__


def _check_meta_archs(meta_archs: Any, where: Path) -> list[str]:
    if not isinstance(meta_archs, (list, tuple)) or not all(isinstance(a, str) for a in meta_archs):
        raise HarnessError(f"{where}: 'meta_archs' should be a list of arch strings")
    if len(meta_archs) != N_ARCHS:
        raise HarnessError(f"{where}: 'meta_archs' has {len(meta_archs)} archs; NB201 has {N_ARCHS}")
    if len(set(meta_archs)) != N_ARCHS:
        raise HarnessError(f"{where}: 'meta_archs' repeats an arch string")
    return list(meta_archs)


def _arch_record(index: int, arch_str: str, per_hp: dict[str, Any], where: str) -> ArchRecord:
    record = ArchRecord(index=index, arch_str=arch_str, runs=[])
    for hp, results in per_hp.items():
        if hp not in SCHEDULES:
            raise HarnessError(f"{where}: unknown hyper-parameter set {hp!r}; expected {SCHEDULES}")
        if not isinstance(results, Mapping) or not {"all_results", "dataset_seed", "arch_str"} <= set(results):
            raise HarnessError(f"{where} hp={hp}: not an ArchResults state dict (keys {_keys(results)})")
        if results["arch_str"] != arch_str:
            raise HarnessError(
                f"{where} hp={hp}: holds arch {results['arch_str']!r} but index {index} is {arch_str!r} in meta_archs"
            )
        runs = []
        for dataset, seeds in results["dataset_seed"].items():
            if dataset not in DATASETS:
                raise HarnessError(f"{where} hp={hp}: unknown dataset {dataset!r}; expected one of {DATASETS}")
            for seed in seeds:
                run = results["all_results"].get((dataset, seed))
                if run is None:
                    raise HarnessError(f"{where} hp={hp}: dataset_seed lists ({dataset}, {seed}) but all_results lacks it")
                runs.append(_run_record(hp, dataset, int(seed), run, f"{where} hp={hp} {dataset} seed {seed}"))
        for dataset in dict.fromkeys(r.dataset for r in runs):
            record.costs[(hp, dataset)] = compute_costs([r for r in runs if r.dataset == dataset])
        record.runs.extend(runs)
    return record


def _run_record(hp: str, dataset: str, seed: int, run: Any, where: str) -> RunRecord:
    try:
        n_epochs = int(run["epochs"])
        if n_epochs != int(hp):
            raise HarnessError(f"{where}: trained {n_epochs} epochs but hp={hp} means {hp}")
        curves = {
            ("train", "loss"): _epoch_values(run["train_losses"], n_epochs, where),
            ("train", "accuracy"): _epoch_values(run["train_acc1es"], n_epochs, where),
            ("train", "time"): _epoch_values(run.get("train_times") or {}, n_epochs, where),
        }
        for split in run["eval_names"]:
            if split not in SPLITS:
                raise HarnessError(f"{where}: unknown evaluation split {split!r}; expected one of {SPLITS[1:]}")
            loss = _eval_values(run["eval_losses"], split, n_epochs, where)
            accuracy = _eval_values(run["eval_acc1es"], split, n_epochs, where)
            if not np.array_equal(np.isnan(loss), np.isnan(accuracy)):
                raise HarnessError(f"{where}: split {split} has loss and accuracy at different epochs")
            time = _eval_values(run.get("eval_times") or {}, split, n_epochs, where)
            time[np.isnan(loss)] = np.nan  # the official API gives no time where it gives no loss
            curves[(split, "loss")], curves[(split, "accuracy")], curves[(split, "time")] = loss, accuracy, time
        latencies = run.get("latency")
        latency = sum(float(x) for x in latencies) / len(latencies) if latencies else math.nan
        return RunRecord(hp, dataset, seed, n_epochs, curves, float(run["params"]), float(run["flop"]), latency)
    except HarnessError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise HarnessError(f"{where}: malformed run record ({type(err).__name__}: {err})") from None


def _epoch_values(values: Mapping[Any, Any], n_epochs: int, where: str) -> np.ndarray:
    out = np.full(n_epochs, np.nan)
    for epoch, value in values.items():
        if not 0 <= int(epoch) < n_epochs:
            raise HarnessError(f"{where}: epoch index {epoch} out of range 0..{n_epochs - 1}")
        out[int(epoch)] = float(value)
    return out


def _eval_values(values: Mapping[str, Any], split: str, n_epochs: int, where: str) -> np.ndarray:
    prefix = f"{split}@"
    return _epoch_values({k[len(prefix):]: v for k, v in values.items() if k.startswith(prefix)}, n_epochs, where)


def compute_costs(runs: list[RunRecord]) -> dict[str, float]:
    """Params, FLOPs and latency of one (schedule, dataset), as the official ``get_compute_costs``.

    params/flops: mean over the seeds' values; when they disagree (a legacy weight-migration issue,
    nats_bench v1.6) the official API takes seed 888's value, and so do we. latency: mean over the
    seeds' positive latencies (each a mean of its measurements); NaN where none was measured (the
    official API returns None).
    """
    seeds = [r.seed for r in runs]
    out = {}
    for metric, values in (("params", [r.params for r in runs]), ("flops", [r.flops for r in runs])):
        if len(values) > 1 and len({f"{v:.5f}" for v in values}) > 1 and 888 in seeds:
            values = [values[seeds.index(888)]]
        out[metric] = sum(values) / len(values)
    positive = [r.latency for r in runs if r.latency > 0]
    out["latency"] = sum(positive) / len(positive) if positive else math.nan
    return out
