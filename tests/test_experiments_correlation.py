"""The correlation-vs-epoch runner on a synthetic NB201 store (real column layout), configs, plots, tables."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from harness import load_benchmark
from harness.benchmark import Benchmark, Capabilities, Column
from harness.cli import main
from harness.errors import HarnessError, NotAvailableError
from harness.experiments.config import load_config, parse_config, to_toml
from harness.experiments.correlation import _Arrays, _plan, _seed_choice, run_correlation

sys.path.insert(0, str(Path(__file__).parent))
from correlation_fixtures import SEEDS, run_config, write_curve_store  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
N_EPOCHS = 12


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_curve_store(tmp_path_factory.mktemp("corr") / "store", n_epochs=N_EPOCHS)


def test_runner_matches_an_independent_per_epoch_scipy_computation(store: Path, tmp_path: Path) -> None:
    cfg = parse_config(run_config(estimators=["SoTL-all", "SoTL", "ValAcc"], sampling={"n_archs": "all", "repetitions": 1, "train_seed": 777},
                                  ranking={"metrics": ["spearman", "kendall"], "epochs": [1, 6, 12]}))
    result = run_correlation(cfg, tmp_path, root=store, progress=False)
    bench = load_benchmark("nb201", root=store)
    archs = np.arange(15625)
    truth = bench.query(archs, "cifar10-valid", "accuracy", "ori-test", "200", epochs=12, reduce="mean").values[:, 0, 0]
    loss = bench.query(archs, "cifar10-valid", "loss", "train", "200", seeds=777).values[:, 0, :]
    acc = bench.query(archs, "cifar10-valid", "accuracy", "x-valid", "200", seeds=777).values[:, 0, :]
    for epoch in (1, 6, 12):
        every_epoch = loss[:, :epoch].sum(axis=1)  # SoTL-all: epochs 1..t
        row = result.results.query("estimator == 'SoTL-all' and epoch == @epoch").iloc[0]
        assert row["spearman"] == pytest.approx(stats.spearmanr(-every_epoch, truth).statistic, abs=1e-9)
        assert row["kendall"] == pytest.approx(stats.kendalltau(-every_epoch, truth).statistic, abs=1e-9)
        row = result.results.query("estimator == 'SoTL' and epoch == @epoch").iloc[0]  # the thesis's: epoch t's loss
        assert row["spearman"] == pytest.approx(stats.spearmanr(-loss[:, epoch - 1], truth).statistic, abs=1e-9)
        row = result.results.query("estimator == 'ValAcc' and epoch == @epoch").iloc[0]
        assert row["spearman"] == pytest.approx(stats.spearmanr(acc[:, epoch - 1], truth).statistic, abs=1e-9)
    assert (result.results["n_archs"] == 15625).all()


def test_output_files_are_tidy_and_a_rerun_reuses_the_cache(store: Path, tmp_path: Path) -> None:
    cfg = parse_config(run_config())
    first = run_correlation(cfg, tmp_path, root=store, progress=False)
    out = tmp_path / "test-run"
    for name in ("results.parquet", "results.csv", "config.toml", "run.json"):
        assert (out / name).is_file()
    frame = pd.read_parquet(out / "results.parquet")
    assert list(frame.columns) == ["estimator", "epoch", "repetition", "n_archs", "k", "spearman", "kendall", "top_k", "precision_at_k"]
    assert len(frame) == 4 * 3 * N_EPOCHS
    assert set(frame["epoch"]) == set(range(1, N_EPOCHS + 1))
    run = json.loads((out / "run.json").read_text())
    assert run["data"]["manifest_sha256"] and run["code"]["harness"]
    assert set(run["cache"].values()) == {"miss"}
    resolved = load_config(out / "config.toml")  # the resolved config parses back
    assert resolved.truth.split == "ori-test" and resolved.root == str(store)
    second = run_correlation(cfg, tmp_path, root=store, progress=False)
    assert set(second.info["cache"].values()) == {"hit"}
    pd.testing.assert_frame_equal(first.results, second.results)


def test_repetitions_draw_different_archs_deterministically(store: Path) -> None:
    cfg = parse_config(run_config(estimators=["SoTL"]))
    a = run_correlation(cfg, None, root=store, progress=False).results
    b = run_correlation(cfg, None, root=store, progress=False).results
    pd.testing.assert_frame_equal(a, b)
    last = a[a["epoch"] == N_EPOCHS]["spearman"].to_numpy()
    assert len(set(np.round(last, 12))) == 3  # three repetitions, three samples


def test_static_estimators_are_flat_over_epochs(store: Path) -> None:
    results = run_correlation(parse_config(run_config()), None, root=store, progress=False).results
    params = results[results["estimator"] == "Params"].groupby("repetition")["spearman"].nunique()
    assert (params == 1).all()


def test_random_train_seed_only_picks_seeds_with_a_complete_curve(store: Path) -> None:
    bench = load_benchmark("nb201", root=store)
    cfg = parse_config(run_config(estimators=["SoTL"]))
    plan = _plan(cfg, bench)
    rows = np.arange(0, 2100)
    arrays = _Arrays(bench, plan, rows, tuple(range(1, N_EPOCHS + 1)))
    picks = _seed_choice(arrays, np.arange(len(rows)), "random", SEEDS, np.random.default_rng(0))
    assert arrays.usable[np.arange(len(rows)), picks].all()
    assert not (picks[rows % 3 == 0] == 2).any()  # seed 999 is missing for archs i % 3 == 0
    assert set(picks.tolist()) == {0, 1, 2}


def test_dedup_and_degenerate_drops_are_recorded(store: Path, tmp_path: Path) -> None:
    cfg = parse_config(run_config(sampling={"n_archs": 40, "repetitions": 1, "dedup_isomorphs": True, "drop_degenerate": True}))
    result = run_correlation(cfg, tmp_path, root=store, progress=False)
    assert result.info["isomorph_dedup"]["kept"] == 6466
    assert result.info["degenerate_dropped"] > 0
    run = json.loads((tmp_path / "test-run" / "run.json").read_text())
    assert run["degenerate_dropped"] == result.info["degenerate_dropped"]


def test_curves_recorded_only_at_the_last_epoch_are_refused_or_skipped(store: Path) -> None:
    bad = run_config(estimators=["SoTL", "ValAcc"], splits={"val": "ori-test"})
    with pytest.raises(NotAvailableError, match="only at epoch"):
        run_correlation(parse_config(bad), None, root=store, progress=False)
    result = run_correlation(parse_config({**bad, "skip_unavailable": True}), None, root=store, progress=False)
    assert set(result.results["estimator"]) == {"SoTL"}
    assert "ValAcc" in result.info["skipped_estimators"]


def test_embedded_data_without_curves_says_to_convert() -> None:
    with pytest.raises(NotAvailableError, match="records no training losses.*--root"):
        run_correlation(parse_config(run_config()), None, progress=False)


class _Unindexed(Benchmark):
    """A stand-in for an unindexed space (NB301): archs are strings, sample() draws new ones."""

    name = "toy-unindexed"

    def __init__(self, epochs: tuple[int, ...] = (1, 2, 3, 4, 5)) -> None:
        self.columns = (Column("toy", "5", "valid", "loss", (), epochs, True), Column("toy", "5", "test", "accuracy", (), (5,), False))

    def capabilities(self) -> Capabilities:
        return Capabilities(self.name, self.columns, None)

    def sample(self, n: int, seed: int | np.random.Generator) -> np.ndarray:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return np.asarray([f"arch-{int(x)}" for x in rng.integers(0, 10**9, n)], dtype=object)

    def resolve(self, archs: object) -> np.ndarray:
        return np.asarray(archs, dtype=object)

    def _read(self, column: Column, rows: np.ndarray, seed_pos: np.ndarray, epoch_pos: np.ndarray) -> np.ndarray:
        quality = np.asarray([int(a.split("-")[1]) % 1000 / 1000 for a in rows])
        if column.metric == "accuracy":
            return (50 + 40 * quality)[:, None, None]
        epochs = np.asarray(column.epochs)[epoch_pos]
        return (2.0 - quality[:, None] + 1.0 / epochs[None, :])[:, None, :]


def test_unindexed_space_is_sampled_opaquely() -> None:
    bench = _Unindexed()
    cfg = parse_config({"name": "toy", "benchmark": "toy", "dataset": "toy", "schedule": "5", "estimators": ["SoVL", "ValLoss"],
                        "sampling": {"n_archs": 30, "repetitions": 2}, "truth": {"split": "test"}})
    result = run_correlation(cfg, None, bench=bench, progress=False)
    np.testing.assert_allclose(result.results["spearman"], 1.0)
    for sampling in ({"n_archs": "all"}, {"n_archs": 30, "dedup_isomorphs": True}):
        with pytest.raises(HarnessError, match="not an indexed space"):
            run_correlation(parse_config({**cfg.to_dict(), "sampling": sampling}), None, bench=bench, progress=False)


class _HashedSpace(Benchmark):
    """An indexed space whose archs are costly to resolve (as NB1Shot1's hashed configurations):
    counts the archs resolved; every third arch has no truth."""

    name = "toy-hashed"
    resolves_whole_space_cheaply = False

    def __init__(self, n_archs: int = 200_000) -> None:
        self.n_archs = n_archs
        self.resolved = 0
        self.columns = (Column("toy", "4", "valid", "loss", (0, 1), (1, 2, 3, 4), True),
                        Column("toy", "4", "test", "accuracy", (0, 1), (4,), False))

    def capabilities(self) -> Capabilities:
        return Capabilities(self.name, self.columns, self.n_archs)

    def resolve(self, archs: object) -> np.ndarray:
        rows = np.atleast_1d(np.asarray(archs, dtype=np.int64))
        self.resolved += len(rows)
        return rows

    def _read(self, column: Column, rows: np.ndarray, seed_pos: np.ndarray, epoch_pos: np.ndarray) -> np.ndarray:
        quality = (rows * 7919 % 1000) / 1000
        if column.metric == "accuracy":
            return np.where(rows % 3 == 0, np.nan, 50 + 40 * quality)[:, None, None] + 0 * seed_pos[None, :, None]
        epochs = np.asarray(column.epochs)[epoch_pos]
        return 2.0 - quality[:, None, None] + 0 * seed_pos[None, :, None] + 1.0 / epochs[None, None, :]


def test_hashed_spaces_are_sampled_per_repetition_without_resolving_the_whole_space() -> None:
    """NB1Shot1 space 3 took 531 s before a 50-arch run began: every one of its 1.3 M configurations
    was hashed to build the pool. Now only what is drawn is resolved, archs without a truth are
    passed over, and the draw is reproducible."""
    bench = _HashedSpace()
    cfg = parse_config({"name": "toy", "benchmark": "toy", "dataset": "toy", "schedule": "4", "estimators": ["SoVL", "ValLoss"],
                        "sampling": {"n_archs": 40, "repetitions": 3, "seed": 5}, "truth": {"split": "test"}})
    result = run_correlation(cfg, None, bench=bench, progress=False)
    assert bench.resolved < 1000
    assert (result.results["n_archs"] == 40).all()
    np.testing.assert_allclose(result.results["spearman"], 1.0)  # the loss falls as the quality rises
    assert "per repetition" in result.info["sampling"]
    again = run_correlation(cfg, None, bench=_HashedSpace(), progress=False)
    pd.testing.assert_frame_equal(result.results, again.results)
    drawn = [np.flatnonzero(np.isin(np.arange(bench.n_archs), _draw_for(bench, cfg, rep))) for rep in range(2)]
    assert not np.array_equal(drawn[0], drawn[1]) and all(len(d) == 40 and (d % 3 != 0).all() for d in drawn)


def _draw_for(bench: Benchmark, cfg: object, rep: int) -> np.ndarray:
    from harness.experiments.correlation import _draw

    plan = _plan(cfg, bench)
    rng = np.random.default_rng([cfg.sampling.seed, rep])
    return _draw(bench, plan, cfg.sampling.n_archs, bench.n_archs, (1, 2, 3, 4), rng, "random", (0, 1))


def test_sums_refuse_curves_recorded_at_some_epochs_while_pointwise_estimators_rank_there() -> None:
    """NB101 records epochs 54 and 108 only: the runner once refused every curve estimator there
    ("do not share epochs 1..T"); a sum over epochs 1..t still cannot be formed from such a column."""
    bench = _Unindexed(epochs=(2, 4))
    cfg = {"name": "toy", "benchmark": "toy", "dataset": "toy", "schedule": "5", "estimators": ["ValLoss", "SoVL-E", "SoVL"],
           "sampling": {"n_archs": 30, "repetitions": 1}, "truth": {"split": "test"}}
    with pytest.raises(NotAvailableError, match=r"SoVL combines every epoch 1\.\.t, but toy-unindexed records .* only at epochs \[2, 4\]"):
        run_correlation(parse_config(cfg), None, bench=bench, progress=False)
    # SoVL-E with its default window E = 1 is the value itself (pointwise); E = 2 sums two epochs
    skipping = {**cfg, "estimators": ["ValLoss", "SoVL-E", "SoVL", "SoVL-E(E=2)"], "skip_unavailable": True}
    result = run_correlation(parse_config(skipping), None, bench=bench, progress=False)
    assert set(result.results["estimator"]) == {"ValLoss", "SoVL-E"} and sorted(set(result.results["epoch"])) == [2, 4]
    assert set(result.info["skipped_estimators"]) == {"SoVL", "SoVL-E(E=2)"}
    np.testing.assert_allclose(result.results["spearman"], 1.0)
    with pytest.raises(HarnessError, match="ranking.epochs 3 is not an epoch of the curves; epochs: 2,4"):
        run_correlation(parse_config({**cfg, "estimators": ["ValLoss"], "ranking": {"epochs": [3]}}), None, bench=bench,
                        progress=False)


@pytest.mark.parametrize(
    "change,fragment",
    [({"estimatorz": []}, "unknown key"), ({"estimators": ["SoTL", "SoTL"]}, "listed twice"),
     ({"sampling": {"n_archs": 1}}, "n_archs"), ({"sampling": {"train_seed": "best"}}, "train_seed"),
     ({"ranking": {"metrics": ["pearson"]}}, "ranking metric"), ({"estimators": ["Nope"]}, "unknown estimator"),
     # once accepted here and refused after the data was read, as "SoTL-E window E"
     ({"estimators": [{"name": "SoVL-E", "E": 0}]}, "estimator SoVL-E: window E must be a positive integer, got 0")],
)
def test_bad_configs_raise_naming_the_fault(change: dict, fragment: str) -> None:
    with pytest.raises(HarnessError, match=fragment):
        parse_config(run_config(**change))


@pytest.mark.parametrize(
    "change,fragment",
    [({"sampling": {"seed": -1}}, "sampling.seed must be an integer >= 0, got -1"),
     ({"sampling": {"seed": "abc"}}, "sampling.seed must be an integer >= 0, got 'abc'"),
     ({"sampling": {"seed": 1.5}}, "sampling.seed must be an integer"),
     ({"sampling": {"repetitions": True}}, "sampling.repetitions must be an integer >= 1"),
     ({"sampling": {"dedup_isomorphs": "no"}}, "sampling.dedup_isomorphs must be true or false, got 'no'"),
     ({"sampling": {"drop_degenerate": 1}}, "sampling.drop_degenerate must be true or false"),
     ({"skip_unavailable": "no"}, "skip_unavailable must be true or false"),
     ({"ranking": {"k": "abc"}}, "ranking.k must be an integer >= 1, got 'abc'"),
     ({"ranking": {"k": 2.7}}, "ranking.k must be an integer >= 1, got 2.7"),
     ({"ranking": {"epochs": ["x"]}}, "ranking.epochs entry must be an integer >= 1, got 'x'"),
     ({"ranking": {"epochs": 5}}, "ranking.epochs must be a list"),
     ({"ranking": {"metrics": []}}, "ranking.metrics is empty; valid: spearman"),
     ({"sampling": {"train_seed": True}}, "sampling.train_seed .* must be an integer >= 0, got True"),
     ({"sampling": {"train_seed": 1.5}}, "sampling.train_seed .* must be an integer >= 0, got 1.5"),
     ({"sampling": {"train_seed": -3}}, "sampling.train_seed .* must be an integer >= 0, got -3")],
)
def test_config_values_of_the_wrong_type_are_refused_not_coerced(change: dict, fragment: str) -> None:
    """Pitfall: ``Sampling(**raw)`` took any type ("no" counted as true), ``int(k)`` truncated 2.7 and
    raised a bare ValueError for "abc"; a negative seed failed only at the first repetition."""
    with pytest.raises(HarnessError, match=fragment):
        parse_config(run_config(**change))


def test_a_loss_truth_is_ranked_lower_is_better(store: Path) -> None:
    """Pitfall: the truth column's direction was ignored, so ValLoss against the final validation loss
    came out near -1 instead of near +1."""
    cfg = parse_config(run_config(estimators=["ValLoss"], truth={"split": "x-valid", "metric": "loss"},
                                  ranking={"metrics": ["spearman"], "epochs": [N_EPOCHS]}))
    result = run_correlation(cfg, None, root=store, progress=False)
    assert (result.results["spearman"] > 0.9).all()


def test_an_unknown_truth_metric_without_a_split_is_refused_not_read_as_loss(store: Path) -> None:
    """Pitfall: without [truth] split every metric but accuracy/acc silently became the test loss."""
    cfg = parse_config(run_config(truth={"metric": "bogus"}))
    with pytest.raises(HarnessError, match="unknown truth metric 'bogus'; valid: 'loss', 'cross_entropy', 'accuracy', 'acc'"):
        run_correlation(cfg, None, root=store, progress=False)


def test_drop_degenerate_on_an_unindexed_space_is_refused_not_ignored() -> None:
    """Pitfall: NB301 accepted drop_degenerate = true and neither applied nor recorded it."""
    cfg = parse_config({"name": "toy", "benchmark": "toy", "dataset": "toy", "schedule": "5", "estimators": ["SoVL"],
                        "sampling": {"n_archs": 30, "repetitions": 1, "drop_degenerate": True}, "truth": {"split": "test"}})
    with pytest.raises(HarnessError, match="not an indexed space.*drop_degenerate = true"):
        run_correlation(cfg, None, bench=_Unindexed(), progress=False)


def test_cli_correlate_summary_std_is_the_ddof0_std_of_table_and_plot(store: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Pitfall: the console summary used pandas' ddof=1 std while ``harness table`` and ``plot`` use ddof=0."""
    config = tmp_path / "c.toml"
    config.write_text(to_toml(run_config(estimators=["SoTL"], ranking={"metrics": ["spearman"]})))
    assert main(["correlate", "--config", str(config), "--root", str(store), "--out", str(tmp_path), "--no-progress"]) == 0
    final = pd.read_parquet(tmp_path / "test-run" / "results.parquet").query("epoch == @N_EPOCHS")["spearman"]
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("SoTL "))
    assert float(line.split()[2]) == round(float(np.std(final)), 3) != round(float(final.std(ddof=1)), 3)


def test_cli_table_bad_epochs_and_digits_exit_2_without_a_traceback(store: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Pitfall: ``--epochs 1,x`` and ``--digits -1`` ended in a ValueError traceback."""
    cfg = parse_config(run_config(estimators=["SoTL"], sampling={"n_archs": 50, "repetitions": 2}))
    run_correlation(cfg, tmp_path, root=store, progress=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["table", str(tmp_path / "test-run"), "--epochs", "1,x"])
    assert exit_info.value.code == 2 and "comma-separated integer epochs" in capsys.readouterr().err
    assert main(["table", str(tmp_path / "test-run"), "--digits", "-1"]) == 2
    assert "digits (decimal places) must be an integer >= 0, got -1" in capsys.readouterr().err


def test_shipped_configs_parse_and_round_trip() -> None:
    for name in ("fig4.4a-cifar10-hp200", "fig4.4b-cifar10-hp12", "fig4.5-cifar100-hp200", "fig4.5-imagenet16-120-hp200"):
        cfg = load_config(REPO / "configs" / f"{name}.toml")
        assert cfg.name == name
        assert parse_config(__import__("tomllib").loads(to_toml(cfg.to_dict()))) == cfg


def test_cli_correlate_plot_table_end_to_end(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = REPO / "configs" / "fig4.4a-cifar10-hp200.toml"
    assert main(["correlate", "--config", str(config), "--root", str(store), "--out", str(tmp_path), "--no-progress"]) == 0
    run = tmp_path / "fig4.4a-cifar10-hp200"
    assert main(["plot", str(run), "--fraction"]) == 0
    assert (run / "spearman-fraction.png").stat().st_size > 1000 and (run / "spearman-fraction.pdf").is_file()
    assert main(["table", str(run), "--epochs", "1,6,12"]) == 0
    markdown = (run / "table-spearman.md").read_text()
    assert "| SoTL |" in markdown and "| SoTL-all |" in markdown and "**" in markdown
    assert "\\textbf{" in (run / "table-spearman.tex").read_text()
    assert main(["correlate", "--config", str(config), "--out", str(tmp_path)]) == 2  # embedded: no curves
    assert "convert the official files" in capsys.readouterr().err


def test_mean_train_seed_policy_uses_the_seed_mean_curve(store: Path) -> None:
    cfg = parse_config(run_config(estimators=["SoTL-all"], sampling={"n_archs": "all", "repetitions": 1, "train_seed": "mean"},
                                  ranking={"metrics": ["spearman"], "epochs": [N_EPOCHS]}))
    result = run_correlation(cfg, None, root=store, progress=False)
    bench = load_benchmark("nb201", root=store)
    archs = np.arange(15625)
    mean_loss = bench.query(archs, "cifar10-valid", "loss", "train", "200", reduce="mean").values[:, 0, :]
    truth = bench.query(archs, "cifar10-valid", "accuracy", "ori-test", "200", epochs=N_EPOCHS, reduce="mean").values[:, 0, 0]
    want = stats.spearmanr(-mean_loss.sum(axis=1), truth).statistic
    assert result.results["spearman"].iloc[0] == pytest.approx(want, abs=1e-9)


def test_fig_4_4b_config_reads_hp12_curves_against_the_hp200_truth(tmp_path: Path) -> None:
    store = write_curve_store(tmp_path / "two", schedules={"12": 12, "200": 20})
    result = run_correlation(load_config(REPO / "configs" / "fig4.4b-cifar10-hp12.toml"), None, root=store, progress=False)
    assert result.info["truth_column"] == "cifar10-valid/200/ori-test/accuracy"
    assert "cifar10-valid/12/train/loss" in result.info["curve_columns"]
    assert set(result.results["epoch"]) == set(range(1, 13))


def test_fig_4_5_configs_leave_out_val_curves_recorded_only_at_the_end(tmp_path: Path) -> None:
    store = write_curve_store(tmp_path / "c100", dataset="cifar100", n_epochs=10)
    result = run_correlation(load_config(REPO / "configs" / "fig4.5-cifar100-hp200.toml"), tmp_path, root=store, progress=False)
    assert set(result.results["estimator"]) == {"SoTL", "SoTL-all", "SoTL-EMA"}
    assert set(result.info["skipped_estimators"]) == {"ValAcc", "ValLoss"}
    assert "only at epoch(s) [10]" in result.info["skipped_estimators"]["ValAcc"]
    assert result.info["truth_column"] == "cifar100/200/x-test/accuracy"
    run = json.loads((tmp_path / "fig4.5-cifar100-hp200" / "run.json").read_text())
    assert set(run["skipped_estimators"]) == {"ValAcc", "ValLoss"}


def test_estimators_computed_once_per_seed_equal_the_per_repetition_computation(store: Path) -> None:
    """With all archs and more repetitions than seeds the runner gathers per-seed values; rep 0 must not change."""
    def run(reps: int) -> pd.DataFrame:
        cfg = parse_config(run_config(estimators=["SoTL", "SoTL-EMA", "ValAcc", "Params"],
                                   sampling={"n_archs": "all", "repetitions": reps, "seed": 3}))
        return run_correlation(cfg, None, root=store, progress=False).results
    many, one = run(len(SEEDS) + 1), run(1)  # per-seed path vs direct computation
    pd.testing.assert_frame_equal(many[many["repetition"] == 0].reset_index(drop=True), one)
