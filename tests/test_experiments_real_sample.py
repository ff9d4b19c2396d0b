"""The thesis Fig. 4.4a config end to end on real data: the genuine 3-arch NATS-Bench sample.

Converts the real files, runs the shipped config (all archs, seed 777, k=1) and checks the reported
Spearman rho against scipy computed directly from the official API's curves.
"""

import numpy as np
import pytest
from scipy import stats

from harness.adapters.nb201_convert import convert_nb201
from harness.experiments.config import parse_config
from harness.experiments.correlation import run_correlation
from harness.tomlfile import read_toml
from nb201_fixtures import FIXTURE_DIR

CONFIG = FIXTURE_DIR.parents[3] / "configs" / "fig4.4a-cifar10-hp200.toml"
ARCHS = [0, 11, 284]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    store = convert_nb201(FIXTURE_DIR, tmp_path_factory.mktemp("real") / "store", progress=False)
    data = read_toml(CONFIG)
    data["sampling"].update(n_archs="all", repetitions=2, train_seed=777)
    data["ranking"]["k"] = 1
    return run_correlation(parse_config(data, source=str(CONFIG)), results_dir=None, root=store, progress=False)


def official_curves():
    nats_bench = pytest.importorskip("nats_bench")
    api = nats_bench.create(str(FIXTURE_DIR), "tss", fast_mode=True, verbose=False)
    losses = np.array([[api.get_more_info(a, "cifar10-valid", e, hp="200", is_random=777)["train-loss"]
                        for e in range(200)] for a in ARCHS])
    truth = np.array([api.get_more_info(a, "cifar10-valid", None, hp="200", is_random=False)["test-accuracy"]
                      for a in ARCHS])
    return losses, truth


def test_real_sample_run_uses_the_three_real_archs(run):
    assert set(run.results["n_archs"]) == {3}
    assert set(run.results["estimator"]) == {"SoTL", "SoTL-all", "SoTL-EMA", "ValAcc", "ValLoss"}


@pytest.mark.parametrize("epoch", [1, 7, 50, 200])
def test_sotl_spearman_equals_scipy_on_the_official_curves(run, epoch):
    losses, truth = official_curves()
    every_epoch = losses[:, :epoch].sum(axis=1)
    expected = stats.spearmanr(-every_epoch, truth).statistic  # lower is better
    got = run.results.query("estimator == 'SoTL-all' and epoch == @epoch")["spearman"].to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)
    thesis = stats.spearmanr(-losses[:, epoch - 1], truth).statistic  # the thesis's SoTL: the last epoch's loss
    got = run.results.query("estimator == 'SoTL' and epoch == @epoch")["spearman"].to_numpy()
    np.testing.assert_allclose(got, thesis, atol=1e-6)
