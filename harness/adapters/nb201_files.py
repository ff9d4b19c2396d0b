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
lists every epoch. The official ``get_metrics`` raises at those epochs (no loss/accuracy), but
``get_more_info``'s ``*-all-time`` sums every listed time, so we keep them all: a split's ``time``
can exist at epochs where its loss and accuracy are NaN.

Everything is read through :mod:`harness.safe_pickle` (never plain ``pickle``), and every damaged,
truncated or unexpected input raises HarnessError naming the file.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import re
import signal
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
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
CHUNK_ARCHS = 8  # arch files per task of a reading process (~0.1 s of work)
_PTH_HP = {"less": "12", "full": "200"}  # nas_201_api: hp2archres['12'] = 'less', ['200'] = 'full'
# (field, type, what it should be) of an ArchResults state dict
_ARCH_RESULTS_FIELDS: tuple[tuple[str, type, str], ...] = (
    ("arch_str", str, "an arch string"),
    ("dataset_seed", Mapping, "a dict {dataset: [seeds]}"),
    ("all_results", Mapping, "a dict {(dataset, seed): ResultsCount state dict}"),
)


@dataclass
class RunRecord:
    """One training run (schedule, dataset, seed) of one architecture.

    ``curves[(split, metric)]`` is float64 ``[n_epochs]``, entry ``i`` = the value after epoch
    ``i + 1`` (official ``iepoch = i``), NaN where the file has no value for that epoch: loss and
    accuracy where the split was not evaluated; ``time`` (the seconds of that one epoch, the official
    ``cur_time``; the API's ``all_time`` is its running sum) is listed by the files at every epoch.
    """

    schedule: str
    dataset: str
    seed: int
    n_epochs: int
    curves: dict[tuple[str, str], np.ndarray]
    params: float
    flops: float
    latency: float  # mean of the run's latency list; NaN when not measured

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (between reading processes) with the curves as one stacked array, not one each."""
        keys = tuple(self.curves)
        stacked = np.array([self.curves[key] for key in keys], dtype=np.float64).reshape(len(keys), self.n_epochs)
        return _unpickle_run, (self.schedule, self.dataset, self.seed, self.n_epochs, keys, stacked, self.params, self.flops, self.latency)


def _unpickle_run(
    schedule: str, dataset: str, seed: int, n_epochs: int, keys: tuple[tuple[str, str], ...], stacked: np.ndarray,
    params: float, flops: float, latency: float,
) -> RunRecord:
    return RunRecord(schedule, dataset, seed, n_epochs, dict(zip(keys, stacked)), params, flops, latency)


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

    def records(self, workers: int = 1) -> Iterator[ArchRecord]:
        """The records in index order, as ``iter(self)``; a source may decode with ``workers`` processes."""
        return iter(self)

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
        data, self._checksums[file.name] = _load_file(file)
        return data

    def indices(self) -> list[int]:
        return sorted(self._files)

    def read(self, index: int) -> ArchRecord:
        file = self._files.get(index)
        if file is None:
            raise HarnessError(f"{self.path} has no file for arch {index}")
        record, self._checksums[file.name] = read_nats_arch_file(file, index, self.meta_archs[index])
        return record

    def records(self, workers: int = 1) -> Iterator[ArchRecord]:
        """The records in index order, decoded by ``workers`` processes (``1``: in this process).

        Files are handed out in chunks of :data:`CHUNK_ARCHS`; at most two chunks per worker are in
        flight, so memory stays flat. Workers ignore SIGINT (see :func:`_sigint_deferred`): Ctrl-C
        interrupts this process only, and closing the generator (as ``contextlib.closing`` does on
        any exception) cancels the queued chunks and waits for the workers to exit. An error in a
        worker (e.g. a corrupt file) is raised here, in order, as the HarnessError naming the file.
        """
        indices = self.indices()
        chunks = [indices[i : i + CHUNK_ARCHS] for i in range(0, len(indices), CHUNK_ARCHS)]
        workers = min(workers, len(chunks))
        if workers <= 1:
            yield from self
            return
        pool = ProcessPoolExecutor(max_workers=workers, initializer=_ignore_sigint)
        try:
            pending: deque[Future[list[tuple[ArchRecord, str, str]]]] = deque()
            for chunk in chunks:
                files = [(self._files[i], i, self.meta_archs[i]) for i in chunk]
                with _sigint_deferred():  # submit starts the workers
                    pending.append(pool.submit(_read_nats_chunk, files))
                if len(pending) > 2 * workers:
                    yield from self._take(pending.popleft())
            while pending:
                yield from self._take(pending.popleft())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _take(self, future: Future[list[tuple[ArchRecord, str, str]]]) -> Iterator[ArchRecord]:
        for record, name, digest in future.result():
            self._checksums[name] = digest
            yield record

    def checksums(self) -> dict[str, str]:
        return dict(self._checksums)


def _load_file(file: Path) -> tuple[Any, str]:
    """A bz2 pickle through the allow-list, and the sha256 of its bytes."""
    try:
        data = file.read_bytes()
    except OSError as err:
        raise HarnessError(f"cannot read {file}: {err}") from None
    return load_pickle(io.BytesIO(data), str(file)), hashlib.sha256(data).hexdigest()


def read_nats_arch_file(file: Path, index: int, arch_str: str) -> tuple[ArchRecord, str]:
    """One ``NNNNNN.pickle.pbz2`` as (record, sha256 of the file); HarnessError naming the file if damaged."""
    data, digest = _load_file(file)
    if not isinstance(data, Mapping) or not data:
        raise HarnessError(f"{file} should hold a dict {{hp: ArchResults}}, found {type(data).__name__}")
    return _arch_record(index, arch_str, {str(hp): value for hp, value in data.items()}, str(file)), digest


def _read_nats_chunk(files: list[tuple[Path, int, str]]) -> list[tuple[ArchRecord, str, str]]:
    """Worker task: (record, file name, sha256) of each (file, index, arch string)."""
    out = []
    for file, index, arch_str in files:
        record, digest = read_nats_arch_file(file, index, arch_str)
        out.append((record, file.name, digest))
    return out


def _ignore_sigint() -> None:
    """Initializer of the reading processes: Ctrl-C reaches the whole process group, and only the
    converting process handles it (it stops the workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) back until the block ends, then deliver it (a KeyboardInterrupt).

    ``ProcessPoolExecutor.submit`` forks the workers. A worker forked with Python's own SIGINT
    handler would raise KeyboardInterrupt, and print its traceback, if Ctrl-C came before its
    initializer (:func:`_ignore_sigint`) ran; forked inside this block it inherits a handler that
    only takes note. Nor is ``submit`` itself cut off halfway through starting the pool. Handlers
    can be set only in the main thread, which is also the only thread Python interrupts, so
    elsewhere the block changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            signal.raise_signal(signal.SIGINT)


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
        for name, kind, expected in _ARCH_RESULTS_FIELDS:
            if not isinstance(results[name], kind):
                raise HarnessError(f"{where} hp={hp}: '{name}' should be {expected}, found {type(results[name]).__name__}")
        if results["arch_str"] != arch_str:
            raise HarnessError(
                f"{where} hp={hp}: holds arch {results['arch_str']!r} but index {index} is {arch_str!r} in meta_archs"
            )
        runs = []
        for dataset, seeds in results["dataset_seed"].items():
            if dataset not in DATASETS:
                raise HarnessError(f"{where} hp={hp}: unknown dataset {dataset!r}; expected one of {DATASETS}")
            if not isinstance(seeds, (list, tuple)) or not all(isinstance(s, (int, np.integer)) for s in seeds):
                raise HarnessError(f"{where} hp={hp}: 'dataset_seed' of {dataset} should be a list of int seeds, found {seeds!r}")
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
        splits = list(run["eval_names"])
        for split in splits:
            if split not in SPLITS:
                raise HarnessError(f"{where}: unknown evaluation split {split!r}; expected one of {SPLITS[1:]}")
        losses = _split_curves(run["eval_losses"], splits, n_epochs, where)
        accuracies = _split_curves(run["eval_acc1es"], splits, n_epochs, where)
        times = _split_curves(run.get("eval_times") or {}, splits, n_epochs, where)
        for split in splits:
            loss, accuracy, time = losses[split], accuracies[split], times[split]
            if not np.array_equal(np.isnan(loss), np.isnan(accuracy)):
                raise HarnessError(f"{where}: split {split} has loss and accuracy at different epochs")
            # ``time`` keeps every epoch the file lists, also where the split has no loss/accuracy (at
            # hp=200 the last-epoch-only splits list an evaluation time for all 200 epochs): the official
            # ``*-all-time`` is the sum of these, which dropping them would make up to 200x too small.
            curves[(split, "loss")], curves[(split, "accuracy")], curves[(split, "time")] = loss, accuracy, time
        latencies = run.get("latency")
        latency = sum(float(x) for x in latencies) / len(latencies) if latencies else math.nan
        return RunRecord(hp, dataset, seed, n_epochs, curves, float(run["params"]), float(run["flop"]), latency)
    except HarnessError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise HarnessError(f"{where}: malformed run record ({type(err).__name__}: {err})") from None


def _epoch_values(values: Mapping[Any, Any], n_epochs: int, where: str) -> np.ndarray:
    """``{epoch index: value}`` (a ``train_*`` dict) as float64 ``[n_epochs]``, NaN where absent."""
    return _split_curves(values, (None,), n_epochs, where)[None]


def _split_curves(
    values: Mapping[Any, Any], splits: Iterable[str | None], n_epochs: int, where: str
) -> dict[str | None, np.ndarray]:
    """The ``"<split>@<epoch index>"`` entries of an ``eval_*`` dict, per split, as :func:`_epoch_values`.

    Split ``None`` reads the keys as epoch indices. Every value is converted with ``float()``; a
    repeated epoch keeps its last value. The key layout is parsed once per distinct layout
    (:func:`_key_layout`), so a file costs a few vectorised numpy operations per dict.
    """
    keys = tuple(values)
    floats = np.fromiter(map(float, values.values()), dtype=np.float64, count=len(keys))
    curves = {}
    for split in splits:
        positions, epochs, bad = _key_layout(keys, split, n_epochs)
        if bad is not None:
            raise HarnessError(f"{where}: epoch index {bad} out of range 0..{n_epochs - 1}")
        curve = np.full(n_epochs, np.nan)
        curve[epochs] = floats[positions]
        curves[split] = curve
    return curves


@functools.lru_cache(maxsize=256)
def _key_layout(keys: tuple[Any, ...], split: str | None, n_epochs: int) -> tuple[np.ndarray, np.ndarray, str | None]:
    """(positions of the split's keys, their epoch indices, first out-of-range epoch text or None).

    Cached: the runs of a benchmark repeat a few dozen key layouts. ``int()`` failing on an epoch
    raises ValueError (not cached), which the caller reports as a malformed record.
    """
    if split is None:
        positions, epoch_keys = list(range(len(keys))), list(keys)
    else:
        prefix = f"{split}@"
        positions = [i for i, key in enumerate(keys) if key.startswith(prefix)]
        epoch_keys = [keys[i][len(prefix) :] for i in positions]
    epochs = [int(key) for key in epoch_keys]
    bad = next((str(key) for key, epoch in zip(epoch_keys, epochs) if not 0 <= epoch < n_epochs), None)
    layout = (np.array(positions, dtype=np.intp), np.array(epochs if bad is None else [], dtype=np.intp), bad)
    for array in layout[:2]:
        array.flags.writeable = False
    return layout


def compute_costs(runs: list[RunRecord]) -> dict[str, float]:
    """Params, FLOPs and latency of one (schedule, dataset), as the official ``get_compute_costs``.

    params/flops: mean over the seeds' values; when they disagree (a legacy weight-migration issue,
    nats_bench v1.6) the official API takes seed 888's value, and so do we. Without a seed 888 the
    official API fails (``list.index``); we leave the value NaN (absent) rather than average values
    that disagree. latency: mean over the seeds' positive latencies (each a mean of its
    measurements); NaN where none was measured (the official API returns None).
    """
    seeds = [r.seed for r in runs]
    out = {}
    for metric, values in (("params", [r.params for r in runs]), ("flops", [r.flops for r in runs])):
        if len(values) > 1 and len({f"{v:.5f}" for v in values}) > 1:
            values = [values[seeds.index(888)]] if 888 in seeds else [math.nan]
        out[metric] = sum(values) / len(values)
    positive = [r.latency for r in runs if r.latency > 0]
    out["latency"] = sum(positive) / len(positive) if positive else math.nan
    return out
