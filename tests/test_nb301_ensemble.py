"""NB301 backend B: the official nasbench301 ensemble, exercised through a stand-in package.

The real models (``nb_models``) cannot be had here; ``tests/fixtures/nb301/standin/nasbench301`` has the
same interface (``load_ensemble``, ``SurrogateAPI.predict``, ``model.query_members``,
``api.fixed_hyperparameters``) and, like the real one, reseeds the global RNGs when loading.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.registry import load_benchmark
from harness.spaces import darts

STANDIN = Path(__file__).parent / "fixtures" / "nb301" / "standin"


@pytest.fixture
def nb_models(tmp_path, monkeypatch) -> Path:
    monkeypatch.syspath_prepend(str(STANDIN))
    for name in [m for m in sys.modules if m == "nasbench301" or m.startswith("nasbench301.")]:
        monkeypatch.delitem(sys.modules, name)
    for kind in ("xgb", "lgb_runtime"):
        (tmp_path / f"{kind}_v1.0").mkdir()
        (tmp_path / f"{kind}_v1.0" / "model_config.json").write_text(json.dumps({"model": kind}))
    yield tmp_path
    for name in [m for m in sys.modules if m == "nasbench301" or m.startswith("nasbench301.")]:
        del sys.modules[name]


def expected_members(enc: np.ndarray, kind: str) -> np.ndarray:
    import nasbench301.api as api

    return np.asarray(api.FakeEnsemble(kind, seed=0).query_members({**api.fixed_hyperparameters, **darts.encoding_to_config(enc)}))


def test_ensemble_columns_are_added_without_epochs_or_seeds(nb_models):
    bench = load_benchmark("nb301", nb_models=nb_models)
    cols = {str(c): c for c in bench.capabilities().columns}
    for key in ("cifar10/100/valid/accuracy", "cifar10/100/train/time"):
        assert cols[key].seeds == () and cols[key].epochs == ()
    assert "cifar10/98/valid/accuracy" in cols  # backend A stays available


def test_noise_free_prediction_is_the_ensemble_mean(nb_models):
    bench = load_benchmark("nb301", nb_models=nb_models)
    archs = bench.sample(4, seed=0)
    acc = bench.final(archs, "cifar10", "accuracy", "valid", schedule="100")
    time = bench.final(archs, "cifar10", "time", "train", schedule="100")
    np.testing.assert_allclose(acc, [expected_members(a, "xgb").mean() for a in archs])
    np.testing.assert_allclose(time, [expected_members(a, "lgb_runtime").mean() for a in archs])
    np.testing.assert_array_equal(acc, bench.final(archs, "cifar10", "accuracy", "valid", schedule="100"))


def test_loading_and_predicting_leave_global_rng_state_untouched(nb_models):
    torch = pytest.importorskip("torch")
    np.random.seed(12345)
    random.seed(12345)
    torch.manual_seed(12345)
    want_np, want_py, want_torch = np.random.random(), random.random(), torch.rand(1).item()
    np.random.seed(12345)
    random.seed(12345)
    torch.manual_seed(12345)
    bench = load_benchmark("nb301", nb_models=nb_models)  # the stand-in reseeds numpy and torch to 6
    bench.final(bench.sample(3, 0), "cifar10", "accuracy", "valid", schedule="100")
    assert (np.random.random(), random.random(), torch.rand(1).item()) == (want_np, want_py, want_torch)


def test_noise_is_drawn_from_the_user_generator(nb_models):
    archs = None
    runs = []
    for seed in (0, 0, 1):
        bench = load_benchmark("nb301", nb_models=nb_models, noise=True, rng=np.random.default_rng(seed))
        archs = bench.sample(6, seed=0) if archs is None else archs
        runs.append(bench.final(archs, "cifar10", "accuracy", "valid", schedule="100"))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])
    means = np.array([expected_members(a, "xgb").mean() for a in archs])
    stds = np.array([expected_members(a, "xgb").std() for a in archs])
    assert not np.allclose(runs[0], means)
    assert np.all(np.abs(runs[0] - means) < 6 * stds)


def test_noise_without_generator_or_generator_without_noise_is_refused(nb_models):
    with pytest.raises(HarnessError, match="pass rng=np.random.default_rng"):
        load_benchmark("nb301", nb_models=nb_models, noise=True)
    with pytest.raises(HarnessError, match="only used with noise=True"):
        load_benchmark("nb301", nb_models=nb_models, rng=np.random.default_rng(0))


def test_wrong_models_folder_is_reported(nb_models, tmp_path):
    with pytest.raises(HarnessError, match=r"not a nasbench301 models folder for version 0.9"):
        load_benchmark("nb301", nb_models=nb_models, version="0.9")


def test_missing_package_points_to_install_instructions(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "nasbench301", None)  # import raises ImportError
    with pytest.raises(HarnessError, match=r"paragraph .Official ensemble \(optional\)."):
        load_benchmark("nb301", nb_models=tmp_path)
