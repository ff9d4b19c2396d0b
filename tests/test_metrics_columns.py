"""required_columns: the one path from an estimator's inputs to a benchmark's columns."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness import load_benchmark
from harness.errors import NotAvailableError
from harness.metrics import get_estimator, required_columns
from harness.zerocost import open_zerocost

sys.path.insert(0, str(Path(__file__).parent))
from correlation_fixtures import write_curve_store  # noqa: E402


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_curve_store(tmp_path_factory.mktemp("metrics") / "store", n_epochs=6)


def test_curve_estimators_map_to_the_nb201_splits(store: Path) -> None:
    bench = load_benchmark("nb201", root=store)
    cols = required_columns(get_estimator("SoTL"), bench, "cifar10-valid", "200")
    assert str(cols["train_loss"]) == "cifar10-valid/200/train/loss"
    cols = required_columns(get_estimator("ValAcc"), bench, "cifar10-valid", "200")
    assert str(cols["val_acc"]) == "cifar10-valid/200/x-valid/accuracy"
    cols = required_columns(get_estimator("Params"), bench, "cifar10-valid", "200")
    assert str(cols["params"]) == "cifar10-valid/200/cost/params"


def test_split_override_picks_the_named_split(store: Path) -> None:
    bench = load_benchmark("nb201", root=store)
    cols = required_columns(get_estimator("ValAcc"), bench, "cifar10-valid", "200", splits={"val": "train"})
    assert str(cols["val_acc"]) == "cifar10-valid/200/train/accuracy"
    with pytest.raises(NotAvailableError, match="splits tried: test-half"):
        required_columns(get_estimator("ValAcc"), bench, "cifar10-valid", "200", splits={"val": "test-half"})


def test_sotl_on_the_embedded_nb201_table_raises_instead_of_falling_back() -> None:
    bench = load_benchmark("nb201")
    with pytest.raises(NotAvailableError, match="not available: NAS-Bench-201 records no training losses"):
        required_columns(get_estimator("SoTL"), bench, "cifar10-valid", "200")
    # ValAcc has a final x-valid value there, but no curve: still refused
    with pytest.raises(NotAvailableError, match="only at epoch"):
        required_columns(get_estimator("ValAcc"), bench, "cifar10-valid", "200")


def test_sotl_on_nb101_is_not_available() -> None:
    bench = load_benchmark("nb101")
    with pytest.raises(NotAvailableError, match=r"not available: NAS-Bench-101 records no losses \(training, validation or test\), only accuracies"):
        required_columns(get_estimator("SoTL"), bench, "cifar10", None)


def test_step_level_estimators_need_finetuning_logs(store: Path) -> None:
    bench = load_benchmark("nb201", root=store)
    for name in ("TLMini", "ValAccMini", "SoG", "SoGN"):
        with pytest.raises(NotAvailableError, match="step-level logs"):
            required_columns(get_estimator(name), bench, "cifar10-valid", "200")


def test_zero_cost_proxies_come_from_the_zero_cost_table_only() -> None:
    with pytest.raises(NotAvailableError, match="zero-cost proxy 'synflow'"):
        required_columns(get_estimator("synflow"), load_benchmark("nb201"), "cifar10-valid", "200")
    zc = open_zerocost("nb201")
    cols = required_columns(get_estimator("synflow"), zc, "cifar100")
    assert str(cols["zc:synflow"]) == "cifar100/200/zc/synflow"
    with pytest.raises(NotAvailableError, match="nwot"):
        required_columns(get_estimator("nwot"), open_zerocost("nb101"), "cifar10")


def test_unknown_dataset_and_schedule_name_the_valid_ones(store: Path) -> None:
    bench = load_benchmark("nb201", root=store)
    with pytest.raises(Exception, match="valid: .*cifar10-valid"):
        required_columns(get_estimator("SoTL"), bench, "cifar-10", "200")
    with pytest.raises(Exception, match="schedule"):
        required_columns(get_estimator("SoTL"), bench, "cifar10-valid", "300")
