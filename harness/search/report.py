"""The tables and trajectory figure of a set of differentiable-search run folders, beside the published
numbers (``harness search report``; torch-free).

A run folder is what ``harness search run`` writes (:mod:`harness.search.run`): ``config.json`` and,
per seed searched, the per-epoch log ``search-seed{seed}.json`` (:mod:`harness.search.loop`). A set of
folders is reported together when

* every folder holds ``config.json`` and at least one ``search-seed{seed}.json`` of at least one epoch
  (a seed still searching is reported at its last logged epoch; the tables show ``epoch/epochs``);
* all search one space (``nb201``, ``darts``, ``darts-s2``, ``nb1shot1-1/2/3``): its truth columns and its
  published table are the report's;
* one folder holds all the seeds of its search. Each folder is one row of the tables, named by its algorithm; where
  two folders search the same algorithm (SoTL-DARTS and its Table 4.7 "diff. hparams" settings, say), each of them is
  named ``<algorithm> (<folder name>)``.

A search (one seed) is reported at its final logged epoch: the derived arch, its truth
(:attr:`~harness.search.spaces.SearchSpace.truth_columns`), its skip count ``n_skip``, its cell depth
and the dominant Hessian eigenvalue (NaN, shown ``-``, where that epoch did not compute one). A truth the
benchmark lacks (NAS-Bench-1Shot1: the embedded NB101 table does not hold the derived cell; the log has None
and ``truth_missing``) is NaN likewise, shown ``-``, left out of the means, and the table says for how many
seeds. Per algorithm, the
mean and std over its seeds; the std is the population one, ``sqrt(mean((x - mean)^2))`` (ddof=0,
:func:`harness.tables.mean_std`, as the harness's other tables; the thesis prints mean (std) over 3
search seeds without saying which).

Only CIFAR-10 is set beside published numbers, as our searches run on CIFAR-10 (the training half of
the ``cifar10-valid`` split). Ours is the derived arch's :func:`compared_column` truth (NB201:
``cifar10_test_200``, its 200-epoch CIFAR-10 test accuracy in the embedded NB201 table; DARTS spaces:
``cifar10_valid_98``, NB301's surrogate prediction; NAS-Bench-1Shot1: ``cifar10_valid_108``, NB101's 108-epoch
validation accuracy in the embedded table); the published number (:func:`published`) is

* NB201: thesis Table 4.6's CIFAR10 column (:data:`TABLE_4_6_METHODS`; ``SoTL-DARTS (150 epochs)``
  for a SoTL-DARTS search of 150 epochs); GAEA DARTS: Li's Table 6.4, CIFAR-10, ``GAEA DARTS
  (bilevel)`` for ``gaea-darts`` (architecture steps on validation data) and ``GAEA DARTS (ERM)`` for ``gaea-erm``
  (on training data; ours reads the training half, Li's the whole training set);
* DARTS space: thesis Table 4.8, its NB301 average over 3 searches (:data:`TABLE_4_8_METHODS`); for a
  search network of 20 cells the 20-layer searches' rows (:data:`TABLE_4_8_20_CELL_METHODS`);
* S2 (``darts-s2``): none (the thesis shows S2 searches in figures only, 4.12 and 4.15);
* NAS-Bench-1Shot1 (``nb1shot1-<n>``): thesis Table 4.7, search space ``NB101-<n>`` (:data:`TABLE_4_7_METHODS`;
  ``SoTL-DARTS (diff. hparams)`` for a SoTL-DARTS search of T = 10 unrolled steps at batch 32, the settings
  the thesis's Sec. 4.3.1 gives that row). The thesis reports NB101 *test*
  accuracy; ours, ``cifar10_valid_108``, is the embedded 20,001-cell table's *validation* accuracy of one
  training run (its only split), so the diff mixes the two splits. That table holds the cells of only 913 /
  1,584 / 100,712 of the 14,580 / 29,160 / 1,312,200 configurations of spaces 1/2/3, so many a derived
  configuration has no truth. A search over a converted official NB101 store (``search.truth_root``) logs
  ``cifar10_test_108``, the test accuracy as the thesis reports it, for every cell; the folders of one report
  log one truth (a mix is refused).

NB201's other truth columns are not comparable with the thesis's: ``cifar10_test_12`` is the 12-epoch
schedule's CIFAR-10 accuracy, and ``cifar100_test_12`` and ``imagenet16_test_12`` are the
CIFAR-10-searched arch's 12-epoch accuracies on CIFAR-100 and ImageNet16-120 (transfer), where the
thesis's CIFAR100 and ImageNet16-120 columns are searches on those datasets; the tables show them,
labelled so, with nothing beside them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness import plots, tables, thesis
from harness.atomic import write_atomic
from harness.errors import HarnessError
from harness.search.config import SearchConfig, load_search_config
from harness.search.derive import DARTS_TRUTH_COLUMN, NB1SHOT1_TEST_COLUMN, NB1SHOT1_TRUTH_COLUMN
from harness.search.spaces import get_search_space
from harness.supernet.spaces.darts import DartsSpace

SEED_LOG = re.compile(r"search-seed(\d+)\.json")
# truth column -> what it is, under the tables
TRUTH_NOTES = {
    "cifar10_test_200": "the derived arch's CIFAR-10 test accuracy (%) after NB201's 200-epoch schedule",
    "cifar10_test_12": "its CIFAR-10 test accuracy (%) after NB201's 12-epoch schedule",
    "cifar100_test_12": "transfer: the CIFAR-10-searched arch's CIFAR-100 test accuracy (%), 12-epoch schedule, "
                        "not the thesis's CIFAR-100 search",
    "imagenet16_test_12": "transfer: the CIFAR-10-searched arch's ImageNet16-120 test accuracy (%), 12-epoch schedule, "
                          "not the thesis's ImageNet16-120 search",
    DARTS_TRUTH_COLUMN: "the derived genotype's CIFAR-10 validation accuracy (%) at epoch 98, as NB301's surrogate predicts it",
    NB1SHOT1_TRUTH_COLUMN: "the derived cell's NB101 CIFAR-10 validation accuracy (%) after 108 epochs, one training run, "
                           "from the embedded 20,001-cell table (the thesis reports test accuracy); `-` where the table "
                           "lacks the cell",
    NB1SHOT1_TEST_COLUMN: "the derived cell's NB101 CIFAR-10 test accuracy (%) after 108 epochs, the mean of its training "
                          "runs, from a converted official NB101 store (search.truth_root), as the thesis reports it",
}
TRANSFER = ("cifar100_test_12", "imagenet16_test_12")
DIAGNOSTICS = ("n_skip", "depth", "hessian_eigenvalue")  # reported beside the truth
# algorithm -> the thesis's method of Table 4.6 (NB201)
TABLE_4_6_METHODS = {
    "darts-1": "DARTS (first-order)", "darts-2": "DARTS (second-order)", "sotl-darts": "SoTL-DARTS",
    "sovl-darts": "SoVL-DARTS", "drnas": "DrNAS", "sotl-drnas": "SoTL-DrNAS",
}
LI_TABLE_6_4_METHODS = {"gaea-darts": "GAEA DARTS (bilevel)", "gaea-erm": "GAEA DARTS (ERM)"}  # NB201
# algorithm -> the thesis's method of Table 4.8 (DARTS space): searches of 8 cells, and of 20
TABLE_4_8_METHODS = {"darts-1": "DARTS (1st)", "darts-2": "DARTS (2nd)", "drnas": "DrNAS", "sotl-darts": "SoTL-DARTS",
                     "sotl-drnas": "SoTL-DrNAS"}
TABLE_4_8_20_CELL_METHODS = {"darts-1": "DARTS-20 (first-order)", "sotl-darts": "SoTL-DARTS-20"}
# algorithm -> the thesis's method of Table 4.7 (NAS-Bench-1Shot1); DARTS there is the official first-order search
TABLE_4_7_METHODS = {"darts-1": "DARTS", "sotl-darts": "SoTL-DARTS"}


@dataclass(frozen=True)
class SearchRun:
    """One run folder: its config and, per seed (ascending), its per-epoch log."""

    path: Path
    cfg: SearchConfig
    histories: dict[int, list[dict[str, Any]]]
    label: str = ""  # its row's name in a report (load_runs): the algorithm, or "<algorithm> (<folder>)"

    @property
    def algorithm(self) -> str:
        return self.cfg.search.algorithm


@dataclass(frozen=True)
class Published:
    """A published CIFAR-10 number: where it is printed, its row there, mean and std (NaN if none),
    and the conditions it was measured under."""

    source: str
    method: str
    mean: float
    std: float
    conditions: str


def load_run(path: str | Path) -> SearchRun:
    """The run folder ``path``; HarnessError naming what is missing or malformed."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise HarnessError(f"{path} is not a search run folder: it has no config.json "
                           f"('harness search run --out {path}' writes one)")
    cfg = load_search_config(path / "config.json")
    logs = sorted((int(match.group(1)), file) for file in path.iterdir() if (match := SEED_LOG.fullmatch(file.name)))
    if not logs:
        raise HarnessError(f"{path} holds no search-seed<seed>.json: no seed of its search has finished an epoch")
    truths = get_search_space(cfg.space).truth_columns_of(cfg)
    required = ("epoch", "arch", *truths, "n_skip", "depth")  # a truth may be None where truth_missing is true
    histories = {}
    for seed, log in logs:
        try:
            history = json.loads(log.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise HarnessError(f"cannot read the search log {log}: {err}") from None
        if not isinstance(history, list) or not history:
            raise HarnessError(f"{log} holds no epochs (a JSON list of per-epoch entries)")
        for i, entry in enumerate(history):
            missing = [key for key in required if not isinstance(entry, dict) or entry.get(key) is None
                       and not (key in truths and entry.get("truth_missing") is True)]
            if missing:
                raise HarnessError(f"{log}, entry {i}: no {', '.join(missing)}; every epoch records {', '.join(required)}")
        histories[seed] = history
    return SearchRun(path, cfg, histories)


def load_runs(paths: Sequence[str | Path]) -> list[SearchRun]:
    """The run folders ``paths`` (:func:`load_run`), each with its ``label`` (module docstring): at least one, one
    space, no folder twice."""
    runs = [load_run(path) for path in paths]
    if not runs:
        raise HarnessError("no search run folders given")
    spaces: dict[str, list[str]] = {}
    algorithms: dict[str, list[str]] = {}
    for run in runs:
        spaces.setdefault(run.cfg.space, []).append(str(run.path))
        algorithms.setdefault(run.algorithm, []).append(str(run.path))
    if len(spaces) > 1:
        raise HarnessError("the folders search different spaces (" + "; ".join(f"{space}: {', '.join(folders)}" for space, folders
                           in spaces.items()) + "); a report is of one space: give the folders of one")
    sources = {get_search_space(run.cfg.space).truth_columns_of(run.cfg) for run in runs}
    if len(sources) > 1:
        raise HarnessError("the folders log different truths (" + "; ".join(
            f"{run.path}: {', '.join(get_search_space(run.cfg.space).truth_columns_of(run.cfg))}" for run in runs)
            + "): a report compares one; give the folders searched over the same benchmark data (search.truth_root)")
    resolved = [run.path.resolve() for run in runs]
    if len(set(resolved)) < len(resolved):
        raise HarnessError("a run folder is given twice (" + ", ".join(str(run.path) for run in runs) + ")")
    labels = [run.algorithm if len(algorithms[run.algorithm]) == 1 else f"{run.algorithm} ({run.path.name})" for run in runs]
    if len(set(labels)) < len(labels):
        raise HarnessError("two run folders of one algorithm have one name (" + ", ".join(str(run.path) for run in runs)
                           + "): rename one; a report names such folders' rows by their folder names")
    return [replace(run, label=label) for run, label in zip(runs, labels)]


def truth_columns(runs: Sequence[SearchRun]) -> tuple[str, ...]:
    """The truth columns the runs log (one set: :func:`load_runs` refuses a mix)."""
    return get_search_space(runs[0].cfg.space).truth_columns_of(runs[0].cfg)


def compared_column(cfg: SearchConfig) -> str:
    """The truth column of a search of ``cfg`` set beside the published numbers: the first it logs (NB201's
    ``cifar10_test_200``; the DARTS spaces' and NAS-Bench-1Shot1's only one, over the data ``cfg`` names)."""
    return get_search_space(cfg.space).truth_columns_of(cfg)[0]


def published(cfg: SearchConfig) -> Published | None:
    """The published CIFAR-10 number of ``cfg``'s algorithm on its space (module docstring), or None."""
    algorithm = cfg.search.algorithm
    if cfg.space == "nb201" and algorithm in LI_TABLE_6_4_METHODS:
        frame = thesis.li_table_6_4().rename(columns={"test_acc_mean": "mean", "test_acc_std": "std"})
        return _published(frame, "Li Table 6.4", "arch lr 0.1, 25 epochs, zero op excluded, runs not stated",
                           method=LI_TABLE_6_4_METHODS[algorithm], dataset="CIFAR-10")
    if cfg.space == "nb201":
        method = "SoTL-DARTS (150 epochs)" if algorithm == "sotl-darts" and cfg.search.epochs == 150 else TABLE_4_6_METHODS.get(algorithm)
        return None if method is None else _published(thesis.table("4.6"), "thesis Table 4.6", "3 search seeds, 50 epochs",
                                                      method=method, dataset="CIFAR10")
    if cfg.space == "darts":
        twenty = DartsSpace().shape(cfg.ws_config()).n_cells == 20
        method = (TABLE_4_8_20_CELL_METHODS if twenty else TABLE_4_8_METHODS).get(algorithm)
        return None if method is None else _published(thesis.table("4.8"), "thesis Table 4.8", "NB301, average of 3 searches",
                                                      method=method, evaluation="NB301", statistic="average")
    if cfg.space.startswith("nb1shot1-"):
        diff = algorithm == "sotl-darts" and cfg.search.unroll_steps == 10 and cfg.search.batch_size == 32
        method = "SoTL-DARTS (diff. hparams)" if diff else TABLE_4_7_METHODS.get(algorithm)
        return None if method is None else _published(
            thesis.table("4.7"), "thesis Table 4.7", "NB101 test accuracy (ours: " + (
                "the embedded table's validation accuracy)" if cfg.search.truth_root is None else "the same, from an NB101 store)"),
            method=method, search_space=f"NB101-{cfg.space.removeprefix('nb1shot1-')}")
    return None


def _published(frame: pd.DataFrame, source: str, conditions: str, **match: str) -> Published:
    """The one row of ``frame`` whose columns hold ``match``."""
    rows = np.logical_and.reduce([frame[column] == value for column, value in match.items()])
    ((mean, std),) = frame.loc[rows, ["mean", "std"]].to_numpy()
    return Published(source, match["method"], float(mean), float(std), conditions)


def trajectories(runs: Sequence[SearchRun]) -> pd.DataFrame:
    """One row per run, seed and logged epoch: ``run`` (the folder's name), ``algorithm`` (its label), ``seed``,
    ``epoch``, ``arch``, the space's truth columns, ``n_skip``, ``depth``, ``hessian_eigenvalue`` (NaN
    where not computed)."""
    columns = ["epoch", "arch", *truth_columns(runs), *DIAGNOSTICS]
    rows = [{"run": run.path.name, "algorithm": run.label, "seed": seed, **{key: entry.get(key) for key in columns}}
            for run in runs for seed, history in run.histories.items() for entry in history]
    frame = pd.DataFrame(rows, columns=["run", "algorithm", "seed", *columns])
    for column in (*truth_columns(runs), "hessian_eigenvalue"):  # None -> NaN
        frame[column] = frame[column].astype(np.float64)
    return frame


def final_epochs(runs: Sequence[SearchRun], steps: pd.DataFrame) -> pd.DataFrame:
    """The row of ``steps`` (:func:`trajectories` of ``runs``) of each run's and seed's last logged
    epoch, with ``epochs``, the epochs its config searches."""
    last = steps.groupby(["run", "seed"], sort=False).tail(1).reset_index(drop=True)
    last.insert(4, "epochs", last["algorithm"].map({run.label: run.cfg.search.epochs for run in runs}))
    return last


def summary(runs: Sequence[SearchRun], final: pd.DataFrame) -> pd.DataFrame:
    """Per run folder (the index, ``algorithm``: its label, :func:`load_runs`): its name, seeds, mean and std (ddof=0) over seeds of the
    truth columns and :data:`DIAGNOSTICS` at the final epoch (``final``, :func:`final_epochs`;
    ``<column>_mean``, ``<column>_std``), the published CIFAR-10 number (``published_source``,
    ``published_method``, ``published_mean``, ``published_std``, ``published_conditions``; empty and
    NaN where there is none) and ``diff`` = our :func:`compared_column` mean - the published mean."""
    out = pd.DataFrame(index=pd.Index([run.label for run in runs], name="algorithm"))
    out["run"] = [run.path.name for run in runs]
    out["seeds"] = [" ".join(str(seed) for seed in run.histories) for run in runs]
    out["n_seeds"] = [len(run.histories) for run in runs]
    for column in (*truth_columns(runs), *DIAGNOSTICS):
        out[f"{column}_mean"], out[f"{column}_std"] = tables.mean_std(final, "algorithm", column)
    references = [published(run.cfg) for run in runs]
    out["published_source"] = [ref.source if ref else "" for ref in references]
    out["published_method"] = [ref.method if ref else "" for ref in references]
    out["published_mean"] = [ref.mean if ref else np.nan for ref in references]
    out["published_std"] = [ref.std if ref else np.nan for ref in references]
    out["published_conditions"] = [ref.conditions if ref else "" for ref in references]
    out["diff"] = out[f"{compared_column(runs[0].cfg)}_mean"] - out["published_mean"]
    return out


def markdown(runs: Sequence[SearchRun], table: pd.DataFrame, final: pd.DataFrame, label: str = "") -> str:
    """``table.md``: ``label``, the runs and seeds, ours beside the published CIFAR-10 numbers
    (``table``, :func:`summary`), the per-algorithm means and the per-seed rows (``final``,
    :func:`final_epochs`)."""
    space = runs[0].cfg.space
    truths = truth_columns(runs)
    compared = compared_column(runs[0].cfg)
    named = [f"{column} (transfer)" if column in TRANSFER else column for column in truths]
    seeds = sorted({seed for run in runs for seed in run.histories})
    conditions = sorted({f"{row.published_source}: {row.published_conditions}" for _, row in table.iterrows() if row.published_source})
    styles = {**{column: ".2f" for column in (*truths, "n_skip", "depth")}, "hessian_eigenvalue": ".4g"}
    out = [f"# Differentiable search{f': {label}' if label else ''}", "",
           f"Space `{space}`. Runs: " + "; ".join(f"`{run.path.name}` ({run.algorithm}; seeds "
                                                   f"{', '.join(str(seed) for seed in run.histories)}; {run.cfg.search.epochs} epochs)"
                                                   for run in runs) + ".",
           "", f"Seeds used: {', '.join(str(seed) for seed in seeds)}. Each seed at its final logged epoch (epoch/epochs); "
           "mean (std) over seeds, std with ddof=0 (population).", "",
           "## CIFAR-10, beside the published numbers", "",
           _table(["algorithm", "seeds", f"ours: {compared}", "published", "diff", "published row"],
                  [[algorithm, str(row.n_seeds), _cell(row[f"{compared}_mean"], row[f"{compared}_std"]),
                    _cell(row.published_mean, row.published_std), _number(row["diff"]),
                    f"{row.published_source}: {row.published_method}" if row.published_source else "-"]
                   for algorithm, row in table.iterrows()]),
           "", f"ours: {compared}, {TRUTH_NOTES[compared]}; diff = ours - published (means); `-`: no published number "
           f"of this algorithm in this space. Published: {'; '.join(conditions) or 'none'}. Only CIFAR-10 is compared: "
           f"the searches run on CIFAR-10.{_missing_truth(runs, final, truths)}", "",
           "## Per algorithm: mean (std) over seeds at the final epoch", "",
           _table(["algorithm", "seeds", *named, "n_skip", "depth", "eigenvalue"],
                  [[algorithm, row.seeds, *(_cell(row[f"{column}_mean"], row[f"{column}_std"], style) for column, style in styles.items())]
                   for algorithm, row in table.iterrows()]),
           "", "## Per seed: the final epoch's derived arch", "",
           _table(["run", "algorithm", "seed", "epoch", "arch", *named, "n_skip", "depth", "eigenvalue"],
                  [[row.run, row.algorithm, str(row.seed), f"{row.epoch}/{row.epochs}", f"`{row.arch}`",
                    *(_number(row[column]) for column in truths), str(row.n_skip), str(row.depth),
                    _number(row.hessian_eigenvalue, ".4g")] for _, row in final.iterrows()]),
           "", *(f"- {column}: {TRUTH_NOTES[column]}" for column in truths),
           "- n_skip: skip connections in the derived cell (the normal cell in DARTS spaces); depth: its longest path; "
           "eigenvalue: the dominant eigenvalue of the architecture Hessian at that epoch (`-`: not computed then)."]
    return "\n".join(out) + "\n"


def _missing_truth(runs: Sequence[SearchRun], final: pd.DataFrame, truths: Sequence[str]) -> str:
    """Sentences naming the final-epoch seeds whose truth the benchmark lacks (left out of the means) and, per
    search whose trajectory lacks some, for how many of its epochs; or ''."""
    lacking = final[final[list(truths)].isna().any(axis=1)]
    out = ""
    if not lacking.empty:
        seeds = ", ".join(f"{row.algorithm} seed {row.seed}" for _, row in lacking.iterrows())
        out = (f" Truth missing for {len(lacking)} of {len(final)} seeds at their final epoch ({seeds}: the benchmark "
               "lacks the derived arch); the means leave them out.")
    gaps = [f"{run.label} seed {seed}: {n} of {len(history)}" for run in runs for seed, history in run.histories.items()
            if (n := sum(any(entry.get(column) is None for column in truths) for entry in history))]
    if gaps:
        out += f" Epochs whose derived arch has no truth, per search: {'; '.join(gaps)} (gaps in the figure)."
    return out


def _number(value: float, style: str = ".2f") -> str:
    return "-" if np.isnan(value) else f"{value:{style}}"


def _cell(mean: float, std: float, style: str = ".2f") -> str:
    """``mean (std)`` in ``style``; ``-`` for no mean."""
    if np.isnan(mean):
        return "-"
    return _number(mean, style) + ("" if np.isnan(std) else f" ({_number(std, style)})")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table of text cells (``|`` inside a cell escaped)."""
    text = ["| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |" for line in [header, *rows]]
    return "\n".join([text[0], "|" + "|".join(["---"] * len(header)) + "|", *text[1:]])


def write_report(run_dirs: Sequence[str | Path], out: str | Path, label: str = "") -> dict[str, Path]:
    """``table.md`` (:func:`markdown`), ``table.csv`` (:func:`summary`), ``trajectories.csv``
    (:func:`trajectories`) and the figure ``trajectories.png``/``.pdf``
    (:func:`harness.plots.plot_search_trajectories` of the :func:`compared_column` truth, one line per
    ``"<label> seed <seed>"``) of the run folders ``run_dirs`` into ``out``, each written atomically;
    returns their paths. Nothing is written when a folder is refused."""
    runs = load_runs(run_dirs)
    steps = trajectories(runs)
    final = final_epochs(runs, steps)
    table = summary(runs, final)
    text = markdown(runs, table, final, label)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"table": out / "table.md", "csv": out / "table.csv", "trajectories": out / "trajectories.csv"}
    write_atomic(files["table"], lambda tmp: tmp.write_text(text))
    write_atomic(files["csv"], lambda tmp: table.to_csv(tmp))
    write_atomic(files["trajectories"], lambda tmp: steps.to_csv(tmp, index=False))
    # a missing truth (None) is NaN in the figure, a gap, as in the tables
    histories = {f"{run.label} seed {seed}": [{key: np.nan if value is None else value for key, value in entry.items()}
                                                  for entry in history]
                 for run in runs for seed, history in run.histories.items()}
    files["png"], files["pdf"] = plots.plot_search_trajectories(histories, out / "trajectories", compared_column(runs[0].cfg))
    return files
