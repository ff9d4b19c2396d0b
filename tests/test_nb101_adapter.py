"""NB101 adapter: convert a generated official-format tfrecord, then query it end to end."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from harness.adapters import nb101
from harness.adapters import nb101_tfrecord as tfrecord
from harness.errors import HarnessError, NotAvailableError
from harness.registry import load_benchmark
from nb101_fixtures import fixture_truth, payloads, write_fixture

N_CELLS = 40


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("nb101")
    truth = write_fixture(root / "nasbench_full.tfrecord", n_cells=N_CELLS)
    store = nb101.convert(root / "nasbench_full.tfrecord", root / "store")
    return truth, store


def test_store_values_equal_every_record(converted):
    truth, store = converted
    bench = load_benchmark("nb101", root=store)
    assert bench.capabilities().n_archs == N_CELLS
    for budget in nb101.BUDGETS:
        sub = truth[truth.budget == budget]
        for split, name in [("valid", "valid"), ("train", "train"), ("test", "test")]:
            res = bench.query(sub.hash.tolist(), "cifar10", "accuracy", split, str(budget), seeds=sub.repeat.tolist(), epochs=budget)
            got = res.values[np.arange(len(sub)), np.arange(len(sub)), 0]
            np.testing.assert_allclose(got, 100 * sub[f"final_{name}"].to_numpy(), rtol=1e-6)
        res = bench.query(sub.hash.tolist(), "cifar10", "time", "train", str(budget), seeds=sub.repeat.tolist(), epochs=budget // 2)
        np.testing.assert_allclose(res.values[np.arange(len(sub)), np.arange(len(sub)), 0], sub.half_time, rtol=1e-6)


def test_real_values_survive_the_round_trip(converted):
    truth, store = converted
    bench = load_benchmark("nb101", root=store)
    table = nb101.embedded_table().iloc[:N_CELLS]
    for budget in nb101.BUDGETS:
        got = bench.query(table.hash.tolist(), "cifar10", "accuracy", "valid", budget, seeds=0, epochs=budget).values[:, 0, 0]
        np.testing.assert_allclose(got, 100 * table[f"valid_{budget}"], rtol=1e-6)
    params = bench.query(table.hash.tolist(), "cifar10", "params", "cost", "108").values[:, 0, 0]
    assert params.tolist() == (table.params / 1e6).tolist()  # exact: params come from an int64 table


def test_query_by_spec_hash_and_index_agree(converted):
    _, store = converted
    bench = nb101.open_benchmark(store)
    spec = bench.spec(7)
    by_spec = bench.query(spec, "cifar10", "accuracy", "valid", "108")
    by_hash = bench.query(bench.hash_of(7)[0], "cifar10", "accuracy", "valid", "108")
    by_index = bench.query(7, "cifar10", "accuracy", "valid", "108")
    assert by_spec.values.shape == (1, 3, 2)
    np.testing.assert_array_equal(by_spec.values, by_hash.values)
    np.testing.assert_array_equal(by_spec.values, by_index.values)
    assert by_spec.seeds == (0, 1, 2) and by_spec.epochs == (54, 108)


def test_rows_are_sorted_by_hash(converted):
    truth, store = converted
    bench = nb101.open_benchmark(store)
    assert bench.hash_of(np.arange(N_CELLS)) == sorted(set(truth.hash))


def test_bulk_query_is_one_array(converted):
    _, store = converted
    bench = nb101.open_benchmark(store)
    res = bench.query(np.arange(N_CELLS), "cifar10", "accuracy", "test", "36", reduce="mean")
    assert res.values.shape == (N_CELLS, 1, 2) and res.mask.all()


def test_losses_are_not_available(converted):
    _, store = converted
    for bench in (nb101.open_benchmark(store), nb101.open_benchmark(None)):
        assert nb101.NO_LOSSES in bench.capabilities().describe()
        with pytest.raises(NotAvailableError, match=r"records no losses \(training, validation or test\)"):
            bench.query(0, "cifar10", "loss", "train", "108")
        with pytest.raises(NotAvailableError):
            bench.final(0, "cifar10", "loss", "valid", "108")


def test_bad_input_names_valid_choices(converted):
    _, store = converted
    bench = nb101.open_benchmark(store)
    with pytest.raises(HarnessError, match="epoch 100 out of range.*valid epochs"):
        bench.query(0, "cifar10", "accuracy", "valid", "108", epochs=100)
    with pytest.raises(HarnessError, match="schedule.*'200'.*'108'"):
        bench.query(0, "cifar10", "accuracy", "valid", "200")
    with pytest.raises(HarnessError, match="seed"):
        bench.query(0, "cifar10", "accuracy", "valid", "108", seeds=3)
    with pytest.raises(HarnessError, match="out of range"):
        bench.query(N_CELLS, "cifar10", "accuracy", "valid", "108")
    with pytest.raises(HarnessError, match="not in this benchmark"):
        bench.query("f" * 32, "cifar10", "accuracy", "valid", "108")


def test_only108_file_has_one_schedule(tmp_path):
    write_fixture(tmp_path / "only108.tfrecord", n_cells=5, budgets=(108,))
    bench = nb101.open_benchmark(nb101.convert(tmp_path / "only108.tfrecord", tmp_path / "s"))
    assert bench.capabilities().schedules == ("108",)


def test_convert_refuses_existing_destination_and_leaves_no_temp(tmp_path):
    write_fixture(tmp_path / "f.tfrecord", n_cells=2, budgets=(108,))
    nb101.convert(tmp_path / "f.tfrecord", tmp_path / "s")
    with pytest.raises(HarnessError, match="already exists"):
        nb101.convert(tmp_path / "f.tfrecord", tmp_path / "s")
    nb101.convert(tmp_path / "f.tfrecord", tmp_path / "s", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.tfrecord", "s"]


def test_corrupt_source_leaves_no_store(tmp_path):
    write_fixture(tmp_path / "f.tfrecord", n_cells=2, budgets=(108,))
    raw = bytearray((tmp_path / "f.tfrecord").read_bytes())
    raw[40] ^= 1
    (tmp_path / "f.tfrecord").write_bytes(bytes(raw))
    with pytest.raises(HarnessError, match="byte offset 0"):
        nb101.convert(tmp_path / "f.tfrecord", tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_opening_a_tfrecord_directly_says_convert(tmp_path):
    write_fixture(tmp_path / "f.tfrecord", n_cells=1, budgets=(108,))
    with pytest.raises(HarnessError, match="harness data convert nb101"):
        nb101.open_benchmark(tmp_path / "f.tfrecord")


def test_embedded_table_queries():
    bench = load_benchmark("nb101")
    table = nb101.embedded_table()
    res = bench.query(table.hash.tolist(), "cifar10", "accuracy", "valid", "12")
    np.testing.assert_allclose(res.values[:, 0, 0], 100 * table.valid_12)
    assert res.seeds == ("single",)
    np.testing.assert_allclose(bench.final(table.hash.tolist()[:3], "cifar10", "time", "train", "108"), table.time_108[:3])


def test_record_without_a_parameter_count_is_refused_not_imputed_as_zero(tmp_path):
    truth = fixture_truth(n_cells=1, budgets=(108,))
    records = [tfrecord.decode_record(p) for p in payloads(truth)]
    broken = dataclasses.replace(records[1].metrics, trainable_parameters=None)
    records[1] = dataclasses.replace(records[1], metrics=broken)
    tfrecord.write_tfrecord(
        tmp_path / "f.tfrecord", [tfrecord.encode_record(r.module_hash, r.epochs, r.adjacency, r.operations, r.metrics) for r in records]
    )
    with pytest.raises(HarnessError, match="record #1 at byte offset .* has no trainable_parameters"):
        nb101.convert(tmp_path / "f.tfrecord", tmp_path / "s")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("budgets", [None, [100], "108"])
def test_store_manifest_without_valid_budgets_is_named(converted, tmp_path, budgets):
    _, store = converted
    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["extra"]["budgets"] = budgets
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(HarnessError, match=r"extra\.budgets is .*an NB101 store lists its epoch budgets"):
        nb101.open_benchmark(copy)


def test_hash_longer_than_32_characters_is_refused_not_truncated(converted):
    _, store = converted
    bench = nb101.open_benchmark(store)
    longer = bench.hash_of(3)[0] + "0"
    with pytest.raises(HarnessError, match=f"hash '{longer}' is longer than 32 characters"):
        bench.query(np.array([longer]), "cifar10", "accuracy", "valid", "108")


def test_a_list_mixing_row_indices_and_hashes_names_the_mix():
    """Pitfall: resolve([0, hash]) said "cannot read NB101 arch 0 ... give a row index", though 0 is one."""
    bench = load_benchmark("nb101")
    with pytest.raises(HarnessError, match=r"mix row indices \(e.g. 0\) with ModelSpecs or module hashes") as err:
        bench.resolve([0, bench.hash_of(1)[0]])
    assert "cannot read" not in str(err.value)
    assert bench.resolve(bench.hash_of([0, 1])).tolist() == [0, 1]


def test_valacc_correlation_runs_at_the_two_recorded_epochs_and_matches_scipy(converted):
    """NB101 records epochs 54 and 108 of a 108-epoch run; the runner once demanded epochs 1..T and
    refused every curve estimator there. ValAcc (pointwise) ranks at both; SoVL-like sums stay refused."""
    from scipy import stats

    from harness.experiments.config import parse_config
    from harness.experiments.correlation import run_correlation

    _, store = converted
    config = {"name": "nb101-valacc", "benchmark": "nb101", "dataset": "cifar10", "schedule": "108",
              "estimators": ["ValAcc", "Params"], "truth": {"dataset": "cifar10", "metric": "accuracy", "split": "test"},
              "sampling": {"n_archs": "all", "repetitions": 1, "train_seed": 0},
              "ranking": {"metrics": ["spearman", "kendall"]}}
    result = run_correlation(parse_config(config), None, root=store, progress=False)
    assert sorted(set(result.results["epoch"])) == [54, 108]
    bench = load_benchmark("nb101", root=str(store))
    archs = np.arange(bench.capabilities().n_archs)
    valid = bench.query(archs, "cifar10", "accuracy", "valid", "108", seeds=0).values[:, 0, :]
    truth = bench.query(archs, "cifar10", "accuracy", "test", "108", epochs=108, reduce="mean").values[:, 0, 0]
    for position, epoch in enumerate((54, 108)):
        row = result.results.query("estimator == 'ValAcc' and epoch == @epoch").iloc[0]
        assert row["spearman"] == pytest.approx(stats.spearmanr(valid[:, position], truth).statistic, abs=1e-12)
        assert row["kendall"] == pytest.approx(stats.kendalltau(valid[:, position], truth).statistic, abs=1e-12)
    refused = {**config, "estimators": ["SoTL-EMA", "Params"], "skip_unavailable": True}
    result = run_correlation(parse_config(refused), None, root=store, progress=False)
    assert "records no losses" in result.info["skipped_estimators"]["SoTL-EMA"]


def test_static_estimators_ignore_train_seed_and_a_missing_curve_does_not_say_convert_when_converted(converted):
    """A Params-only config with train_seed = 1 was refused ("not a seed of the curve columns;
    seeds: []"); SoVL on a converted store ended with "convert the official files and pass --root"."""
    from harness.experiments.config import parse_config
    from harness.experiments.correlation import run_correlation

    _, store = converted
    config = {"name": "nb101-params", "benchmark": "nb101", "dataset": "cifar10", "schedule": "108",
              "estimators": ["Params"], "truth": {"dataset": "cifar10", "metric": "accuracy", "split": "test"},
              "sampling": {"n_archs": 20, "repetitions": 1, "train_seed": 1}}
    result = run_correlation(parse_config(config), None, root=store, progress=False)
    assert set(result.results["estimator"]) == {"Params"}
    with pytest.raises(NotAvailableError) as err:
        run_correlation(parse_config({**config, "estimators": ["SoVL"]}), None, root=store, progress=False)
    assert "records no losses" in str(err.value) and "--root" not in str(err.value)


def test_a_v1_nb101_store_still_opens_because_v2_changed_only_nb201_stores(converted, tmp_path):
    """Store format v2 changed what NB201 columns declare; NB101 stores are the same in v1 and v2,
    and refusing them would force a needless reconversion of the 423,624-cell file."""
    _, store = converted
    copy = tmp_path / "v1"
    shutil.copytree(store, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "version": 1}))
    old, new = nb101.open_benchmark(copy), nb101.open_benchmark(store)
    np.testing.assert_array_equal(old.query(np.arange(N_CELLS), "cifar10", "accuracy", "valid", "108").values,
                                  new.query(np.arange(N_CELLS), "cifar10", "accuracy", "valid", "108").values)


def test_what_nb101_records_nowhere_gets_no_convert_hint_on_the_embedded_table():
    """The embedded table's "convert the official tfrecord" hint was added to SoTL's refusal, though
    a converted store has no losses either; a hint belongs only to what the full files do record."""
    from harness.experiments.config import parse_config
    from harness.experiments.correlation import run_correlation

    config = {"name": "nb101-sotl", "benchmark": "nb101", "dataset": "cifar10", "schedule": "108", "estimators": ["SoTL"],
              "truth": {"dataset": "cifar10", "metric": "accuracy", "split": "valid"}, "sampling": {"n_archs": 20, "repetitions": 1}}
    with pytest.raises(NotAvailableError) as err:
        run_correlation(parse_config(config), None, progress=False)
    assert "records no losses" in str(err.value) and "convert" not in str(err.value)
    assert err.value.recorded_nowhere
    with pytest.raises(NotAvailableError, match="records validation accuracies .* only at epoch.*convert the official tfrecord"):
        run_correlation(parse_config({**config, "estimators": ["ValAcc"]}), None, progress=False)
