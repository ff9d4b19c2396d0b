"""The correlation-vs-epoch runner on NB301 (unindexed space, no seeds) with the shipped config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.errors import NotAvailableError
from harness.experiments.config import parse_config
from harness.experiments.correlation import run_correlation
from harness.tomlfile import read_toml

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "nb301-cifar10.toml"


def small_config(**changes):
    data = read_toml(CONFIG)
    data["sampling"].update(n_archs=30, repetitions=2)
    data.update(changes)
    return parse_config(data, source=str(CONFIG))


def test_shipped_config_runs_on_sampled_archs(tmp_path):
    run = run_correlation(small_config(), results_dir=tmp_path, progress=False)
    frame = run.results
    assert set(frame["estimator"]) == {"ValAcc", "ValLoss", "SoVL", "SoVL-E"}
    assert set(frame["epoch"]) == set(range(1, 99)) and set(frame["repetition"]) == {0, 1}
    assert (frame["n_archs"] == 30).all()
    assert run.info["truth_column"] == "cifar10/98/valid/accuracy"
    # the truth is the surrogate's own epoch-98 validation accuracy, so ValAcc at epoch 98 ranks perfectly
    last = frame[(frame["estimator"] == "ValAcc") & (frame["epoch"] == 98)]
    np.testing.assert_allclose(last["spearman"], 1.0)
    # a re-run reuses the cached estimator values and gives the same table
    again = run_correlation(small_config(), results_dir=tmp_path, progress=False)
    assert set(again.info["cache"].values()) == {"hit"}
    np.testing.assert_array_equal(again.results["spearman"], frame["spearman"])


def test_sotl_on_nb301_raises_not_available(tmp_path):
    with pytest.raises(NotAvailableError, match="NAS-Bench-301 records no training losses"):
        run_correlation(small_config(estimators=["SoTL", "SoVL"]), results_dir=tmp_path, progress=False)


def test_a_truth_without_split_gets_the_adapters_own_reason_not_a_generic_one():
    """Without [truth] split the runner looks for a test split; NB301 has none, and the error used to
    be the generic "records no test accuracies" instead of NB301's own pointer to split='valid'."""
    data = read_toml(CONFIG)
    del data["truth"]["split"]
    with pytest.raises(NotAvailableError, match=r"NAS-Bench-301 has no test accuracy; .*split='valid'"):
        run_correlation(parse_config(data, source=str(CONFIG)), results_dir=None, progress=False)
