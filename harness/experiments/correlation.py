"""The correlation-vs-epoch experiment (thesis Sec. 4.2.1, Fig. 4.4 and 4.5).

Protocol, for a benchmark with learning curves:

1. The arch pool: every arch of an indexed space that the data holds (``bench.archs_with_data()``:
   all archs, or the few of a store converted from a partial source), optionally without isomorphs
   and degenerate archs (the adapter's ``unique_archs`` / ``non_degenerate``), minus archs without a
   ground truth.
2. Repetition r = 0..R-1 uses ``numpy.random.default_rng([seed, r])``. It draws N archs from the pool
   without replacement (or takes them all, ``n_archs = "all"``). An unindexed space (NAS-Bench-301,
   ``capabilities().n_archs is None``) is sampled with ``bench.sample(N, rng)``; its archs are opaque.
   A space whose archs are costly to resolve (NAS-Bench-1Shot1 hashes each configuration,
   ``resolves_whole_space_cheaply = False``) has no pool read up front: each repetition takes the
   first N archs with a truth and a curve in a random permutation of ``bench.archs_with_data()``, a
   uniform N-subset of the pool.
3. Training seed (``train_seed``): ``"random"`` (default) gives each arch, in each repetition, one
   of the training seeds for which it has a complete curve in every column the experiment reads,
   drawn uniformly with the repetition's generator, so all estimators of an arch read the same
   training run, as a practitioner with one run per arch would. ``"mean"`` averages the curves over
   the seeds that exist; a seed label (e.g. 777) uses that run. Archs with no usable curve are
   dropped and counted in ``run.json`` (passed over, uncounted, by the per-repetition draw).
4. Each estimator's value at every epoch (:mod:`harness.metrics`), then its rank agreement with the
   truth at every epoch at once (:func:`harness.ranking.rank_metrics` on ``[epochs, archs]``),
   oriented by the estimator's declared direction and the truth column's (a loss truth is better
   when lower). The truth defaults to the final test accuracy (seed mean) of the same dataset and
   schedule.

Output (``results/<run-id>/``): ``results.parquet`` and ``results.csv`` (estimator, epoch, repetition,
n_archs, k, and the metrics), ``config.toml`` (the resolved config), ``run.json`` (data and code
versions, what was dropped or skipped, timings) and ``cache/`` (estimator values, reused by a re-run
with the same config and data).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from harness.atomic import write_atomic
from harness.benchmark import Benchmark, Column, epoch_span
from harness.errors import HarnessError, NotAvailableError, choices
from harness.experiments.config import CorrelationConfig, to_toml
from harness.metrics import get_estimator, required_columns
from harness.metrics.registry import METRIC_CANDIDATES, Estimator, role_column
from harness.ranking import rank_metrics
from harness.registry import load_benchmark

CACHE_LIMIT_BYTES = 64 * 2**20  # estimator values larger than this (per estimator) are not cached
# Part of every cache key; raised whenever the same config and data would draw or compute other values
# (2: costly spaces such as NB1Shot1 are drawn per repetition), so that no stale cache is read.
CACHE_VERSION = 2


@dataclass
class RunResult:
    results: pd.DataFrame
    out_dir: Path | None
    info: dict[str, Any] = field(default_factory=dict)


def run_id_for(config: CorrelationConfig) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", config.name).strip("-") or "run"


# ------------------------------------------------------------------------------------ data access


def _data_fingerprint(bench: Benchmark, root: str) -> dict[str, Any]:
    info: dict[str, Any] = {"benchmark": bench.name, "root": root or "embedded"}
    if root:
        manifest = Path(root) / "manifest.json"
        if manifest.is_file():
            text = manifest.read_bytes()
            info["manifest_sha256"] = hashlib.sha256(text).hexdigest()
            try:
                meta = json.loads(text)
                info["store_source"] = meta.get("source")
                info["store_created"] = meta.get("created")
            except json.JSONDecodeError:
                pass
    else:
        import harness

        info["embedded_version"] = harness.__version__
    return info


def _code_version() -> dict[str, Any]:
    import scipy

    import harness

    info: dict[str, Any] = {
        "harness": harness.__version__, "python": platform.python_version(),
        "numpy": np.__version__, "pandas": pd.__version__, "scipy": scipy.__version__,
    }
    try:
        repo = Path(harness.__file__).resolve().parent.parent
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if out.returncode == 0:
            info["git_commit"] = out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


@dataclass
class _Plan:
    """What the experiment reads: estimators with their columns, the truth column, skipped ones."""

    estimators: list[Estimator]
    columns: dict[str, dict[str, Column]]
    curve_columns: list[Column]
    truth: Column
    skipped: dict[str, str]


def _plan(config: CorrelationConfig, bench: Benchmark) -> _Plan:
    estimators, columns, skipped = [], {}, {}
    for spec in config.estimators:
        est = get_estimator(spec)
        try:
            cols = required_columns(est, bench, config.dataset, config.schedule or None, config.splits)
        except NotAvailableError as err:
            if not config.skip_unavailable:
                # embedded tables say where the rest can be had, unless the benchmark records this nowhere
                elsewhere = "" if err.recorded_nowhere else bench.capabilities().elsewhere
                raise NotAvailableError(f"{err}; {elsewhere}" if elsewhere else str(err), err.recorded_nowhere) from None
            skipped[est.label] = str(err)
            continue
        estimators.append(est)
        columns[est.label] = cols
    if not estimators:
        raise NotAvailableError("no estimator of this config can be computed on this data: " + "; ".join(skipped.values()))
    curve_columns = list({c.key: c for cols in columns.values() for c in cols.values() if c.epochs}.values())
    t = config.truth
    if t.split:
        truth = bench.capabilities().column(t.dataset, t.metric, t.split, t.schedule or None)
    else:
        kinds = [kind for kind, names in METRIC_CANDIDATES.items() if t.metric in names]
        if not kinds:
            raise choices("truth metric", t.metric, [name for names in METRIC_CANDIDATES.values() for name in names])
        truth = role_column(bench, t.dataset, t.schedule or None, "test", kinds[0])
    return _Plan(estimators, columns, curve_columns, truth, skipped)


def _epochs(plan: _Plan, config: CorrelationConfig) -> tuple[int, ...]:
    """Epochs recorded in every curve column: 1..T when an estimator combines epochs (SoTL-all), else any
    shared set (NB101 records epochs 54 and 108 of its 108-epoch runs; ValAcc ranks at both)."""
    if not plan.curve_columns:
        return config.ranking.epochs or (1,)
    common = set(plan.curve_columns[0].epochs)
    for column in plan.curve_columns[1:]:
        common &= set(column.epochs)
    epochs = tuple(sorted(common))
    listed = "; ".join(f"{c}: {epoch_span(c.epochs)}" for c in plan.curve_columns)
    if not epochs:
        raise HarnessError(f"the curve columns share no epoch ({listed})")
    history = [e.label for e in plan.estimators if e.reads_history]
    if history and epochs != tuple(range(1, epochs[-1] + 1)):
        raise HarnessError(f"{', '.join(history)} combine every epoch 1..t, but the curve columns share only epochs "
                           f"{epoch_span(epochs)} ({listed})")
    return epochs


# ---------------------------------------------------------------------------------------- runner


class _Arrays:
    """Curves [archs, seeds, epochs] of the pool (indexed spaces: read once) and the truth."""

    def __init__(self, bench: Benchmark, plan: _Plan, archs: Any, epochs: tuple[int, ...]):
        self.curves = {c.key: bench.query(archs, c.dataset, c.metric, c.split, c.schedule, epochs=list(epochs)).values
                       for c in plan.curve_columns}
        self.static = {}
        for cols in plan.columns.values():
            for c in cols.values():
                if not c.epochs:
                    self.static[c.key] = bench.query(archs, c.dataset, c.metric, c.split, c.schedule).values[:, 0, 0]
        truth = bench.query(archs, plan.truth.dataset, plan.truth.metric, plan.truth.split, plan.truth.schedule,
                            epochs=plan.truth.epochs[-1] if plan.truth.epochs else None, reduce="mean")
        self.truth = truth.values[:, 0, 0]
        # usable[a, s]: seed s of arch a has a complete curve in every curve column
        shape = next(iter(self.curves.values())).shape[:2] if self.curves else (len(self.truth), 1)
        self.usable = np.ones(shape, dtype=bool)
        for values in self.curves.values():
            self.usable &= ~np.isnan(values).any(axis=2)

    def select(self, rows: np.ndarray, seed_pos: np.ndarray | None) -> dict[tuple[str, str, str, str], np.ndarray]:
        """Curves [n, epochs] of ``rows``: seed ``seed_pos[i]`` per arch, or the mean over usable seeds."""
        out = {}
        for key, values in self.curves.items():
            if seed_pos is None:
                usable = self.usable[rows][:, :, None]
                out[key] = np.where(usable, values[rows], 0.0).sum(axis=1) / usable.sum(axis=1)
            else:
                out[key] = values[rows, seed_pos]  # one gather, no copy of the other seeds
        return out


def _seed_choice(arrays: _Arrays, rows: np.ndarray, policy: str | int, seeds: tuple, rng: np.random.Generator) -> np.ndarray | None:
    """Seed position per arch (None: the mean over usable seeds); ``policy`` is checked by the caller."""
    if policy == "mean" or not arrays.curves:
        return None
    usable = arrays.usable[rows]
    if policy == "random":
        counts = usable.sum(axis=1)
        pick = np.floor(rng.random(len(rows)) * counts).astype(np.int64)  # which usable seed
        return np.argmax(np.cumsum(usable, axis=1) > pick[:, None], axis=1)
    return np.full(len(rows), seeds.index(policy), dtype=np.int64)


def _estimator_values(est: Estimator, cols: dict[str, Column], curves: dict, static: dict, rows: np.ndarray, n_epochs: int) -> np.ndarray:
    """Values [n, epochs] of one estimator (static ones repeated over the epochs)."""
    inputs = []
    for column in cols.values():
        inputs.append(curves[column.key] if column.epochs else static[column.key][rows])
    values = est(*inputs)
    return values if est.level != "static" else np.repeat(values[:, None], n_epochs, axis=1)


def _per_seed_values(est: Estimator, cols: dict[str, Column], arrays: _Arrays, candidates: np.ndarray) -> np.ndarray | None:
    """Values [pool, seeds, epochs] of a curve estimator for every training seed, or None for static inputs.

    Curve estimators act on the last (epoch) axis only, so value[a, s] equals the estimator of arch
    a's curve of seed s: repetitions that differ only in the seed drawn per arch then gather
    ``values[rows, seed_pos]`` instead of recomputing.
    """
    if est.level == "static" or not all(c.epochs for c in cols.values()):
        return None
    return est(*(arrays.curves[c.key][candidates] for c in cols.values()))


def run_correlation(
    config: CorrelationConfig,
    results_dir: str | Path | None = "results",
    root: str | Path | None = None,
    run_id: str | None = None,
    progress: bool = True,
    bench: Benchmark | None = None,
    workers: int | None = None,
) -> RunResult:
    """Run the experiment; write ``results_dir/<run-id>/`` unless ``results_dir`` is None.

    ``workers`` threads (default: one per CPU core, at most 8) compute the estimators and the rank
    metrics (numpy and the compiled rank pass release the GIL); the results do not depend on it.
    """
    workers = max(1, min(8, os.cpu_count() or 1) if workers is None else workers)
    started = time.perf_counter()
    root_text = str(root) if root is not None else config.root
    if bench is None:
        bench = load_benchmark(config.benchmark, root_text or None)
    plan = _plan(config, bench)
    epochs = _epochs(plan, config)
    report = config.ranking.epochs or epochs
    bad = [e for e in report if e not in epochs]
    if bad:
        raise HarnessError(f"ranking.epochs {bad[0]} is not an epoch of the curves; epochs: {epoch_span(epochs)}")
    report_pos = np.asarray([epochs.index(e) for e in report])
    all_epochs = tuple(report) == tuple(epochs)  # rank [epochs, archs] as a view of the values, no copy
    info: dict[str, Any] = {"skipped_estimators": plan.skipped, "truth_column": str(plan.truth), "truth_split": plan.truth.split,
                            "truth_minimize": plan.truth.minimize,
                            "curve_columns": [str(c) for c in plan.curve_columns]}
    s = config.sampling
    n_archs = bench.capabilities().n_archs
    seeds = plan.curve_columns[0].seeds if plan.curve_columns else ()

    out_dir = None if results_dir is None else Path(results_dir) / (run_id or run_id_for(config))
    fingerprint = _data_fingerprint(bench, root_text)
    cache = _Cache(out_dir / "cache" if out_dir else None, fingerprint, config)

    if plan.curve_columns and s.train_seed not in ("random", "mean", *seeds):
        raise HarnessError(f"train_seed {s.train_seed!r} is not a seed of the curve columns; seeds: {list(seeds)}")
    # Spaces whose archs are hashed one by one (NB1Shot1) are sampled per repetition without reading
    # the whole space, when the sample is a number and no whole-space filter is asked for.
    lazy = (n_archs is not None and not bench.resolves_whole_space_cheaply and s.n_archs != "all"
            and not s.dedup_isomorphs and not s.drop_degenerate)
    if n_archs is not None:  # what the data holds: the whole space, or part of it (a partial store, NB1Shot1's cells)
        with_data = bench.archs_with_data(progress=progress)
        info["archs_without_data"] = int(n_archs - len(with_data))
    if lazy:
        info["sampling"] = "per repetition: the first n archs with a truth and a curve in a random order of the archs with data"
    elif n_archs is not None:
        pool = _pool(bench, s, info, with_data)
        arrays = _Arrays(bench, plan, pool, epochs)
        keep = _has_data(arrays, plan, s.train_seed, seeds)
        info["dropped_no_truth_or_curve"] = int((~keep).sum())
        candidates = np.flatnonzero(keep)
        info["pool_size"] = int(len(candidates))
        if s.n_archs != "all" and s.n_archs > len(candidates):
            raise HarnessError(f"cannot sample {s.n_archs} archs: the pool has {len(candidates)} archs with a truth "
                               f"and a curve ({int((~keep).sum())} of {len(keep)} dropped for lacking one, after "
                               "dedup/drops); a converted sample of the official files holds only a few archs")
    elif n_archs is None:
        needs_index = {'n_archs = "all"': s.n_archs == "all", "dedup_isomorphs = true": s.dedup_isomorphs,
                       "drop_degenerate = true": s.drop_degenerate}
        refused = [option for option, asked in needs_index.items() if asked]
        if refused:
            raise HarnessError(f"{bench.name} is not an indexed space, so [sampling] {', '.join(refused)} is not possible; "
                               "sample a number of archs, with dedup_isomorphs and drop_degenerate false")

    bar = tqdm(total=s.repetitions * len(plan.estimators), desc=f"correlate {config.name}", disable=not progress, unit="est")
    cached = {e.label: cache.load(e) for e in plan.estimators}
    pooled = n_archs is not None and not lazy  # one read of the whole pool, repetitions sample rows of it
    keep_values = cache.folder is not None and _values_bytes(s, candidates if pooled else None, epochs) <= CACHE_LIMIT_BYTES
    rep_values: dict[str, list[np.ndarray]] = {e.label: [] for e in plan.estimators}
    with ThreadPoolExecutor(max_workers=workers) as executor:  # numpy and the compiled rank pass release the GIL
        # estimators over every seed once, when the repetitions would otherwise recompute more values
        per_seed: dict[str, np.ndarray | None] = {}
        if pooled and s.train_seed != "mean" and seeds:
            drawn = len(candidates) if s.n_archs == "all" else s.n_archs
            if s.repetitions * drawn > len(candidates) * len(seeds):
                todo = [e for e in plan.estimators if cached[e.label] is None]
                computed = executor.map(lambda e: _per_seed_values(e, plan.columns[e.label], arrays, candidates), todo)
                per_seed = dict(zip((e.label for e in todo), computed))
        frames: dict[tuple[int, str], pd.DataFrame] = {}

        def rank(rep: int, est: Estimator, values: np.ndarray, truth: np.ndarray) -> None:
            reported = values if all_epochs else values[:, report_pos]
            metrics = rank_metrics(reported.T, truth, higher_is_better=est.higher_is_better,
                                   truth_higher_is_better=not plan.truth.minimize,
                                   k=config.ranking.k, metrics=config.ranking.metrics)
            frame = pd.DataFrame({"estimator": est.label, "epoch": np.asarray(report), "repetition": rep,
                                  "n_archs": metrics.pop("n_archs"), "k": config.ranking.k})
            for name in config.ranking.metrics:
                frame[name] = metrics[name]
            frames[(rep, est.label)] = frame

        def finish(futures: list) -> None:
            for future in futures:
                future.result()
                bar.update(1)

        in_flight: list = []
        for rep in range(s.repetitions):
            rng = np.random.default_rng([s.seed, rep])
            if pooled:
                rows = candidates if s.n_archs == "all" else np.sort(rng.choice(candidates, size=s.n_archs, replace=False))
                seed_pos = _seed_choice(arrays, rows, s.train_seed, seeds, rng)
                truth = arrays.truth[rows]
                need = [e for e in plan.estimators if cached[e.label] is None and per_seed.get(e.label) is None]
                curves = arrays.select(rows, seed_pos) if need else {}
                pool_pos = np.searchsorted(candidates, rows)
                static, static_rows = arrays.static, rows
            else:
                archs = _draw(bench, plan, s.n_archs, with_data, epochs, rng, s.train_seed, seeds) if lazy else bench.sample(s.n_archs, rng)
                rep_arrays = _Arrays(bench, plan, archs, epochs)
                rows = np.flatnonzero(_has_data(rep_arrays, plan, s.train_seed, seeds))
                seed_pos = _seed_choice(rep_arrays, rows, s.train_seed, seeds, rng)
                truth = rep_arrays.truth[rows]
                curves = rep_arrays.select(rows, seed_pos)
                static, static_rows = rep_arrays.static, rows
            submitted = []
            for est in plan.estimators:  # values in this thread, rank metrics in the executor
                if cached[est.label] is not None:
                    values = cached[est.label][rep]
                elif per_seed.get(est.label) is not None:
                    values = per_seed[est.label][pool_pos, seed_pos]
                else:
                    values = _estimator_values(est, plan.columns[est.label], curves, static, static_rows, len(epochs))
                if keep_values:
                    rep_values[est.label].append(values)
                submitted.append(executor.submit(rank, rep, est, values, truth))
            finish(in_flight)  # at most two repetitions in flight: bounded memory, no idle workers between them
            in_flight = submitted
        finish(in_flight)
    bar.close()
    tables = [frames[(rep, e.label)] for rep in range(s.repetitions) for e in plan.estimators]
    not_kept = "not cached: no results folder" if cache.folder is None else f"not cached: over {CACHE_LIMIT_BYTES >> 20} MiB"
    info["cache"] = {e.label: ("hit" if cached[e.label] is not None else ("miss" if keep_values else not_kept))
                     for e in plan.estimators}
    for est in plan.estimators:
        if cached[est.label] is None and keep_values:
            cache.save(est, rep_values[est.label])
    results = pd.concat(tables, ignore_index=True)
    info["seconds"] = round(time.perf_counter() - started, 3)
    info["train_seed_policy"] = s.train_seed
    info["estimators"] = {e.label: {"name": e.name, "options": dict(e.options), "higher_is_better": e.higher_is_better}
                          for e in plan.estimators}
    if out_dir is not None:
        _write(out_dir, config, results, info, fingerprint, root_text)
    return RunResult(results, out_dir, info)


def _has_data(arrays: _Arrays, plan: _Plan, train_seed: str | int, seeds: tuple) -> np.ndarray:
    """Per arch: a truth, and a complete curve of the seed(s) that ``train_seed`` may pick."""
    keep = ~np.isnan(arrays.truth)
    if not plan.curve_columns:
        return keep  # static estimators only: no training seed to choose
    if train_seed in ("random", "mean"):
        return keep & arrays.usable.any(axis=1)
    return keep & arrays.usable[:, seeds.index(train_seed)]


def _draw(bench: Benchmark, plan: _Plan, n: int, with_data: int | np.ndarray, epochs: tuple[int, ...],
          rng: np.random.Generator, train_seed: str | int, seeds: tuple) -> np.ndarray:
    """``n`` of the archs ``with_data`` (an array of indices, or an int ``k`` for ``arange(k)``, as
    ``rng.permutation`` takes them), drawn uniformly among those with a truth and a curve, resolving
    only what is drawn: the first ``n`` such archs in a random order of them (a uniform n-subset)."""
    order = rng.permutation(with_data)
    chosen: list[np.ndarray] = []
    found = start = 0
    while found < n and start < len(order):
        chunk = order[start : start + 2 * (n - found) + 16]
        start += len(chunk)
        picked = chunk[_has_data(_Arrays(bench, plan, chunk, epochs), plan, train_seed, seeds)][: n - found]
        chosen.append(picked)
        found += len(picked)
    if found < n:
        raise HarnessError(f"cannot sample {n} archs: only {found} of the {len(order):,} archs with data of {bench.name} "
                           "have a truth and a curve")
    return np.sort(np.concatenate(chosen))


def _values_bytes(s: Any, candidates: np.ndarray | None, epochs: tuple[int, ...]) -> int:
    """Bytes of one estimator's values over all repetitions (float64 [reps, n, epochs])."""
    n = s.n_archs if s.n_archs != "all" else (0 if candidates is None else len(candidates))
    return 8 * s.repetitions * int(n) * len(epochs)


def _pool(bench: Benchmark, s: Any, info: dict[str, Any], pool: np.ndarray) -> np.ndarray:
    """``pool`` (the archs with data) without isomorphs and degenerate archs where the config asks."""
    if s.dedup_isomorphs:
        dedup = getattr(bench, "unique_archs", None)
        if dedup is None:
            raise HarnessError(f"{bench.name} cannot deduplicate isomorphs (its adapter has no unique_archs)")
        pool = np.asarray(dedup(pool))
        info["isomorph_dedup"] = {"kept": int(len(pool))}
    if s.drop_degenerate:
        non_degenerate = getattr(bench, "non_degenerate", None)
        if non_degenerate is None:
            raise HarnessError(f"{bench.name} cannot drop degenerate archs (its adapter has no non_degenerate)")
        before = len(pool)
        pool = np.asarray(non_degenerate(pool))
        info["degenerate_dropped"] = int(before - len(pool))
    return pool


class _Cache:
    """Estimator values per (config, data, estimator): ``cache/<sha>.npz`` holding [reps, n, epochs]."""

    def __init__(self, folder: Path | None, fingerprint: dict[str, Any], config: CorrelationConfig):
        self.folder = folder
        base = dict(fingerprint)
        base.update(config=config.to_dict(), cache_version=CACHE_VERSION)
        base["config"].pop("ranking", None)  # the rank metrics do not change estimator values
        base["config"].pop("name", None)
        base["config"].pop("description", None)
        self.base = base

    def _path(self, est: Estimator) -> Path | None:
        if self.folder is None:
            return None
        key = json.dumps({**self.base, "estimator": est.name, "options": dict(est.options)}, sort_keys=True, default=str)
        return self.folder / f"{est.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"

    def load(self, est: Estimator) -> list[np.ndarray] | None:
        path = self._path(est)
        if path is None or not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as data:
            return [data[f"rep{i}"] for i in range(int(data["n"]))]

    def save(self, est: Estimator, values: list[np.ndarray]) -> None:
        path = self._path(est)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda tmp: np.savez(tmp, n=len(values), **{f"rep{i}": v for i, v in enumerate(values)}),
                     tmp_suffix=".tmp.npz")


def _write(out_dir: Path, config: CorrelationConfig, results: pd.DataFrame, info: dict[str, Any],
           fingerprint: dict[str, Any], root: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    results.to_parquet(out_dir / "results.parquet", index=False)
    results.to_csv(out_dir / "results.csv", index=False)
    resolved = config.to_dict()
    resolved["root"] = root
    resolved["truth"]["split"] = info["truth_split"]
    (out_dir / "config.toml").write_text(to_toml(resolved))
    run = {"config_name": config.name, "data": fingerprint, "code": _code_version(), **info}
    (out_dir / "run.json").write_text(json.dumps(run, indent=1, default=str) + "\n")


def load_results(run_dir: str | Path) -> pd.DataFrame:
    """The tidy results of a finished run (``results.parquet``)."""
    path = Path(run_dir) / "results.parquet"
    if not path.is_file():
        hint = " (it is a weight-sharing run folder: 'harness ws report' writes its table and curves)" \
            if (Path(run_dir) / "archs.csv").is_file() else ""
        raise HarnessError(f"{run_dir} is not a finished correlate run: it has no results.parquet{hint}")
    return pd.read_parquet(path)
