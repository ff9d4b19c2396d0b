"""Oracle test: the converted real NATS sample answers exactly as the official nats_bench API.

The store keeps float32, so "exactly" means: our value equals the official float64 value rounded to
float32, for every arch (0, 11, 284), hp, dataset, split, seed, epoch and metric in the sample, and
a value is missing in ours exactly where the official API has none (it raises or omits the key).
"""

from __future__ import annotations

import numpy as np
import pytest

from harness import HarnessError, load_benchmark
from harness.adapters.nb201_convert import convert_nb201
from nb201_fixtures import FIXTURE_DIR

nats_bench = pytest.importorskip("nats_bench")

ARCHS = (0, 11, 284)
DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
SPLITS = ("train", "x-valid", "x-test", "ori-test")
OFFICIAL_KEY = {"loss": "loss", "accuracy": "accuracy", "time": "cur_time"}
# get_more_info's key prefixes -> our split, per dataset (nats_bench/api_topology.py get_more_info)
MORE_INFO_SPLITS = {
    "cifar10-valid": {"train": "train", "valid": "x-valid", "test": "ori-test"},
    "cifar10": {"train": "train", "test": "ori-test"},
    "cifar100": {"train": "train", "valid": "x-valid", "test": "x-test", "valtest": "ori-test"},
    "ImageNet16-120": {"train": "train", "valid": "x-valid", "test": "x-test", "valtest": "ori-test"},
}


def f32(value: float) -> float:
    return float(np.float32(value))


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    store = convert_nb201(FIXTURE_DIR, tmp_path_factory.mktemp("oracle") / "store", progress=False)
    return load_benchmark("nb201", root=store)


@pytest.fixture(scope="module")
def official():
    return nats_bench.create(str(FIXTURE_DIR), "tss", fast_mode=True, verbose=False)


def _official_metric(results, dataset, split, iepoch, seed, key):
    """The official value, or None where the API has none (it raises for unevaluated epochs).

    Times come from the official run record itself (``ResultsCount.train_times`` / ``eval_times``):
    ``get_metrics`` raises at epochs whose split has no accuracy, but the record lists a time there,
    and ``get_more_info``'s ``*-all-time`` sums those (see the next test)."""
    if key == "cur_time":
        record = results.all_results[(dataset, seed)]
        return record.train_times.get(iepoch) if split == "train" else record.eval_times.get(f"{split}@{iepoch}")
    try:
        return results.get_metrics(dataset, split, iepoch=iepoch, is_random=seed)[key]
    except (ValueError, KeyError):
        return None


@pytest.mark.parametrize("hp", ["12", "200"])
@pytest.mark.parametrize("dataset", DATASETS)
def test_every_curve_value_equals_the_official_archresults(ours, official, dataset, hp):
    for arch in ARCHS:
        results = official.query_meta_info_by_index(arch, hp)
        seeds = results.get_dataset_seeds(dataset)
        n_epochs = results.get_total_epoch(dataset)
        for split in SPLITS:
            for metric, key in OFFICIAL_KEY.items():
                expected = np.full((len(seeds), n_epochs), np.nan)
                for s, seed in enumerate(seeds):
                    for iepoch in range(n_epochs):
                        value = _official_metric(results, dataset, split, iepoch, seed, key)
                        expected[s, iepoch] = np.nan if value is None else f32(value)
                if np.isnan(expected).all():
                    with pytest.raises(HarnessError, match="split"):
                        ours.query(arch, dataset, metric, split, hp)
                    continue
                got = ours.query(arch, dataset, metric, split, hp, seeds=seeds)
                # the column lists the epochs the official record evaluates, and only those
                evaluated = np.flatnonzero(~np.isnan(expected).all(axis=0))
                assert got.epochs == tuple(int(i) + 1 for i in evaluated)
                expected = expected[:, evaluated]
                np.testing.assert_array_equal(got.values[0], expected, err_msg=f"{arch} {dataset} {hp} {split} {metric}")
                np.testing.assert_array_equal(got.mask[0], ~np.isnan(expected))


@pytest.mark.parametrize("hp", ["12", "200"])
def test_get_more_info_per_epoch_equals_our_query(ours, official, hp):
    """The way users read curves: get_more_info(index, dataset, iepoch, hp, is_random=seed)."""
    for arch in ARCHS:
        for dataset in DATASETS:
            curves = {}
            for prefix, split in MORE_INFO_SPLITS[dataset].items():
                for metric in ("loss", "accuracy", "time"):
                    curves[(prefix, metric)] = ours.query(arch, dataset, metric, split, hp)
            for seed in official.query_meta_info_by_index(arch, hp).get_dataset_seeds(dataset):
                n_epochs = int(hp)
                for iepoch in range(n_epochs):
                    info = official.get_more_info(arch, dataset, iepoch, hp, is_random=seed)
                    for prefix in MORE_INFO_SPLITS[dataset]:
                        result = curves[(prefix, "loss")]
                        s = result.seeds.index(seed)
                        present = f"{prefix}-loss" in info
                        # epoch iepoch + 1 is in the column exactly when the official API has a value there
                        stored = iepoch + 1 in result.epochs
                        assert present == stored, (arch, dataset, hp, seed, iepoch, prefix)
                        if not present:
                            continue
                        e = result.epochs.index(iepoch + 1)
                        assert result.mask[0, s, e]
                        assert result.values[0, s, e] == f32(info[f"{prefix}-loss"])
                        assert curves[(prefix, "accuracy")].values[0, s, e] == f32(info[f"{prefix}-accuracy"])
                        # all-time is the running sum of the per-epoch times the record lists, also at
                        # epochs where this split has no accuracy (the pitfall: dropping those)
                        times = curves[(prefix, "time")].values[0, s, : iepoch + 1]
                        assert np.sum(times) == pytest.approx(info[f"{prefix}-all-time"], rel=1e-6)


@pytest.mark.parametrize("hp", ["12", "200"])
def test_costs_equal_get_cost_info(ours, official, hp):
    for arch in ARCHS:
        for dataset in DATASETS:
            info = official.get_cost_info(arch, dataset, hp)
            for metric in ("params", "flops", "latency"):
                got = ours.query(arch, dataset, metric, "cost", hp)
                assert got.values.shape == (1, 1, 1)
                assert got.values[0, 0, 0] == f32(info[metric]), (arch, dataset, hp, metric)


@pytest.mark.parametrize("hp", ["12", "200"])
def test_seed_mean_equals_official_average(ours, official, hp):
    for arch in ARCHS:
        results = official.query_meta_info_by_index(arch, hp)
        for dataset in DATASETS:
            got = ours.query(arch, dataset, "loss", "train", hp, reduce="mean")
            for iepoch in (0, int(hp) - 1):
                expected = results.get_metrics(dataset, "train", iepoch=iepoch, is_random=False)["loss"]
                assert got.values[0, 0, iepoch] == pytest.approx(expected, rel=1e-6)


def test_column_seeds_are_the_official_seeds(ours, official):
    for hp in ("12", "200"):
        results = official.query_meta_info_by_index(0, hp)
        for dataset in DATASETS:
            column = ours.capabilities().column(dataset, "loss", "train", hp)
            assert column.seeds == tuple(results.get_dataset_seeds(dataset))


# ---- regression tests for the pitfalls of issue 2, on the real sample ----


def test_cifar10_has_no_x_valid_and_the_error_names_the_valid_splits(ours):
    with pytest.raises(HarnessError, match="x-valid") as err:
        ours.query(0, "cifar10", "accuracy", "x-valid", "200")
    assert "ori-test" in str(err.value) and "train" in str(err.value)


@pytest.mark.parametrize("dataset, split", [("cifar100", "x-valid"), ("cifar100", "x-test"), ("ImageNet16-120", "x-valid"),
                                            ("ImageNet16-120", "x-test"), ("cifar10-valid", "ori-test")])
def test_hp200_splits_evaluated_once_declare_epoch_200_alone_not_a_nan_curve(ours, dataset, split):
    """These splits are evaluated only after training; their columns once declared epochs 1..200 and
    returned NaN for 199 of them. Now the column holds epoch 200 alone and an earlier epoch raises."""
    for metric in ("loss", "accuracy"):
        column = ours.capabilities().column(dataset, metric, split, "200")
        assert column.epochs == (200,)
        result = ours.query(ARCHS, dataset, metric, split, "200")
        assert result.epochs == (200,) and result.values.shape[2] == 1 and result.mask.all()
        with pytest.raises(HarnessError, match=r"epoch 199 out of range .* valid epochs: 200$"):
            ours.query(ARCHS, dataset, metric, split, "200", epochs=199)
    # their evaluation time is listed at every epoch, so the time column keeps the whole curve
    assert ours.capabilities().column(dataset, "time", split, "200").epochs == tuple(range(1, 201))


def test_eval_times_of_epochs_without_accuracy_are_kept_so_their_sum_is_the_official_all_time(ours, official):
    """eval_times lists all 200 epochs of x-test although only epoch 200 has an accuracy; summing
    the kept times gives get_more_info's test-all-time (0.5 s instead of ~100 s if they were dropped)."""
    accuracy = ours.query(0, "ImageNet16-120", "accuracy", "x-test", "200")
    time = ours.query(0, "ImageNet16-120", "time", "x-test", "200")
    assert accuracy.epochs == (200,) and accuracy.mask.all()
    assert time.epochs == tuple(range(1, 201)) and time.mask[0].all()
    for s, seed in enumerate(time.seeds):
        info = official.get_more_info(0, "ImageNet16-120", 199, "200", is_random=seed)
        assert time.values[0, s].sum() == pytest.approx(info["test-all-time"], rel=1e-6)
        assert info["test-all-time"] > 50 * time.values[0, s, -1]


def test_hp12_is_a_separate_run_not_a_prefix_of_hp200(ours):
    short = ours.query(ARCHS, "cifar10-valid", "loss", "train", "12", seeds=777, epochs=12)
    long = ours.query(ARCHS, "cifar10-valid", "loss", "train", "200", seeds=777, epochs=12)
    assert not np.allclose(short.values, long.values)
    with pytest.raises(HarnessError, match="epoch 13 out of range"):
        ours.query(0, "cifar10-valid", "loss", "train", "12", epochs=13)


def test_seed_111_exists_only_for_hp12(ours):
    with pytest.raises(HarnessError, match="seed"):
        ours.query(0, "cifar10-valid", "loss", "train", "200", seeds=111)


def test_archs_without_files_are_refused_not_nan(ours):
    """Pitfall: a 3-arch store answered NaN (exit 0) for an arch it has no record of."""
    with pytest.raises(HarnessError, match=r"NB201 arch 1: no record in this store \(1 of the 3 archs asked\); it holds 3 of the 15,625 archs"):
        ours.query([0, 1, 284], "cifar10", "accuracy", "ori-test", "200")
    assert ours.query([0, 284], "cifar10", "accuracy", "ori-test", "200").mask.all()
