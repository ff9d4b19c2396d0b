"""NB301 backend A: the embedded YAHPO ONNX surrogate behind the query interface."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from harness.adapters import nb301
from harness.errors import HarnessError, NotAvailableError
from harness.registry import load_benchmark
from harness.spaces import darts

from test_nb301_space import DARTS_V2, DARTS_V2_ONNX, FIXTURES

EMBEDDED = Path(str(resources.files("harness.embedded") / "nb301"))


@pytest.fixture(scope="module")
def bench() -> nb301.NB301Benchmark:
    return load_benchmark("nb301")


def test_capabilities_say_no_seeds_no_train_loss_no_index(bench):
    caps = bench.capabilities()
    assert caps.n_archs is None
    assert {c.metric for c in caps.columns} == {"accuracy", "loss", "time"}
    assert all(c.seeds == () and c.epochs == tuple(range(1, 99)) for c in caps.columns)
    assert "records no training losses" in caps.describe()
    assert any("ground truth is the surrogate's final validation accuracy" in n for n in caps.notes)


def test_whole_curves_for_many_archs_in_one_session_call(bench, monkeypatch):
    archs = bench.sample(50, seed=0)
    calls = []
    real_run = bench.surrogate.session.run
    monkeypatch.setattr(bench.surrogate, "_cache", None)
    monkeypatch.setattr(bench.surrogate.session, "run", lambda *a, **k: calls.append(a[1]["x_cat"].shape) or real_run(*a, **k))
    acc = bench.query(archs, "cifar10", "accuracy", "valid")
    loss = bench.query(archs, "cifar10", "loss", "valid")  # same rows: served from the same call
    assert calls == [(50 * 98, 34)]
    assert acc.values.shape == loss.values.shape == (50, 1, 98)
    assert acc.seeds == () and acc.epochs == tuple(range(1, 99)) and acc.complete
    np.testing.assert_array_equal(acc.archs, archs)


def test_values_equal_a_direct_onnxruntime_run_with_yahpos_encoding(bench):
    """Oracle: the real model file run directly on the hand-worked YAHPO codes of DARTS-V2."""
    session = ort.InferenceSession(str(EMBEDDED / "model_v2.onnx"), providers=["CPUExecutionProvider"])
    epochs = np.arange(1, 99, dtype=np.float32)[:, None]
    x_cat = np.repeat(np.asarray([DARTS_V2_ONNX], dtype=np.int32), 98, axis=0)
    direct = session.run(None, {"x_cat": x_cat, "x_cont": epochs})[0]
    acc = bench.query(DARTS_V2, "cifar10", "accuracy", "valid").values[0, 0]
    loss = bench.query(DARTS_V2, "cifar10", "loss", "valid").values[0, 0]
    time = bench.query(DARTS_V2, "cifar10", "time", "train").values[0, 0]
    np.testing.assert_allclose(acc, 100 * direct[:, 0], rtol=1e-6)
    np.testing.assert_allclose(loss, direct[:, 1], rtol=1e-6)
    np.testing.assert_allclose(time, direct[:, 2], rtol=1e-6)


def test_accuracy_is_percent_and_curves_are_plausible(bench):
    archs = bench.sample(100, seed=1)
    acc = bench.query(archs, "cifar10", "accuracy", "valid").values[:, 0]
    loss = bench.query(archs, "cifar10", "loss", "valid").values[:, 0]
    time = bench.query(archs, "cifar10", "time", "train").values[:, 0]
    assert 80 < acc[:, -1].min() and acc[:, -1].max() < 100  # NB301 archs score ~88-95 % on CIFAR-10
    assert (acc[:, -1] > acc[:, 0] + 20).all()
    assert (loss[:, -1] < loss[:, 0]).all() and (loss > 0).all()
    assert (time[:, -1] > time[:, 0]).all()


def test_deterministic_and_independent_of_batch_composition(bench):
    archs = bench.sample(90, seed=2)  # 8,820 rows: crosses the 8,192-row chunk boundary
    full = bench.query(archs, "cifar10", "accuracy", "valid").values
    again = load_benchmark("nb301").query(archs, "cifar10", "accuracy", "valid").values
    np.testing.assert_array_equal(full, again)
    for i in (7, 83, 89):  # 83 straddles the boundary, 89 lies in the second chunk
        alone = bench.query(archs[i], "cifar10", "accuracy", "valid").values
        np.testing.assert_allclose(alone[0], full[i], rtol=1e-5)


def test_epoch_subset_and_final_match_the_curve(bench):
    archs = bench.sample(5, seed=3)
    curve = bench.query(archs, "cifar10", "loss", "valid").values[:, 0]
    part = bench.query(archs, "cifar10", "loss", "valid", epochs=[98, 3]).values[:, 0]
    np.testing.assert_allclose(part, curve[:, [97, 2]], rtol=1e-5)
    np.testing.assert_allclose(bench.final(archs, "cifar10", "accuracy", "valid"),
                               bench.query(archs, "cifar10", "accuracy", "valid").values[:, 0, -1], rtol=1e-5)


def test_every_representation_gives_the_same_prediction(bench):
    genotype = darts.parse_genotype(DARTS_V2)
    reps = [DARTS_V2, genotype, darts.genotype_to_config(genotype), darts.genotype_to_compact(genotype),
            darts.genotype_to_encoding(genotype)]
    values = bench.query(reps, "cifar10", "accuracy", "valid", epochs=98).values[:, 0, 0]
    assert np.ptp(values) == 0


def test_real_naslib_archs_resolve(bench):
    records = json.loads((FIXTURES / "naslib-zc-nasbench301-first20.json").read_text())["nasbench301"]["cifar10"]
    values = bench.final(list(records), "cifar10", "accuracy", "valid")
    assert values.shape == (20,) and np.isfinite(values).all()


def test_sotl_inputs_raise_not_available_naming_the_reason(bench):
    archs = bench.sample(3, seed=0)
    for metric in ("loss", "accuracy"):
        with pytest.raises(NotAvailableError, match="not available: NAS-Bench-301 records no training losses"):
            bench.query(archs, "cifar10", metric, "train")


def test_test_accuracy_raises_not_available(bench):
    with pytest.raises(NotAvailableError, match="no test accuracy"):
        bench.query(bench.sample(1, 0), "cifar10", "accuracy", "ori-test")


def test_bad_queries_raise_harness_error(bench):
    archs = bench.sample(2, seed=0)
    with pytest.raises(HarnessError, match="epoch 99 out of range"):
        bench.query(archs, "cifar10", "accuracy", "valid", epochs=99)
    with pytest.raises(HarnessError, match="epoch 0 out of range"):
        bench.query(archs, "cifar10", "accuracy", "valid", epochs=0)
    with pytest.raises(HarnessError, match="unknown dataset"):
        bench.query(archs, "cifar100", "accuracy", "valid")
    with pytest.raises(HarnessError, match="no architecture index"):
        bench.query(12, "cifar10", "accuracy", "valid")
    with pytest.raises(HarnessError, match="does not depend on the training seed"):
        bench.query(archs, "cifar10", "accuracy", "valid", seeds=777)


def test_sample_is_seeded_and_returns_encodings(bench):
    a = bench.sample(350, seed=0)
    assert a.shape == (350, 32) and a.dtype == np.int8
    np.testing.assert_array_equal(a, bench.sample(350, seed=0))


def test_missing_or_corrupt_model_directory_is_reported(tmp_path):
    with pytest.raises(HarnessError, match="model_v2.onnx not found"):
        load_benchmark("nb301", root=tmp_path)
    shutil.copy(EMBEDDED / "encoding_v2.json", tmp_path)
    (tmp_path / "model_v2.onnx").write_bytes((EMBEDDED / "model_v2.onnx").read_bytes()[:5000])
    with pytest.raises(HarnessError, match="not a loadable ONNX model"):
        load_benchmark("nb301", root=tmp_path)


def test_root_given_as_a_str_opens_like_a_path():
    """Pitfall: open_benchmark("/path") raised TypeError (str / str) instead of opening the folder."""
    arch = darts.genotype_to_encoding(DARTS_V2)
    by_str = nb301.open_benchmark(str(EMBEDDED)).final(arch, "cifar10", "accuracy", "valid", "98")
    assert by_str == nb301.open_benchmark(EMBEDDED).final(arch, "cifar10", "accuracy", "valid", "98")


def test_encoding_json_with_other_codes_is_refused(tmp_path):
    shutil.copy(EMBEDDED / "model_v2.onnx", tmp_path)
    encoding = json.loads((EMBEDDED / "encoding_v2.json").read_text())
    key = "NetworkSelectorDatasetInfo_COLON_darts_COLON_inputs_node_normal_4"
    encoding[key] = {"#na#": 0, "0_1": 2, "0_2": 1, "0_3": 3, "1_2": 4, "1_3": 5, "2_3": 6}
    (tmp_path / "encoding_v2.json").write_text(json.dumps(encoding))
    with pytest.raises(HarnessError, match="inputs_node_normal_4"):
        load_benchmark("nb301", root=tmp_path)


def test_noise_options_need_the_official_ensemble():
    with pytest.raises(HarnessError, match="official ensemble only"):
        load_benchmark("nb301", noise=True, rng=np.random.default_rng(0))


def test_estimator_registry_refuses_sotl_and_finds_sovl_valacc_valloss(bench):
    from harness.metrics.registry import get_estimator, required_columns

    for name in ("SoTL", "SoTL-E"):
        with pytest.raises(NotAvailableError, match="not available: NAS-Bench-301 records no training losses"):
            required_columns(get_estimator(name), bench, "cifar10")
    with pytest.raises(NotAvailableError, match="not available"):
        required_columns(get_estimator("TLMini"), bench, "cifar10")
    for name, metric in (("SoVL", "loss"), ("ValLoss", "loss"), ("ValAcc", "accuracy")):
        (column,) = required_columns(get_estimator(name), bench, "cifar10").values()
        assert (column.split, column.metric, column.epochs[-1]) == ("valid", metric, 98)


class _Members:
    """Stand-in for nasbench301's ensemble: fixed member predictions whatever the config."""

    def __init__(self, members):
        self.model = self
        self.members = members

    def query_members(self, config):
        return list(self.members)


def test_ensemble_noise_is_mean_plus_normal_with_the_members_std(bench):
    """Pitfall: the noise scale taken as the members' variance (or drawn from numpy's global RNG);
    nasbench301's noise model is N(mean, std) over the ensemble members."""
    members = [90.0, 91.0, 93.0, 94.0]  # mean 92, std sqrt(2.5) (population, as np.std), variance 2.5
    ensemble = nb301.OfficialEnsemble(_Members(members), _Members([1.0, 3.0]), {}, True, np.random.default_rng(7), "stand-in")
    archs = bench.sample(3, seed=0)
    got = ensemble.predict("accuracy", archs)
    draws = np.random.default_rng(7).standard_normal(3)
    np.testing.assert_allclose(got, 92.0 + np.sqrt(2.5) * draws, rtol=1e-12)
    time = nb301.OfficialEnsemble(_Members(members), _Members([1.0, 3.0]), {}, True, np.random.default_rng(7), "s").predict("time", archs)
    np.testing.assert_allclose(time, 2.0 + 1.0 * draws, rtol=1e-12)


def test_preserved_global_rng_restores_python_and_numpy_state():
    """Pitfall: Python's ``random`` (or numpy's) global generator left reseeded by the official loader
    (torch's state is covered in test_nb301_ensemble.py)."""
    import random

    random.seed(11), np.random.seed(11)
    expected = (random.random(), np.random.random())
    random.seed(11), np.random.seed(11)
    with nb301.preserved_global_rng():
        random.seed(0), np.random.seed(0)  # what loading the official models does
        random.random(), np.random.random()
    assert (random.random(), np.random.random()) == expected
