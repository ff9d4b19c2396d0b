"""The shared query interface over the NB201 adapter: shapes, masks, seeds, epochs, bad input."""

import subprocess
import sys

import numpy as np
import pytest

from harness import Column, HarnessError, load_benchmark
from harness.adapters.nb201 import embedded_table
from harness.cli import main
from harness.spaces import nb201 as space
from harness.spaces.nb1shot1 import search_space
from harness.store import ColumnarStore, StoreWriter

TRAIN_LOSS = Column("cifar10-valid", "200", "train", "loss", (777, 888, 999), tuple(range(1, 201)), minimize=True)
XVALID_C100 = Column("cifar100", "200", "x-valid", "accuracy", (777, 888, 999), (200,), minimize=False)
PARAMS = Column("cifar10", "200", "cost", "params", (), (), minimize=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A synthetic NB201 store: ragged seeds (arch i has 1 + i % 3 seeds), x-valid only at epoch 200."""
    dest = tmp_path_factory.mktemp("store") / "nb201"
    rng = np.random.default_rng(0)
    with StoreWriter(dest, benchmark="nb201", source="synthetic") as writer:
        loss = writer.add_column(TRAIN_LOSS, space.N_ARCHS)
        valid = writer.add_column(XVALID_C100, space.N_ARCHS)
        params = writer.add_column(PARAMS, space.N_ARCHS)
        n_seeds = 1 + np.arange(space.N_ARCHS) % 3
        curves = rng.uniform(0.1, 2.0, size=(space.N_ARCHS, 3, 200)).astype(np.float32)
        curves[n_seeds[:, None] <= np.arange(3)[None, :]] = np.nan
        loss[:] = curves
        valid[:, :, 0] = rng.uniform(10, 70, size=(space.N_ARCHS, 3))
        params[:, 0, 0] = np.arange(space.N_ARCHS) / 1000
        archs = embedded_table()[["arch_str"]].assign(row=np.arange(space.N_ARCHS))
        writer.add_table("archs", archs)
    return dest


def test_embedded_final_accuracy_equals_the_table():
    bench = load_benchmark("nb201")
    table = embedded_table()
    result = bench.query([0, 11, 284], "cifar10", "accuracy", "ori-test", "200")
    assert result.values.shape == (3, 1, 1)
    assert result.seeds == ("mean",) and result.epochs == (200,)
    np.testing.assert_array_equal(result.values[:, 0, 0], table["cifar10_test_200"].to_numpy()[[0, 11, 284]])


def test_one_arch_by_index_string_or_tuple_gives_the_same_row():
    bench = load_benchmark("nb201")
    arch = bench.arch_string(284)
    rows = [bench.resolve(x)[0] for x in (284, arch, space.arch_to_ops(arch), np.int32(284))]
    assert rows == [284, 284, 284, 284]


def test_bulk_query_over_all_archs_is_one_array(store):
    bench = load_benchmark("nb201", root=store)
    result = bench.query(np.arange(space.N_ARCHS), "cifar10-valid", "loss", "train", "200")
    assert result.values.shape == (space.N_ARCHS, 3, 200)
    assert result.seeds == (777, 888, 999) and result.epochs == tuple(range(1, 201))
    np.testing.assert_array_equal(result.mask, ~np.isnan(result.values))


def test_ragged_seeds_are_masked_not_imputed(store):
    bench = load_benchmark("nb201", root=store)
    result = bench.query([0, 1, 2], "cifar10-valid", "loss", "train", "200")
    assert result.mask[:, :, 0].tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert np.isnan(result.values[0, 1:]).all()


def test_seed_mean_is_explicit_and_uses_only_existing_seeds(store):
    bench = load_benchmark("nb201", root=store)
    raw = bench.query([1], "cifar10-valid", "loss", "train", "200")
    mean = bench.query([1], "cifar10-valid", "loss", "train", "200", reduce="mean")
    np.testing.assert_allclose(mean.values[0, 0], raw.values[0, :2].mean(axis=0))
    assert mean.seeds == ("mean",)


def test_a_column_evaluated_once_answers_that_epoch_and_refuses_the_others(store):
    bench = load_benchmark("nb201", root=store)
    result = bench.query([5], "cifar100", "accuracy", "x-valid", "200")
    assert result.epochs == (200,) and result.values.shape == (1, 3, 1) and result.mask.all()
    with pytest.raises(HarnessError, match="epoch 100 out of range for cifar100/200/x-valid/accuracy; valid epochs: 200"):
        bench.query([5], "cifar100", "accuracy", "x-valid", "200", epochs=[100, 200])


def test_selected_seeds_and_epochs_keep_the_order_asked_for(store):
    bench = load_benchmark("nb201", root=store)
    full = bench.query([2], "cifar10-valid", "loss", "train", "200")
    part = bench.query([2], "cifar10-valid", "loss", "train", "200", seeds=[999, 777], epochs=[200, 1])
    np.testing.assert_array_equal(part.values[0], full.values[0][[2, 0]][:, [199, 0]])


def test_cost_columns_have_no_seed_or_epoch_axis(store):
    bench = load_benchmark("nb201", root=store)
    result = bench.query([1000], "cifar10", "params", "cost", "200")
    assert result.values.shape == (1, 1, 1) and result.seeds == () and result.epochs == ()
    assert result.values[0, 0, 0] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"dataset": "cifar-10"}, "cifar10-valid"),
        ({"split": "valid"}, "train"),
        ({"metric": "acc"}, "loss"),
        ({"schedule": "100"}, "200"),
        ({"epochs": 201}, "1..200"),
        ({"epochs": 0}, "1..200"),
        ({"seeds": 111}, "777"),
        ({"archs": 15625}, "0..15624"),
        ({"archs": -1}, "0..15624"),
        ({"archs": "|none~0|+|none~0|none~1|+|none~0|none~1|bogus~2|"}, "valid ops"),
    ],
)
def test_bad_input_raises_one_error_type_naming_what_is_valid(store, kwargs, named):
    bench = load_benchmark("nb201", root=store)
    args = {"archs": [0], "dataset": "cifar10-valid", "metric": "loss", "split": "train", "schedule": "200"}
    args.update(kwargs)
    with pytest.raises(HarnessError, match=named):
        bench.query(**args)


def test_several_schedules_require_an_explicit_schedule():
    bench = load_benchmark("nb201")
    with pytest.raises(HarnessError, match="schedule"):
        bench.query([0], "cifar10", "accuracy", "ori-test")


def test_unknown_benchmark_name_lists_the_valid_ones():
    with pytest.raises(HarnessError, match="nb201"):
        load_benchmark("nb999")


def test_sample_is_seeded_and_leaves_global_rngs_alone():
    bench = load_benchmark("nb201")
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a, b = bench.sample(50, seed=7), bench.sample(50, seed=7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, bench.sample(50, seed=8))
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_dedup_keeps_one_arch_per_isomorphism_class():
    bench = load_benchmark("nb201")
    unique = bench.unique_archs(np.arange(space.N_ARCHS))
    assert len(unique) == 6466


def test_degenerate_archs_are_dropped_by_test_accuracy():
    bench = load_benchmark("nb201")
    kept = bench.non_degenerate(np.arange(space.N_ARCHS))
    acc = embedded_table()["cifar10_test_200"].to_numpy()
    assert len(kept) == int((acc > 10).sum()) == space.N_ARCHS - 341


def test_interrupted_conversion_leaves_no_store(tmp_path):
    dest = tmp_path / "store"
    with pytest.raises(RuntimeError):
        with StoreWriter(dest, benchmark="nb201", source="x") as writer:
            writer.add_column(PARAMS, 10)
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_truncated_store_array_is_reported_by_name(store, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    victim = next((copy / "arrays").iterdir())
    victim.write_bytes(victim.read_bytes()[:1000])
    with pytest.raises(HarnessError, match=victim.name):
        ColumnarStore(copy)


def test_checksum_verification_catches_a_flipped_byte(store, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    victim = sorted((copy / "arrays").iterdir())[0]
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(HarnessError, match="checksum"):
        ColumnarStore(copy).verify()


def test_a_directory_that_is_not_a_store_is_named(tmp_path):
    with pytest.raises(HarnessError, match="convert"):
        load_benchmark("nb201", root=tmp_path)


def test_cli_prints_errors_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "query", "nb201", "--dataset", "cifar10", "--split", "bogus", "--schedule", "200"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "x-valid" not in proc.stderr and "ori-test" in proc.stderr


def test_query_and_metrics_layers_import_without_torch():
    code = (
        "import sys, harness, harness.adapters.nb201, harness.store, harness.registry\n"
        "import importlib\n"
        "for m in ('harness.metrics', 'harness.ranking', 'harness.experiments', 'harness.plots'):\n"
        "    try:\n"
        "        importlib.import_module(m)\n"
        "    except ModuleNotFoundError as e:\n"
        "        if e.name != m: raise\n"
        "harness.load_benchmark('nb201').query([0], 'cifar10', 'accuracy', 'ori-test', '200')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------------- regressions


def _store_copy(store, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    return copy


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda manifest: [1, 2], "holds a JSON list"),
        (lambda manifest: {k: v for k, v in manifest.items() if k != "tables"}, "'tables' should be a JSON dict"),
        (lambda manifest: {k: v for k, v in manifest.items() if k != "benchmark"}, "'benchmark' should be a JSON str"),
        (lambda manifest: {**manifest, "columns": [{"file": "arrays/c0000.npy"}]}, "entry is malformed"),
    ],
)
def test_manifest_that_is_not_a_store_manifest_is_named_not_a_traceback(store, tmp_path, edit, named):
    import json

    copy = _store_copy(store, tmp_path)
    manifest = copy / "manifest.json"
    manifest.write_text(json.dumps(edit(json.loads(manifest.read_text()))))
    with pytest.raises(HarnessError, match=named):
        load_benchmark("nb201", root=copy)


def test_a_v1_store_whose_once_evaluated_splits_hold_nan_curves_is_refused_with_convert_again(store, tmp_path):
    """v1 stores declared epochs 1..200 for splits evaluated once, NaN before the last; reading one
    would bring those NaN curves back, so it is refused and the user told to convert again."""
    import json

    copy = _store_copy(store, tmp_path)
    manifest = copy / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "version": 1}))
    with pytest.raises(HarnessError, match=r"v1 \('nb201'\); this harness reads 'harness-columnar' v2; convert the official files again"):
        load_benchmark("nb201", root=copy)


def test_truncated_parquet_table_is_named_not_an_arrow_error(store, tmp_path):
    copy = _store_copy(store, tmp_path)
    table = copy / "tables" / "archs.parquet"
    table.write_bytes(table.read_bytes()[:100])
    with pytest.raises(HarnessError, match=r"tables/archs\.parquet is not a readable parquet table"):
        load_benchmark("nb201", root=copy)


def test_overwrite_refuses_a_directory_that_is_not_a_store(tmp_path):
    thesis = tmp_path / "important" / "thesis.tex"
    thesis.parent.mkdir()
    thesis.write_text("x")
    with pytest.raises(HarnessError, match="is not a harness store"):
        StoreWriter(thesis.parent, benchmark="nb201", source="x", overwrite=True)
    assert thesis.read_text() == "x"


def test_seeds_none_is_a_harness_error_not_a_type_error(store):
    bench = load_benchmark("nb201", root=store)
    with pytest.raises(HarnessError, match=r"seeds must be 'all'.*777"):
        bench.query([0], "cifar10-valid", "loss", "train", "200", seeds=None)


@pytest.mark.parametrize("epochs", [[], np.array([], dtype=int)])
def test_empty_epoch_list_says_what_is_valid(store, epochs):
    bench = load_benchmark("nb201", root=store)
    with pytest.raises(HarnessError, match=r"non-empty list.*valid epochs: 1\.\.200"):
        bench.query([0], "cifar10-valid", "loss", "train", "200", epochs=epochs)


QUERIES = {"nb201": ("cifar10", "accuracy", "ori-test", "200"), "nb101": ("cifar10", "accuracy", "valid", "108")}


@pytest.mark.parametrize("name", QUERIES)
@pytest.mark.parametrize("archs", [[], np.array([], dtype=np.int64)])
def test_empty_arch_list_raises_the_same_error_on_every_benchmark(name, archs):
    with pytest.raises(HarnessError, match=f"no architectures given to {name} query"):
        load_benchmark(name).query(archs, *QUERIES[name])


@pytest.mark.parametrize("name", QUERIES)
def test_2d_index_array_is_refused_not_flattened_or_dropped(name):
    with pytest.raises(HarnessError, match=r"1-D sequence, got an array of shape \(2, 2\)"):
        load_benchmark(name).query(np.array([[0, 1], [2, 3]]), *QUERIES[name])


@pytest.mark.parametrize("name", QUERIES)
@pytest.mark.parametrize("arch", [None, 1.0])
def test_arch_of_the_wrong_type_is_named_not_a_type_error(name, arch):
    with pytest.raises(HarnessError, match=repr(arch)):
        load_benchmark(name).query(arch, *QUERIES[name])


@pytest.mark.parametrize(
    ("sample", "named"),
    [
        (lambda: load_benchmark("nb201").sample(2, None), "seed must be a non-negative int or a numpy Generator, got None"),
        (lambda: load_benchmark("nb201").sample(2, 1.0), "got 1.0"),
        (lambda: load_benchmark("nb201").sample(2, True), "got True"),
        (lambda: load_benchmark("nb201").sample(2.5, 1), "n must be an integer"),
        (lambda: search_space(1).sample(2, None), "got None"),
    ],
)
def test_sample_without_an_explicit_int_seed_is_refused(sample, named):
    with pytest.raises(HarnessError, match=named):
        sample()


@pytest.mark.parametrize(("name", "valid"), [("nb201", "none"), ("nb301", "nb_models, version, noise, rng, threads")])
def test_unknown_load_benchmark_option_names_the_valid_ones(name, valid):
    with pytest.raises(HarnessError, match=f"unknown keyword argument foo for benchmark '{name}'; valid: {valid}"):
        load_benchmark(name, foo=1)


CLI_QUERY = ["query", "nb201", "--dataset", "cifar10", "--split", "ori-test", "--schedule", "200"]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--epochs", "abc"], "--epochs 'abc' is not 'last', one epoch N, or an inclusive range A:B"),
        (["--epochs", "1:x"], "--epochs '1:x' is not"),
        (["--epochs", "5:2"], "--epochs '5:2' is an empty range"),
        (["--top", "-3"], "--top -3: N must be at least 1"),
        (["--top", "3", "--arch", "5"], "cannot be combined with --arch or --epochs"),
        (["--top", "3", "--epochs", "200"], "cannot be combined with --arch or --epochs"),
    ],
)
def test_cli_bad_epochs_or_top_is_a_named_error(capsys, extra, named):
    assert main([*CLI_QUERY, *extra]) == 2
    assert named in capsys.readouterr().err


def test_cli_top_counts_only_the_archs_with_data(tmp_path, capsys):
    dest = tmp_path / "store"
    with StoreWriter(dest, benchmark="nb201", source="synthetic") as writer:
        params = writer.add_column(PARAMS, space.N_ARCHS)
        params[[3, 7], 0, 0] = [2.0, 1.0]
        writer.add_table("archs", embedded_table()[["arch_str"]])
    assert main(["query", "nb201", "--root", str(dest), "--dataset", "cifar10", "--split", "cost",
                 "--metric", "params", "--schedule", "200", "--top", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("top 2 of 2 archs with data")
    assert [line.split()[2] for line in lines[1:]] == ["[7]", "[3]"]


def test_cli_flags_that_need_a_dataset_are_not_silently_ignored(capsys):
    assert main(["query", "nb201", "--top", "3", "--arch", "5"]) == 2
    assert "--arch and --top need --dataset (one of cifar10-valid, cifar10, cifar100, ImageNet16-120)" in capsys.readouterr().err
    assert main(["query", "nb201"]) == 0  # capabilities
    assert "cifar10/200/ori-test/accuracy" in capsys.readouterr().out


def test_capabilities_list_each_absence_once():
    """NB301 has several absent columns with one explanation each; the listing repeated them."""
    lines = load_benchmark("nb301").capabilities().describe().splitlines()
    absent = [line for line in lines if line.lstrip().startswith("absent:")]
    assert absent and len(absent) == len(set(absent))


def test_epochs_that_are_not_consecutive_are_listed_not_shown_as_a_range():
    """NB101's halfway and final evaluations (54, 108) once printed as '54..108 (2)'."""
    from harness.benchmark import Capabilities

    column = Column("cifar10", "108", "valid", "accuracy", (0, 1, 2), (54, 108), False)
    caps = Capabilities("nb101", (column,), 10)
    assert "epochs=54,108 (2)" in caps.describe()
    from harness.benchmark import _select_epochs

    with pytest.raises(HarnessError, match=r"epoch 60 out of range .* valid epochs: 54,108$"):
        _select_epochs(column, [60])


def test_a_schedule_the_embedded_table_lacks_says_how_to_get_it():
    with pytest.raises(HarnessError, match=r"valid: '12'; the embedded table holds final accuracies only .* convert the official files"):
        load_benchmark("nb201").query(0, "cifar100", "accuracy", "x-valid", "200")
