"""The ``harness`` command line, pinned where a mutation audit found that no test noticed a change:
what ``compare``, ``correlate``, ``data``, ``plot``, ``query`` and ``table`` print, write and refuse.

Expected values are computed independently (scipy, numpy over the raw query, the embedded zero-cost
table), or read from the results the repository commits and the README cites.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from harness import load_benchmark, plots
from harness.cli import main
from harness.experiments.config import to_toml
from harness.zerocost import embedded_table

sys.path.insert(0, str(Path(__file__).parent))
from correlation_fixtures import write_curve_store  # noqa: E402
from nb101_fixtures import write_fixture  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
N_EPOCHS = 6
ZC_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
NOT_ESTIMATORS = {"dataset", "arch", "index", "arch_str", "naslib_idx", "val_accuracy"}


def _main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_curve_store(tmp_path_factory.mktemp("audit-cli") / "store", n_epochs=N_EPOCHS)


# ------------------------------------------------------------------------------------------- harness


def test_harness_without_a_command_is_a_usage_error_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "required: COMMAND" in capsys.readouterr().err


def test_an_output_path_that_cannot_be_created_is_one_line_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = Path(__file__).resolve().parents[1] / "configs" / "ws-toy-cpu.toml"
    assert main(["ws", "prepare", "--config", str(config), "--out", str(blocker / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and str(blocker) in err and len(err.strip().splitlines()) == 1


def test_output_cut_short_by_a_closed_pipe_ends_quietly() -> None:
    """Pitfall pinned: ``harness query ... | head`` ended in a BrokenPipeError traceback."""
    import subprocess

    command = [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main(sys.argv[1:]))",
               "query", "nb201", "--dataset", "cifar10", "--split", "ori-test", "--schedule", "200", "--top", "15625"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline().startswith(b"top 15,625 of 15,625 archs")
    process.stdout.close()  # as head does after its first line
    err = process.stderr.read().decode() if process.stderr else ""
    assert process.wait(timeout=60) == 1
    assert "Traceback" not in err and "BrokenPipe" not in err, err


# ------------------------------------------------------------------------------------------- compare


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("audit-compare")
    code, text, _ = _main(["compare", "--out", str(out), "--bootstrap", "20", "--no-plot"])
    assert code == 0
    return out / "compare-nb201", text


def _complete(dataset: str) -> pd.DataFrame:
    """The embedded NB201 zero-cost rows of ``dataset`` that hold every value (what compare ranks)."""
    frame = embedded_table("nb201")
    part = frame[frame["dataset"] == dataset]
    return part.dropna(subset=[c for c in part.columns if c not in NOT_ESTIMATORS] + ["val_accuracy"])


def test_compare_csv_and_parquet_hold_the_same_rows_one_per_dataset_and_estimator(compared) -> None:
    out, _ = compared
    parquet, csv = pd.read_parquet(out / "compare.parquet"), pd.read_csv(out / "compare.csv")
    assert list(csv.columns) == list(parquet.columns)  # no pandas index column in the CSV
    pd.testing.assert_frame_equal(csv, parquet, check_dtype=False)
    n_estimators = len(set(embedded_table("nb201").columns) - NOT_ESTIMATORS)  # 10 proxies, params, flops
    assert len(parquet) == len(ZC_DATASETS) * n_estimators
    assert list(dict.fromkeys(parquet["dataset"])) == list(ZC_DATASETS)


def test_compare_markdown_heads_each_dataset_with_its_archs_drops_and_best_top_k(compared) -> None:
    out, printed = compared
    markdown = (out / "compare.md").read_text()
    assert markdown == printed[: len(markdown) - 1] + "\n"  # what is printed is what is written
    heads = re.findall(r"^### (.*)$", markdown, flags=re.M)
    assert [h.split(":")[0] for h in heads] == [f"nb201 {d}" for d in ZC_DATASETS]  # the table's order
    for head, dataset in zip(heads, ZC_DATASETS):
        complete = _complete(dataset)
        dropped = int((embedded_table("nb201")["dataset"] == dataset).sum()) - len(complete)
        best = np.sort(complete["val_accuracy"].to_numpy())[-10:].mean()
        note = f" ({dropped} dropped: missing a value)" if dropped else ""
        assert head == (f"nb201 {dataset}: {len(complete)} archs vs final validation accuracy{note}; "
                        f"best possible top-10 acc {best:.2f}")
    assert "(1 dropped: missing a value)" in heads[0]  # cifar10 lacks synflow for one arch (README)


def test_compare_markdown_cells_are_scipy_rank_correlations_under_their_headers(compared) -> None:
    out, _ = compared
    block = (out / "compare.md").read_text().split("### nb201 cifar100")[1].split("###")[0]
    lines = [line for line in block.splitlines() if line.startswith("|")]
    assert lines[0] == "| estimator | Spearman | NBSZ | ours - NBSZ | Kendall | top-10 acc | precision@10 |"
    row = next(line for line in lines if line.startswith("| synflow |"))
    cells = [cell.strip().strip("*") for cell in row.strip("|").split("|")]
    part = _complete("cifar100")
    assert cells[1] == f"{stats.spearmanr(part['synflow'], part['val_accuracy']).statistic:.3f}"
    assert cells[4] == f"{stats.kendalltau(part['synflow'], part['val_accuracy']).statistic:.3f}"
    top10 = part.sort_values("synflow", kind="stable")["val_accuracy"].to_numpy()[-10:]
    assert cells[5] == f"{top10.mean():.3f}"


def test_compare_writes_markdown_to_md_and_one_latex_table_per_dataset_to_tex(compared) -> None:
    out, _ = compared
    markdown, latex = (out / "compare.md").read_text(), (out / "compare.tex").read_text()
    assert "\\begin{tabular}" not in markdown and markdown.count("| estimator |") == len(ZC_DATASETS)
    assert latex.count("\\begin{tabular}") == len(ZC_DATASETS) and "###" not in latex and "| estimator" not in latex


def test_compare_defaults_reproduce_the_committed_cifar100_results(tmp_path: Path) -> None:
    """k = 10, 1000 bootstrap draws and seed 0 are the defaults the README's results were made with;
    each dataset is bootstrapped with a fresh generator, so one dataset alone gives the same CIs."""
    code, _, _ = _main(["compare", "--dataset", "cifar100", "--out", str(tmp_path), "--no-plot"])
    assert code == 0
    ours = pd.read_csv(tmp_path / "compare-nb201" / "compare.csv")
    committed = pd.read_csv(REPO / "results" / "compare-nb201" / "compare.csv").query("dataset == 'cifar100'")
    pd.testing.assert_frame_equal(ours, committed.reset_index(drop=True), rtol=1e-9)
    assert (ours["k"] == 10).all()


# ----------------------------------------------------------------------------------------- correlate


def _correlate_config(path: Path, **overrides: object) -> Path:
    config = {"name": "audit-run", "benchmark": "nb201", "dataset": "cifar10-valid", "schedule": "200",
              "estimators": ["SoTL", "ValAcc"], "sampling": {"n_archs": 40, "repetitions": 2, "seed": 0},
              "ranking": {"metrics": ["spearman"], "k": 5}}
    config.update(overrides)
    path.write_text(to_toml(config))
    return path


def test_correlate_reports_dropped_archs_and_skipped_estimators_and_honours_run_id(store: Path, tmp_path: Path) -> None:
    """train_seed 999: the fixture has no seed-999 curve for every third arch, so those are dropped;
    ValAcc read from ori-test (recorded only at the last epoch) is skipped, and the console says both."""
    config = _correlate_config(tmp_path / "c.toml", skip_unavailable=True, splits={"val": "ori-test"},
                               sampling={"n_archs": 40, "repetitions": 2, "seed": 0, "train_seed": 999})
    code, text, _ = _main(["correlate", "--config", str(config), "--root", str(store), "--out", str(tmp_path),
                           "--run-id", "my-id", "--no-progress"])
    assert code == 0
    bench = load_benchmark("nb201", root=store)
    archs = np.arange(15625)
    curve = bench.query(archs, "cifar10-valid", "loss", "train", "200", seeds=999).values[:, 0, :]
    truth = bench.query(archs, "cifar10-valid", "accuracy", "ori-test", "200", reduce="mean").values[:, 0, -1]
    lacking = int((np.isnan(curve).any(axis=1) | np.isnan(truth)).sum())
    assert lacking == len(range(0, 15625, 3))
    assert f"  pool: {15625 - lacking} archs with a truth and a curve; {lacking} dropped for lacking one" in text
    assert re.search(r"^  skipped ValAcc: .*only at epoch", text, flags=re.M)
    assert (tmp_path / "my-id" / "results.parquet").is_file() and not (tmp_path / "audit-run").exists()
    assert f"-> {tmp_path / 'my-id'}" in text


# ---------------------------------------------------------------------------------------------- data


def test_data_convert_and_verify_from_the_command_line(tmp_path: Path) -> None:
    src, dest = tmp_path / "f.tfrecord", tmp_path / "store"
    write_fixture(src, n_cells=3, budgets=(108,))
    code, _, err = _main(["data", "convert", "nb101", str(tmp_path / "missing.tfrecord"), str(dest)])
    assert code == 2 and f"source {tmp_path / 'missing.tfrecord'} does not exist" in err and not dest.exists()
    code, text, _ = _main(["data", "convert", "nb101", str(src), str(dest)])
    assert code == 0 and text.startswith(f"wrote {dest}")
    caps = load_benchmark("nb101", root=dest).capabilities()
    assert caps.benchmark == "nb101" and caps.n_archs == 3 and caps.schedules == ("108",)
    code, _, err = _main(["data", "convert", "nb101", str(src), str(dest)])
    assert code == 2 and "already exists" in err  # no silent replacement without --overwrite
    assert _main(["data", "convert", "nb101", str(src), str(dest), "--overwrite"])[0] == 0
    code, text, _ = _main(["data", "verify", str(dest)])
    assert code == 0 and "checksums OK" in text
    victim = sorted((dest / "arrays").iterdir())[0]
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    code, text, err = _main(["data", "verify", str(dest)])
    assert code == 2 and "checksum" in err and "OK" not in text


# ------------------------------------------------------------------------------------- plot and table


def _hand_run(run: Path, description: str = "") -> pd.DataFrame:
    """A finished correlate run folder: results.parquet (two estimators, 3 repetitions, epochs 1..4)
    and the config.toml the runner writes beside it."""
    rng = np.random.default_rng(7)
    rows = [{"estimator": est, "epoch": epoch, "repetition": rep, "n_archs": 50, "k": 5,
             "spearman": float(rng.uniform(0.1, 0.9)), "kendall": float(rng.uniform(0.0, 0.7))}
            for est in ("SoTL", "ValAcc") for rep in range(3) for epoch in (1, 2, 3, 4)]
    run.mkdir(parents=True)
    frame = pd.DataFrame(rows)
    frame.to_parquet(run / "results.parquet", index=False)
    config = {"name": run.name, "benchmark": "nb201", "dataset": "cifar10-valid", "schedule": "200", "estimators": ["SoTL", "ValAcc"]}
    if description:
        config["description"] = description
    (run / "config.toml").write_text(to_toml(config))
    return frame


def test_plot_draws_the_asked_metric_on_a_fraction_axis_titled_and_saved_at_out(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "my-run"
    frame = _hand_run(run, "Kendall of two estimators. Details follow here.")
    drawn = []
    save = plots.save
    monkeypatch.setattr(plots, "save", lambda fig, stem: drawn.append(fig) or save(fig, stem))
    stem = tmp_path / "figures" / "kendall-plot"
    code, text, _ = _main(["plot", str(run), "--metric", "kendall", "--fraction", "--out", str(stem)])
    assert code == 0 and f"wrote {stem}.png and {stem}.pdf" in text
    assert stem.with_suffix(".png").stat().st_size > 1000 and stem.with_suffix(".pdf").is_file()
    ax = drawn[0].axes[0]
    assert ax.get_title() == "my-run: Kendall of two estimators"
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "kendall with ground truth"
    sotl = ax.get_lines()[0]
    assert np.allclose(sotl.get_xdata(), np.array([1, 2, 3, 4]) / 4)
    want = frame[frame["estimator"] == "SoTL"].groupby("epoch")["kendall"].mean().to_numpy()
    assert np.allclose(sotl.get_ydata(), want)


def test_table_uses_the_asked_epochs_and_names_a_missing_epoch_or_metric(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    _hand_run(run)
    code, text, _ = _main(["table", str(run), "--epochs", "1,3", "--digits", "2"])
    assert code == 0
    assert "| estimator | epoch 1 | epoch 3 |" in (run / "table-spearman.md").read_text() and "| estimator | epoch 1 | epoch 3 |" in text
    code, _, err = _main(["table", str(run), "--epochs", "1,9"])
    assert code == 2 and "epoch 9 is not in this run" in err
    with pytest.raises(SystemExit) as exit_info:  # argparse refuses it, naming the choices
        main(["table", str(run), "--metric", "bogus"])
    assert exit_info.value.code == 2 and "invalid choice: 'bogus' (choose from 'spearman', 'kendall'" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- query

QUERY = ["query", "nb201", "--dataset", "cifar10-valid", "--split", "x-valid", "--schedule", "200"]


@pytest.mark.parametrize(("epochs", "selected"), [("last", [6]), ("2:4", [2, 3, 4]), ("3:3", [3]), ("5", [5])])
def test_query_epochs_forms_select_the_documented_epochs(store: Path, epochs: str, selected: list[int]) -> None:
    code, text, _ = _main([*QUERY, "--root", str(store), "--arch", "5", "--epochs", epochs, "--format", "csv"])
    assert code == 0
    frame = pd.read_csv(io.StringIO(text))
    assert sorted(set(frame["epoch"])) == selected and sorted(set(frame["seed"])) == [777, 888, 999]
    code, text, _ = _main([*QUERY, "--root", str(store), "--arch", "5", "--epochs", epochs])
    assert code == 0 and text.splitlines()[2].split() == ["seed", "\\", "epoch", *map(str, selected)]


def test_query_mean_prints_the_nan_ignoring_seed_mean(store: Path) -> None:
    raw = load_benchmark("nb201", root=store).query([3], "cifar10-valid", "accuracy", "x-valid", "200", epochs=6).values
    assert np.isnan(raw).sum() == 1  # arch 3 lacks seed 999 in the fixture
    code, text, _ = _main([*QUERY, "--root", str(store), "--arch", "3", "--epochs", "6", "--mean"])
    assert code == 0 and "seeds=mean over 777,888,999" in text.splitlines()[0]
    seed, value = text.splitlines()[-1].split()
    assert seed == "mean" and float(value) == pytest.approx(np.nanmean(raw), abs=1e-4)


def test_query_top_ranks_the_seed_mean_at_the_last_epoch_from_one(store: Path) -> None:
    bench = load_benchmark("nb201", root=store)
    raw = bench.query(np.arange(15625), "cifar10-valid", "accuracy", "x-valid", "200").values  # [archs, seeds, epochs]
    final = np.nanmean(raw[:, :, -1], axis=1)
    best = np.argsort(-final, kind="stable")[:3]
    code, text, _ = _main([*QUERY, "--root", str(store), "--top", "3"])
    assert code == 0
    lines = text.splitlines()
    assert lines[0] == "top 3 of 15,625 archs with data by cifar10-valid/200/x-valid/accuracy (seed mean, epoch 6):"
    for rank, (line, arch) in enumerate(zip(lines[1:], best), start=1):
        number, score, label = line.split()[:3]
        assert number == f"{rank}." and float(score) == pytest.approx(final[arch], abs=1e-3) and label == f"[{arch}]"
    assert len(lines) == 4


def test_query_top_on_an_unbounded_space_says_it_ranks_a_seeded_sample_and_no_seed_mean() -> None:
    """NB301 has no arch count to enumerate and one prediction per arch: --top ranks
    ``bench.sample(1000, 0)`` and must say so, not claim a seed mean over all archs."""
    code, text, _ = _main(["query", "nb301", "--dataset", "cifar10", "--split", "valid", "--schedule", "98", "--top", "2"])
    assert code == 0
    assert text.splitlines()[0] == ("top 2 of 1,000 archs with data among 1,000 sampled with seed 0 by "
                                    "cifar10/98/valid/accuracy (epoch 98):")
    bench = load_benchmark("nb301")
    best = np.nanmax(bench.query(bench.sample(1000, 0), "cifar10", "accuracy", "valid", "98", epochs=98).values)
    assert float(text.splitlines()[1].split()[1]) == pytest.approx(best, abs=1e-3)


@pytest.mark.parametrize(("argv", "named"), [
    (["query", "nb201", "--split", "ori-test"], "--split needs --dataset"),
    (["query", "nb201", "--dataset", "cifar10"], "pass --split; nb201 splits: "),
    (["query", "nb201", "--dataset", "cifar10", "--split", "ori-test", "--schedule", "200", "--top", "0"], "--top 0: N must be at least 1"),
    (["query", "nb201", "--dataset", "cifar10", "--split", "ori-test", "--schedule", "200", "--arch", "-1"],
     "arch index -1 out of range for NB201: valid 0..15624"),
])
def test_query_refuses_incomplete_or_impossible_requests_by_name(argv: list[str], named: str) -> None:
    code, _, err = _main(argv)
    assert code == 2 and named in err and "Traceback" not in err


def test_plot_and_table_on_a_folder_without_results_name_what_it_is(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = _main(["plot", str(tmp_path / "empty")])
    assert code == 2 and err.strip() == f"harness: error: {tmp_path / 'empty'} is not a finished correlate run: it has no results.parquet"
    ws_folder = Path(__file__).resolve().parents[1] / "results" / "ws-toy-cpu"
    for command in ("plot", "table"):
        code, _, err = _main([command, str(ws_folder)])
        assert code == 2 and "it is a weight-sharing run folder: 'harness ws report'" in err
