"""The correlation runner's estimator-value cache: what invalidates it and what may reuse it.

The run folder is named after the config name alone, so a rerun that changes anything the estimator
values depend on (the sampling, an estimator option, the data) writes into the same folder as the
first run. Such a rerun must miss the cache and give exactly what a run without a results folder
(``results_dir=None``: no cache at all) gives; a rerun that changes only what is computed from the
values (the [ranking] table) or the labels (name, description) may reuse them.
"""

from __future__ import annotations

import shutil
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from harness.experiments.config import parse_config
from harness.experiments.correlation import run_correlation

sys.path.insert(0, str(Path(__file__).parent))
from correlation_fixtures import run_config, write_curve_store

N_EPOCHS = 12
ESTIMATORS = ["SoTL", "SoTL-E(E=2)"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_curve_store(tmp_path_factory.mktemp("cache") / "store", n_epochs=N_EPOCHS)


def _config(**overrides: object) -> dict:
    return run_config(**{"name": "cache-run", "estimators": list(ESTIMATORS),
                         "sampling": {"n_archs": 40, "repetitions": 2, "seed": 0},
                         "ranking": {"metrics": ["spearman", "top_k"], "k": 5}, **overrides})


def _run(raw: dict, results_dir: Path | None, root: Path, **kw: object):
    return run_correlation(parse_config(raw), results_dir, root=root, progress=False, **kw)


def _labels(raw: dict) -> list[str]:
    from harness.metrics import get_estimator

    return [get_estimator(e).label for e in raw["estimators"]]


@pytest.mark.parametrize(
    "change",
    [
        {"sampling": {"n_archs": 40, "repetitions": 2, "seed": 1}},
        {"sampling": {"n_archs": 40, "repetitions": 3, "seed": 0}},
        {"sampling": {"n_archs": 30, "repetitions": 2, "seed": 0}},
        {"sampling": {"n_archs": 40, "repetitions": 2, "seed": 0, "train_seed": 777}},
    ],
    ids=["sampling-seed", "repetitions", "n-archs", "train-seed"],
)
def test_a_rerun_with_other_sampling_into_the_same_folder_misses_the_cache(store: Path, tmp_path: Path, change: dict) -> None:
    """Pitfall: a cache key without [sampling] hands a rerun with another seed the first run's values."""
    first = _run(_config(), tmp_path, store)
    assert set(first.info["cache"].values()) == {"miss"}
    changed = _config(**change)
    again = _run(changed, tmp_path, store)
    assert again.out_dir == first.out_dir  # same folder: only the key can tell the runs apart
    assert again.info["cache"] == {label: "miss" for label in ESTIMATORS}
    fresh = _run(changed, None, store)
    pd.testing.assert_frame_equal(again.results, fresh.results)
    assert not again.results.equals(first.results)  # the change matters, so a stale hit would show


def test_a_rerun_with_another_estimator_option_misses_the_cache(store: Path, tmp_path: Path) -> None:
    """Pitfall: SoTL-E(E=3) rerun into the folder of a SoTL-E(E=2) run must not read E=2's sums."""
    _run(_config(estimators=["SoTL-E(E=2)"]), tmp_path, store)
    changed = _config(estimators=["SoTL-E(E=3)"])
    again = _run(changed, tmp_path, store)
    assert again.info["cache"] == {"SoTL-E(E=3)": "miss"}
    pd.testing.assert_frame_equal(again.results, _run(changed, None, store).results)


def test_two_options_of_one_estimator_in_one_run_do_not_share_a_cache_file(store: Path, tmp_path: Path) -> None:
    """Pitfall: with the options left out of the key, E=2 and E=3 write one file and a rerun reads one
    estimator's values for both (the config alone cannot tell them apart: it lists both)."""
    raw = _config(estimators=["SoTL-E(E=2)", "SoTL-E(E=3)"])
    _run(raw, tmp_path, store)
    again = _run(raw, tmp_path, store)
    assert again.info["cache"] == {"SoTL-E(E=2)": "hit", "SoTL-E(E=3)": "hit"}
    fresh = _run(raw, None, store).results
    pd.testing.assert_frame_equal(again.results, fresh)
    # E=2 and E=3 sums differ, so their rows must too (a shared file would make them equal)
    by_label = {label: rows.drop(columns="estimator").reset_index(drop=True) for label, rows in fresh.groupby("estimator")}
    assert not by_label["SoTL-E(E=2)"].equals(by_label["SoTL-E(E=3)"])


def test_a_rerun_on_another_store_at_the_same_path_misses_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The data fingerprint (the store's manifest hash), not the path, keys the cache: a store
    converted again in place with other values must not be read through the old values. Both stores
    get the same creation stamp (it has one-second resolution), so only their content differs."""
    from harness.store import columnar

    monkeypatch.setattr(columnar, "time", types.SimpleNamespace(strftime=lambda fmt, t=None: "2026-01-01T00:00:00Z",
                                                                gmtime=lambda: None))
    root = tmp_path / "store"
    write_curve_store(root, n_epochs=N_EPOCHS, seed=0)
    first = _run(_config(), tmp_path / "results", root)
    shutil.rmtree(root)
    write_curve_store(root, n_epochs=N_EPOCHS, seed=1)
    again = _run(_config(), tmp_path / "results", root)
    assert again.info["cache"] == {label: "miss" for label in ESTIMATORS}
    pd.testing.assert_frame_equal(again.results, _run(_config(), None, root).results)
    assert not again.results.equals(first.results)


def test_a_rerun_on_another_store_path_misses_the_cache(store: Path, tmp_path: Path) -> None:
    other = write_curve_store(tmp_path / "other-store", n_epochs=N_EPOCHS, seed=1)
    _run(_config(), tmp_path / "results", store)
    again = _run(_config(), tmp_path / "results", other)
    assert again.info["cache"] == {label: "miss" for label in ESTIMATORS}
    pd.testing.assert_frame_equal(again.results, _run(_config(), None, other).results)


@pytest.mark.parametrize(
    "change",
    [
        {"ranking": {"metrics": ["kendall", "precision_at_k"], "k": 3}},
        {"ranking": {"metrics": ["spearman"], "epochs": [2, 12]}},
        {"description": "another description"},
        {"name": "renamed-run"},
    ],
    ids=["ranking-metrics-and-k", "ranking-epochs", "description", "name"],
)
def test_a_rerun_that_changes_only_ranking_or_labels_reuses_the_cache(store: Path, tmp_path: Path, change: dict) -> None:
    """The rank metrics are computed from the cached values; the name and description label the run."""
    _run(_config(), tmp_path, store, run_id="shared")  # run_id: a renamed config still writes here
    changed = _config(**change)
    again = _run(changed, tmp_path, store, run_id="shared")
    assert again.info["cache"] == {label: "hit" for label in _labels(changed)}
    pd.testing.assert_frame_equal(again.results, _run(changed, None, store).results)


def test_a_cache_written_under_another_cache_version_is_not_read(store: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Pitfall: NB1Shot1 changed how it draws archs while its config and data stayed the same; a
    rerun into an old results folder read the old draws' cached values and ranked them against the
    new draws' truth (rho 0.04 instead of 1.0). The cache version is part of every key."""
    from harness.experiments import correlation

    monkeypatch.setattr(correlation, "CACHE_VERSION", correlation.CACHE_VERSION - 1)
    _run(_config(), tmp_path, store)
    monkeypatch.undo()
    again = _run(_config(), tmp_path, store)
    assert set(again.info["cache"].values()) == {"miss"}
    assert set(_run(_config(), tmp_path, store).info["cache"].values()) == {"hit"}
