"""Both official layouts, generated: readers and converter end to end, against the generator's dicts.

The expected values come from the generator's raw dicts (``make_arch_file``), not from our reader.
Generated runs use hp=12 only (plus one hp=200 arch where the layout matters) to keep stores small.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness import HarnessError, load_benchmark
from harness.adapters.nb201_convert import convert_nb201
from harness.adapters.nb201_files import NatsSimpleDir, NB201PthFile, open_source
from harness.store import ColumnarStore
from nb201_fixtures import make_arch_file, official_meta_archs, write_pth, write_simple_dir

INDICES = (0, 7, 15624)
HP12 = {"12": {"cifar10-valid": [111, 777], "cifar10": [111], "cifar100": [111], "ImageNet16-120": [111]}}
RAGGED = {7: {"12": {"cifar10-valid": [777], "cifar10": [111], "cifar100": [111], "ImageNet16-120": [111]}}}


def _seeds(index):
    return RAGGED.get(index, HP12)


@pytest.fixture(scope="module")
def meta():
    return official_meta_archs()


@pytest.fixture(scope="module")
def simple_dir(tmp_path_factory, meta):
    seeds = {i: _seeds(i) for i in INDICES}
    return write_simple_dir(tmp_path_factory.mktemp("gen") / "NATS-tss-v1_0-3ffb9-simple", INDICES, meta, seeds)


@pytest.fixture(scope="module")
def simple_store(tmp_path_factory, simple_dir):
    return convert_nb201(simple_dir, tmp_path_factory.mktemp("gen-store") / "store", progress=False)


def _expected(meta, index, dataset, seed, key):
    """The generator's raw value list for one run: key = train_losses etc. or ('eval_losses', split)."""
    run = make_arch_file(index, meta[index], _seeds(index))["12"]["all_results"][(dataset, seed)]
    if isinstance(key, tuple):
        field, split = key
        return np.array([run[field].get(f"{split}@{e}", np.nan) for e in range(12)])
    return np.array([run[key][e] for e in range(12)])


def test_simple_dir_reader_returns_the_files_values(simple_dir, meta):
    source = open_source(simple_dir)
    assert isinstance(source, NatsSimpleDir)
    assert source.indices() == list(INDICES)
    records = list(source)
    assert [r.index for r in records] == list(INDICES)
    record = records[0]
    assert record.arch_str == meta[0]
    run = next(r for r in record.runs if (r.dataset, r.seed) == ("cifar100", 111))
    np.testing.assert_array_equal(run.curves[("train", "loss")], _expected(meta, 0, "cifar100", 111, "train_losses"))
    np.testing.assert_array_equal(run.curves[("x-test", "accuracy")], _expected(meta, 0, "cifar100", 111, ("eval_acc1es", "x-test")))
    raw = make_arch_file(0, meta[0], HP12)["12"]["all_results"][("cifar100", 111)]
    assert record.costs[("12", "cifar100")] == {"params": raw["params"], "flops": raw["flop"], "latency": raw["latency"][0]}


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy-torch1.4-layout", "zip-layout"])
def test_pth_reader_gives_the_same_records_as_the_simple_dir(tmp_path, simple_dir, meta, legacy):
    pth = write_pth(tmp_path / "NAS-Bench-201-v1_1-096897.pth", INDICES, meta, {i: _seeds(i) for i in INDICES}, legacy=legacy)
    source = open_source(pth)
    assert isinstance(source, NB201PthFile)
    for a, b in zip(open_source(simple_dir), source, strict=True):
        assert (a.index, a.arch_str, a.costs) == (b.index, b.arch_str, b.costs)
        for run_a, run_b in zip(a.runs, b.runs, strict=True):
            assert (run_a.schedule, run_a.dataset, run_a.seed) == (run_b.schedule, run_b.dataset, run_b.seed)
            for key in run_a.curves:
                np.testing.assert_array_equal(run_a.curves[key], run_b.curves[key])


def test_pth_reader_does_not_import_torch(tmp_path, meta):
    """The result dicts hold no tensors: our allow-list reader handles the .pth without torch."""
    import subprocess
    import sys

    pth = write_pth(tmp_path / "v1_0.pth", [3], meta, HP12)
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from harness.adapters.nb201_files import open_source\n"
        f"print(len(list(open_source({str(pth)!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_pth_with_tensors_is_read_by_torch_weights_only(tmp_path, meta):
    torch = pytest.importorskip("torch")
    pth = tmp_path / "with-weights.pth"
    data = {"meta_archs": meta, "arch2infos": {5: {"less": make_arch_file(5, meta[5], HP12)["12"]}}, "evaluated_indexes": [5]}
    data["arch2infos"][5]["less"]["all_results"][("cifar10", 111)]["net_state_dict"] = {"w": torch.ones(2)}
    torch.save(data, pth)
    (record,) = list(open_source(pth))
    assert record.index == 5 and len(record.runs) == 5


def test_converted_store_holds_the_generated_values(simple_store, meta):
    bench = load_benchmark("nb201", root=simple_store)
    got = bench.query(list(INDICES), "cifar10-valid", "loss", "train", "12")
    assert got.seeds == (111, 777)
    for a, index in enumerate(INDICES):
        for s, seed in enumerate((111, 777)):
            if seed not in _seeds(index)["12"]["cifar10-valid"]:
                assert not got.mask[a, s].any()  # ragged seed: NaN, never imputed
                continue
            expected = _expected(meta, index, "cifar10-valid", seed, "train_losses")
            np.testing.assert_array_equal(got.values[a, s], expected.astype(np.float32))
    valid = bench.query(INDICES[0], "cifar10-valid", "accuracy", "x-valid", "12", seeds=777)
    expected = _expected(meta, 0, "cifar10-valid", 777, ("eval_acc1es", "x-valid"))
    np.testing.assert_array_equal(valid.values[0, 0], expected.astype(np.float32))


def test_ragged_seed_mean_uses_only_existing_seeds(simple_store, meta):
    bench = load_benchmark("nb201", root=simple_store)
    mean = bench.query(7, "cifar10-valid", "loss", "train", "12", reduce="mean")
    expected = _expected(meta, 7, "cifar10-valid", 777, "train_losses").astype(np.float32)
    np.testing.assert_array_equal(mean.values[0, 0], expected)
    assert (mean.extra["n_seeds"] == 1).all()


def test_store_lists_arch_strings_and_source_in_the_manifest(simple_store, meta):
    store = ColumnarStore(simple_store, verify=True)
    assert store.table("archs")["arch_str"].tolist() == meta
    assert store.table("archs")["index"].tolist() == list(range(len(meta)))
    assert store.extra["source_format"] == "nats-tss-simple"
    assert store.extra["n_evaluated"] == len(INDICES)
    assert set(store.extra["source_sha256"]) == {"meta.pickle.pbz2", "000000.pickle.pbz2", "000007.pickle.pbz2", "015624.pickle.pbz2"}
    assert {c.schedule for c in store.columns} == {"12"}


def test_pth_and_simple_dir_convert_to_identical_arrays(tmp_path, simple_store, meta):
    pth = write_pth(tmp_path / "nb201.pth", INDICES, meta, {i: _seeds(i) for i in INDICES})
    store_b = ColumnarStore(convert_nb201(pth, tmp_path / "store", progress=False))
    store_a = ColumnarStore(simple_store)
    assert store_a.columns == store_b.columns
    for column in store_a.columns:
        np.testing.assert_array_equal(store_a.array(column), store_b.array(column))
    assert store_b.extra["source_format"] == "nb201-pth"


def test_a_seed_first_seen_late_gets_its_sorted_place(tmp_path, meta):
    """Seeds are the sorted union over archs even when a later arch brings a new (smaller) seed."""
    seeds = {
        0: {"12": {"cifar10": [777, 888, 999]}},
        1: {"12": {"cifar10": [111, 888]}},
    }
    src = write_simple_dir(tmp_path / "src", [0, 1], meta, seeds)
    bench = load_benchmark("nb201", root=convert_nb201(src, tmp_path / "store", progress=False))
    got = bench.query([0, 1], "cifar10", "loss", "train", "12")
    assert got.seeds == (111, 777, 888, 999)
    np.testing.assert_array_equal(got.mask[:, :, 0], [[False, True, True, True], [True, False, True, False]])
    expected = _raw_losses(meta, 1, seeds[1], "cifar10", 111)
    np.testing.assert_array_equal(got.values[1, 0], expected.astype(np.float32))


def _raw_losses(meta, index, seeds, dataset, seed):
    run = make_arch_file(index, meta[index], seeds)["12"]["all_results"][(dataset, seed)]
    return np.array([run["train_losses"][e] for e in range(12)])


def test_params_that_disagree_across_seeds_without_seed_888_are_absent_not_averaged():
    """The official API settles disagreeing params/FLOPs (a legacy issue) with seed 888's value and
    fails without one; an average of disagreeing values would be an imputed number."""
    from harness.adapters.nb201_files import RunRecord, compute_costs

    def run(seed: int, params: float) -> RunRecord:
        return RunRecord("200", "cifar10", seed, 1, {}, params, 2 * params, 0.01 * seed)

    assert compute_costs([run(777, 1.5), run(888, 1.5)])["params"] == 1.5
    settled = compute_costs([run(777, 1.0), run(888, 2.0), run(999, 3.0)])
    assert (settled["params"], settled["flops"]) == (2.0, 4.0)
    unsettled = compute_costs([run(777, 1.0), run(999, 3.0)])
    assert np.isnan(unsettled["params"]) and np.isnan(unsettled["flops"])
    assert unsettled["latency"] == pytest.approx((7.77 + 9.99) / 2)


@pytest.fixture(scope="module")
def real_sample_store(tmp_path_factory):
    """The genuine NATS sample: records of archs 0, 11 and 284 only."""
    from nb201_fixtures import FIXTURE_DIR

    return convert_nb201(FIXTURE_DIR, tmp_path_factory.mktemp("real-sample") / "store", progress=False)


def test_a_store_of_a_partial_source_says_which_archs_have_data(real_sample_store):
    """It reported "15625 archs" and answered NaN for arch 1 (no record) with no error."""
    bench = load_benchmark("nb201", root=real_sample_store)
    caps = bench.capabilities()
    assert caps.n_archs == 15625 and caps.n_with_data == 3
    assert caps.describe().splitlines()[0] == "nb201: 3 of 15,625 archs have data"
    assert bench.archs_with_data().tolist() == [0, 11, 284]
    drawn = bench.sample(2, seed=0, with_data=True)
    assert set(drawn.tolist()) <= {0, 11, 284} and bench.query(drawn, "cifar10", "accuracy", "ori-test", "200").mask.all()
    with pytest.raises(HarnessError, match=r"^NB201 arch 1: no record in this store \(1 of the 3 archs asked\); it holds 3 of "
                                           r"the 15,625 archs: archs_with_data\(\) lists them"):
        bench.query([0, 1, 284], "cifar10", "accuracy", "ori-test", "200")
    with pytest.raises(HarnessError, match=r"^NB201 archs 1, 2, 3, 4, 5 \(first 5\): no record in this store \(15,622 of "):
        bench.query(np.arange(15625), "cifar10", "accuracy", "ori-test", "200")


def test_a_ragged_seed_of_an_arch_with_a_record_stays_nan_and_masked_beside_the_error_for_no_record(simple_store):
    bench = load_benchmark("nb201", root=simple_store)
    ragged = bench.query(7, "cifar10-valid", "loss", "train", "12")
    assert ragged.mask[0, 1].all() and not ragged.mask[0, 0].any()  # seed 111 absent, 777 present
    with pytest.raises(HarnessError, match="NB201 arch 8: no record in this store"):
        bench.query([7, 8], "cifar10-valid", "loss", "train", "12")
