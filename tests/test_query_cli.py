"""``harness query`` output a researcher can use: long csv/json records, readable tables, ``--info``
(everything recorded for an arch), ``--list``, ``--lookup``, ``--top`` and a ``--help`` that names the
valid values.

Every printed value is checked against ``Benchmark.query`` on the same data: the embedded tables, the
real 3-arch NATS-Bench sample converted to a store (archs 0, 11, 284) and a converted NB101 fixture
(3 repeats, halfway and final epochs, a total time without an epoch axis, params without either).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness import load_benchmark
from harness.adapters import nb101
from harness.adapters.nb201 import _StoreBenchmark
from harness.adapters.nb201_convert import convert_nb201
from harness.benchmark import Benchmark
from harness.cli import main
from harness.commands import query as query_command
from harness.registry import available_benchmarks
from harness.spaces import nb201 as nb201_space

sys.path.insert(0, str(Path(__file__).parent))
from correlation_fixtures import write_curve_store  # noqa: E402
from nb101_fixtures import write_fixture  # noqa: E402
from nb201_fixtures import FIXTURE_DIR  # noqa: E402

SAMPLE_ARCHS = (0, 11, 284)  # the archs of the real NATS sample
CURVE_EPOCHS = 6
FIELDS = ["dataset", "schedule", "split", "metric", "arch_index", "arch", "seed", "epoch", "value"]
X_VALID_200 = ["--dataset", "cifar10-valid", "--split", "x-valid", "--schedule", "200"]


def _main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _output(argv: list[str]) -> str:
    code, text, err = _main(argv)
    assert code == 0, err
    return text


def _csv(argv: list[str]) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(_output([*argv, "--format", "csv"]))))
    assert rows, "no records"
    return rows


def _json(argv: list[str]) -> list[dict[str, Any]]:
    return json.loads(_output([*argv, "--format", "json"]))


@pytest.fixture(scope="module")
def nats_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert_nb201(FIXTURE_DIR, tmp_path_factory.mktemp("nats-sample") / "store", progress=False)


@pytest.fixture(scope="module")
def curve_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_curve_store(tmp_path_factory.mktemp("curves") / "store", n_epochs=CURVE_EPOCHS)


@pytest.fixture(scope="module")
def nb101_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("nb101")
    write_fixture(folder / "f.tfrecord", n_cells=20)
    return nb101.convert(folder / "f.tfrecord", folder / "store")


def _csv_value(text: str) -> float:
    return float(text) if text else np.nan


def _label(value: Any) -> str:
    """How a seed or epoch label reads back from the csv (empty where the column has no such axis)."""
    return "" if value is None else str(value)


def _expected_records(bench: Benchmark, archs: list[int], columns: list, **query: Any) -> dict[tuple, float]:
    """(column key, arch, seed, epoch) -> value of every value ``bench.query`` returns, labels as csv text."""
    expected = {}
    for column in columns:
        result = bench.query(archs, column.dataset, column.metric, column.split, column.schedule, **query)
        for a, arch in enumerate(archs):
            for s, seed in enumerate(result.seeds or (None,)):
                for e, epoch in enumerate(result.epochs or (None,)):
                    expected[(column.key, str(arch), _label(seed), _label(epoch))] = result.values[a, s, e]
    return expected


def _read_records(rows: list[dict[str, str]]) -> dict[tuple, float]:
    got = {}
    for row in rows:
        key = ((row["dataset"], row["schedule"], row["split"], row["metric"]), row["arch_index"], row["seed"], row["epoch"])
        assert key not in got, f"record {key} written twice"
        got[key] = _csv_value(row["value"])
    return got


def _assert_same_records(got: dict[tuple, float], expected: dict[tuple, float]) -> None:
    assert got.keys() == expected.keys()
    np.testing.assert_array_equal([got[k] for k in expected], list(expected.values()))  # NaN where missing


# ------------------------------------------------------------------------------------------ curves


def test_csv_holds_one_record_per_arch_seed_epoch_with_the_queried_values(nats_store: Path) -> None:
    bench = load_benchmark("nb201", root=nats_store)
    rows = _csv(["query", "nb201", "--root", str(nats_store), *X_VALID_200, *(f"--arch={a}" for a in SAMPLE_ARCHS)])
    assert list(rows[0]) == FIELDS and len(rows) == 3 * 3 * 200
    column = bench.capabilities().column("cifar10-valid", "accuracy", "x-valid", "200")
    _assert_same_records(_read_records(rows), _expected_records(bench, list(SAMPLE_ARCHS), [column]))
    assert {row["arch"] for row in rows if row["arch_index"] == "11"} == {bench.arch_string(11)}


def test_missing_values_are_empty_in_csv_null_in_json_and_a_dash_in_tables(curve_store: Path) -> None:
    """Arch 3 of the curve fixture has no seed-999 run: its values there are never made up."""
    bench = load_benchmark("nb201", root=curve_store)
    argv = ["query", "nb201", "--root", str(curve_store), *X_VALID_200, "--arch", "3", "--arch", "4"]
    rows = _csv(argv)
    column = bench.capabilities().column("cifar10-valid", "accuracy", "x-valid", "200")
    _assert_same_records(_read_records(rows), _expected_records(bench, [3, 4], [column]))
    assert {(r["arch_index"], r["seed"]) for r in rows if r["value"] == ""} == {("3", "999")}
    records = _json(argv)
    assert {(r["arch_index"], r["seed"]) for r in records if r["value"] is None} == {(3, 999)}
    lines = _output(argv).splitlines()
    assert lines[1] == f"[3] {bench.arch_string(3)}" and lines[5].split() == ["999", *["-"] * CURVE_EPOCHS]


def test_json_mean_is_the_nan_ignoring_seed_mean(curve_store: Path) -> None:
    bench = load_benchmark("nb201", root=curve_store)
    records = _json(["query", "nb201", "--root", str(curve_store), *X_VALID_200, "--arch", "3", "--arch", "4",
                     "--epochs", "5:6", "--mean"])
    assert [list(record) for record in records] == [FIELDS] * 4
    assert [(r["arch_index"], r["seed"], r["epoch"]) for r in records] == [
        (3, "mean", 5), (3, "mean", 6), (4, "mean", 5), (4, "mean", 6)]
    raw = bench.query([3, 4], "cifar10-valid", "accuracy", "x-valid", "200", epochs=[5, 6]).values
    assert [r["value"] for r in records] == np.nanmean(raw, axis=1).ravel().tolist()


def test_an_arch_can_be_named_by_its_string_or_op_tuple(nats_store: Path) -> None:
    bench = load_benchmark("nb201", root=nats_store)
    ops = repr(nb201_space.arch_to_ops(bench.arch_string(284)))
    base = ["query", "nb201", "--root", str(nats_store), *X_VALID_200, "--epochs", "last"]
    by_index = _csv([*base, "--arch", "284"])
    assert _csv([*base, "--arch", bench.arch_string(284)]) == by_index == _csv([*base, "--arch", ops])


def test_table_shows_a_few_epochs_of_a_long_curve(nats_store: Path) -> None:
    bench = load_benchmark("nb201", root=nats_store)
    text = _output(["query", "nb201", "--root", str(nats_store), *X_VALID_200, "--arch", "0", "--arch", "284"])
    lines = text.splitlines()
    assert lines[0] == "cifar10-valid/200/x-valid/accuracy  seeds=777,888,999  epochs=1..200 (200)  [max]"
    assert "--format csv" in lines[1]
    shown = [1, 40, 80, 120, 160, 200]
    values = bench.query([0, 284], "cifar10-valid", "accuracy", "x-valid", "200", epochs=shown).values
    for start, arch, block in ((2, 0, values[0]), (7, 284, values[1])):
        assert lines[start] == f"[{arch}] {bench.arch_string(arch)}"
        assert lines[start + 1].split() == ["seed", "\\", "epoch", *map(str, shown)]
        for line, seed, row in zip(lines[start + 2:start + 5], (777, 888, 999), block):
            assert line.split() == [str(seed), *(f"{v:.6g}" for v in row)]
    assert len(lines) == 12 and max(len(line) for line in lines if "|" not in line) <= 100


def test_table_shows_every_epoch_of_a_short_curve(nats_store: Path) -> None:
    lines = _output(["query", "nb201", "--root", str(nats_store), "--dataset", "cifar10-valid", "--split", "train",
                     "--schedule", "12", "--metric", "loss", "--arch", "0", "--epochs", "2:7"]).splitlines()
    assert not any("--format csv" in line for line in lines)
    assert lines[2].split() == ["seed", "\\", "epoch", "2", "3", "4", "5", "6", "7"]
    assert [line.split()[0] for line in lines[3:]] == ["111", "777"]


# -------------------------------------------------------------------------------------------- info


def test_info_writes_every_column_seed_and_epoch_of_the_arch(nats_store: Path) -> None:
    """NATS hp=200 evaluates cifar10-valid ori-test only at epoch 200 (its time at every epoch), and
    costs have neither seeds nor epochs: each column comes out with exactly the axes it has."""
    bench = load_benchmark("nb201", root=nats_store)
    columns = list(bench.capabilities().columns)
    rows = _csv(["query", "nb201", "--root", str(nats_store), "--info", "--arch", "11"])
    _assert_same_records(_read_records(rows), _expected_records(bench, [11], columns))
    ori_test = {(r["metric"], r["epoch"]) for r in rows
                if (r["dataset"], r["schedule"], r["split"]) == ("cifar10-valid", "200", "ori-test")}
    assert {epoch for metric, epoch in ori_test if metric == "accuracy"} == {"200"}
    assert len({epoch for metric, epoch in ori_test if metric == "time"}) == 200
    costs = [r for r in rows if r["split"] == "cost"]
    assert costs and all(r["seed"] == "" and r["epoch"] == "" and r["value"] for r in costs)


def test_info_agrees_with_the_official_api_at_one_seed_and_epoch(nats_store: Path) -> None:
    nats_bench = pytest.importorskip("nats_bench")
    api = nats_bench.create(str(FIXTURE_DIR), "tss", fast_mode=True, verbose=False)
    official = api.get_more_info(284, "cifar100", iepoch=199, hp="200", is_random=888)
    records = _json(["query", "nb201", "--root", str(nats_store), "--info", "--arch", "284", "--dataset", "cifar100",
                     "--schedule", "200"])
    value = {(r["split"], r["metric"]): r["value"] for r in records if r["seed"] == 888 and r["epoch"] == 200}
    for ours, theirs in [(("train", "loss"), "train-loss"), (("train", "accuracy"), "train-accuracy"),
                         (("x-valid", "loss"), "valid-loss"), (("x-valid", "accuracy"), "valid-accuracy"),
                         (("x-test", "accuracy"), "test-accuracy"), (("ori-test", "accuracy"), "valtest-accuracy")]:
        assert value[ours] == pytest.approx(official[theirs], abs=1e-4), ours


def test_info_on_nb101_keeps_halfway_epochs_and_columns_without_an_epoch_axis(nb101_store: Path) -> None:
    bench = load_benchmark("nb101", root=nb101_store)
    rows = _csv(["query", "nb101", "--root", str(nb101_store), "--info", "--arch", "7", "--schedule", "108"])
    columns = [c for c in bench.capabilities().columns if c.schedule == "108"]
    _assert_same_records(_read_records(rows), _expected_records(bench, [7], columns))
    assert {r["epoch"] for r in rows if r["metric"] == "accuracy"} == {"54", "108"}
    assert {(r["seed"], r["epoch"]) for r in rows if r["metric"] == "total_time"} == {("0", ""), ("1", ""), ("2", "")}
    assert {r["arch"] for r in rows} == set(bench.hash_of(7))


def test_info_narrowed_to_a_dataset_on_the_embedded_table(capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_benchmark("nb201")
    records = _json(["query", "nb201", "--info", "--arch", "6111", "--dataset", "cifar100"])
    columns = [c for c in bench.capabilities().columns if c.dataset == "cifar100"]
    assert [(r["split"], r["seed"], r["epoch"]) for r in records] == [("x-valid", "mean", 12), ("x-test", "mean", 12)]
    assert [r["value"] for r in records] == [bench.query(6111, "cifar100", "accuracy", c.split, "12").values.item()
                                              for c in columns]


def test_info_table_groups_columns_by_dataset_schedule_and_axes(nats_store: Path) -> None:
    bench = load_benchmark("nb201", root=nats_store)
    lines = _output(["query", "nb201", "--root", str(nats_store), "--info", "--arch", "11", "--dataset",
                     "cifar10-valid"]).splitlines()
    n_columns = sum(c.dataset == "cifar10-valid" for c in bench.capabilities().columns)
    assert lines[0] == f"[11] {bench.arch_string(11)}: {n_columns} columns of nb201"
    heading = lines.index("  cifar10-valid/200  seeds=777,888,999  epochs=200 (1)")
    assert lines[heading + 1].split() == ["split/metric", "seed", "\\", "epoch", "200"]
    accuracy = bench.query(11, "cifar10-valid", "accuracy", "ori-test", "200").values[0, :, 0]
    assert [line.split() for line in lines[heading + 5:heading + 8]] == [
        ["ori-test/accuracy", str(seed), f"{value:.6g}"] for seed, value in zip((777, 888, 999), accuracy)]
    costs = lines.index("  cifar10-valid/200  seeds=-  epochs=-")
    params = bench.query(11, "cifar10-valid", "params", "cost", "200").values.item()
    assert lines[costs + 1].split() == ["split/metric", "seed", "value"]
    assert lines[costs + 2].split() == ["cost/params", "-", f"{params:.6g}"]
    assert max(len(line) for line in lines[1:]) <= 100


# ------------------------------------------------------------------------------------- list, lookup


def test_list_names_every_arch_with_data_in_index_order() -> None:
    bench = load_benchmark("nb201")
    lines = _output(["query", "nb201", "--list"]).splitlines()
    assert lines[0].split() == ["index", "arch"] and len(lines) == 1 + 15625
    assert [line.split() for line in (lines[1], lines[-1])] == [["0", bench.arch_string(0)], ["15624", bench.arch_string(15624)]]


def test_list_and_top_take_the_archs_with_data_from_the_benchmark(nats_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store covering a subset lists only the archs it holds (``archs_with_data``, asked to show
    progress, as NB1Shot1 may hash its whole space there), and --top says what pool it ranked."""
    calls: list[bool] = []
    archs_with_data = _StoreBenchmark.archs_with_data

    def spy(self: _StoreBenchmark, progress: bool = False) -> np.ndarray:
        calls.append(progress)
        return archs_with_data(self, progress)

    monkeypatch.setattr(_StoreBenchmark, "archs_with_data", spy)
    bench = load_benchmark("nb201", root=nats_store)
    records = _json(["query", "nb201", "--root", str(nats_store), "--list"])
    assert records == [{"arch_index": a, "arch": bench.arch_string(a)} for a in SAMPLE_ARCHS]
    lines = _output(["query", "nb201", "--root", str(nats_store), "--dataset", "cifar10", "--split", "ori-test",
                     "--schedule", "200", "--top", "2"]).splitlines()
    final = bench.final(list(SAMPLE_ARCHS), "cifar10", "accuracy", "ori-test", "200")
    best = [SAMPLE_ARCHS[i] for i in np.argsort(-final)[:2]]
    assert lines[0] == "top 2 of 3 archs with data (of 15,625) by cifar10/200/ori-test/accuracy (seed mean, epoch 200):"
    assert [line.split()[2] for line in lines[1:]] == [f"[{a}]" for a in best]
    assert calls == [True, True]


def test_lookup_turns_an_nb201_index_string_or_op_tuple_into_the_others() -> None:
    bench = load_benchmark("nb201")
    string = bench.arch_string(6111)
    ops = repr(nb201_space.arch_to_ops(string))
    records = _json(["query", "nb201", "--lookup", "6111", "--lookup", string, "--lookup", ops])
    assert records == [{"arch_index": 6111, "arch": string}] * 3
    assert _output(["query", "nb201", "--lookup", string]).splitlines() == ["index  arch", f" 6111  {string}"]


def test_lookup_turns_an_nb101_row_into_its_hash_and_back(nb101_store: Path) -> None:
    bench = load_benchmark("nb101", root=nb101_store)
    module_hash = bench.hash_of(12)[0]
    records = _json(["query", "nb101", "--root", str(nb101_store), "--lookup", "12", "--lookup", module_hash])
    assert records == [{"arch_index": 12, "arch": module_hash}] * 2


def test_lookup_gives_an_nb1shot1_configuration_of_its_index(nb101_store: Path) -> None:
    bench = load_benchmark("nb1shot1-2", root=nb101_store)
    records = _json(["query", "nb1shot1-2", "--root", str(nb101_store), "--lookup", "29159"])
    assert records == [{"arch_index": 29159, "arch": str(bench.space.config(29159))}]


def test_lookup_gives_the_canonical_form_of_a_darts_genotype() -> None:
    bench = load_benchmark("nb301")
    sampled = bench.arch_label(bench.sample(1, 0)[0])
    shuffled = sampled.replace("normal_concat=(2, 3, 4, 5)", "normal_concat=range(2, 6)")
    assert shuffled != sampled
    assert _json(["query", "nb301", "--lookup", shuffled]) == [{"arch_index": None, "arch": sampled}]


# -------------------------------------------------------------------------------------------- top


def test_top_records_rank_the_seed_mean_at_the_last_epoch(nats_store: Path) -> None:
    bench = load_benchmark("nb201", root=nats_store)
    rows = _csv(["query", "nb201", "--root", str(nats_store), *X_VALID_200, "--top", "5"])
    final = bench.final(list(SAMPLE_ARCHS), "cifar10-valid", "accuracy", "x-valid", "200")
    order = np.argsort(-final, kind="stable")
    assert [row["rank"] for row in rows] == ["1", "2", "3"]
    assert [int(row["arch_index"]) for row in rows] == [SAMPLE_ARCHS[i] for i in order]
    assert [float(row["value"]) for row in rows] == final[order].tolist()
    assert {(row["seed"], row["epoch"]) for row in rows} == {("mean", "200")}


def test_top_of_a_column_without_seeds_or_epochs_claims_neither(nats_store: Path) -> None:
    lines = _output(["query", "nb201", "--root", str(nats_store), "--dataset", "cifar10", "--split", "cost",
                     "--metric", "params", "--schedule", "200", "--top", "1"]).splitlines()
    assert lines[0] == "top 1 of 3 archs with data (of 15,625) by cifar10/200/cost/params:"


# ----------------------------------------------------------------------------------- help, choices


def test_help_lists_each_benchmarks_valid_values(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["query", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    values = lines[next(i for i, line in enumerate(lines) if line.startswith("valid values in the embedded data")):]
    for name in available_benchmarks():
        caps = load_benchmark(name).capabilities()
        heading = next(i for i, line in enumerate(values) if name in line.strip().split(", "))
        assert values[heading + 1:heading + 5] == [
            f"    {flag:<11} {', '.join(valid)}" for flag, valid in (
                ("--dataset", caps.datasets), ("--schedule", caps.schedules), ("--split", caps.splits),
                ("--metric", caps.metrics))]
    assert "{table,csv,json}" in text and "nb1shot1-3" in text


def test_a_query_opens_only_its_own_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    real = query_command.load_benchmark

    def recording(name: str, root: Path | None = None) -> Benchmark:
        opened.append(name)
        return real(name, root)

    monkeypatch.setattr(query_command, "load_benchmark", recording)
    _output(["query", "nas-bench-201", "--dataset", "cifar10", "--split", "ori-test", "--schedule", "200"])
    assert opened == ["nb201"]


def test_an_alias_names_the_same_benchmark() -> None:
    argv = ["--dataset", "cifar10", "--split", "ori-test", "--schedule", "200", "--arch", "9", "--format", "csv"]
    assert _output(["query", "NATS-tss", *argv]) == _output(["query", "nb201", *argv])


@pytest.mark.parametrize(("argv", "named"), [
    (["query", "nb201", "--format", "xml"], "invalid choice: 'xml' (choose from 'table', 'csv', 'json')"),
    (["query", "nb999"], "unknown benchmark 'nb999'; valid: 'nb201', 'nb101'"),
    (["query", "nb201", "--list", "--top", "3"], "not allowed with argument"),
])
def test_argument_errors_name_the_valid_choices(capsys: pytest.CaptureFixture[str], argv: list[str], named: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and named in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "named"), [
    (["query", "nb201", "--info"], "--info needs --arch"),
    (["query", "nb201", "--info", "--arch", "0", "--epochs", "3"], "--info does not take --epochs; it takes --arch, --split, --schedule, --metric, --dataset"),
    (["query", "nb201", "--info", "--arch", "0", "--dataset", "cifar100", "--schedule", "200"],
     "unknown schedule for nb201 cifar100 '200'; valid: '12'"),
    (["query", "nb201", "--list", "--dataset", "cifar10"], "--list does not take --dataset; it takes only --root and --format"),
    (["query", "nb201", "--lookup", "3", "--arch", "4"], "--lookup does not take --arch"),
    (["query", "nb201", "--lookup", "15625"], "arch index 15625 out of range for NB201: valid 0..15624"),
    (["query", "nb201", "--format", "json"], "the capabilities listing (no --dataset) is text"),
    (["query", "nb201", "--mean"], "--mean needs --dataset"),
    (["query", "nb301", "--list"], "nb301 is not an indexed space"),
    (["query", "nb301", "--dataset", "cifar10", "--split", "valid"], "pass --arch: nb301 archs have no index"),
])
def test_bad_requests_are_one_line_errors_naming_what_is_valid(argv: list[str], named: str) -> None:
    code, text, err = _main(argv)
    assert code == 2 and named in err and len(err.strip().splitlines()) == 1 and text == ""
