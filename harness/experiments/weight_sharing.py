"""The weight-sharing experiment (thesis Sec. 4.2, Tables 4.1 and 4.2, Fig. 4.6a), on any search space
of :mod:`harness.supernet.spaces` (``space``; NB201 by default).

1. Train a supernet per supernet seed with ``supernet.algorithm`` (SPOS, FairNAS, MultiPath, Reptile,
   Metaprox, ...; :mod:`harness.supernet.train`, :mod:`harness.supernet.sampling`).
2. Finetune a fixed, seeded set of archs from their inherited weights, logging per step
   (:mod:`harness.supernet.finetune`).
3. Rank the archs by each estimator at every step against the benchmark's ground truth (the
   estimators and the log columns they read: :mod:`harness.supernet.estimators`); rank metrics from
   :mod:`harness.ranking` (Spearman, Kendall tau-b, top-k mean true accuracy).
4. Report Table 4.1 (NB201; Table 4.2 on the other spaces: Spearman with a bootstrap 95% CI over
   the archs, and top-k, per estimator, mean (std) over supernet seeds) with the thesis's numbers
   beside ours (:func:`read_reference`), the supernet-quality gate (:func:`supernet_quality`), and
   Fig. 4.6a (correlation vs finetuning step).

The arch set and its ground truth come from the space (NB201's: :mod:`harness.supernet.spaces.nb201`).

This module imports torch only inside the functions that train or finetune.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from harness.atomic import write_atomic
from harness.errors import HarnessError
from harness.experiments.executors import Executor, LocalExecutor, Progress, Report, Task, TaskResources
from harness.ranking import bootstrap_values, percentile_interval, rank_metrics
from harness.supernet.config import WSConfig, changed_settings, config_from_dict
from harness.supernet.estimators import estimator_scores, table_step
from harness.supernet.sampling import ALGORITHMS
from harness.supernet.spaces import get_space
from harness.supernet.spaces.base import ArchSet

REFERENCE_COLUMNS = ("spearman", "spearman_std", "top_k", "top_k_std")


# --------------------------------------------------------------------------- arch set and truth


def arch_set(cfg: WSConfig, truth_root: Path | None = None) -> ArchSet:
    """``finetune.n_archs`` archs drawn with ``finetune.arch_seed`` (the same for every supernet) and
    their truth, as the run's space defines them (:meth:`~harness.supernet.spaces.base.Space.arch_set`)."""
    return get_space(cfg.space).arch_set(cfg, truth_root)


# --------------------------------------------------------------------------- running (torch)


def run_dir(cfg: WSConfig, out: Path | None) -> Path:
    return Path(out) if out is not None else Path("runs") / cfg.name


def check_run_config(cfg: WSConfig, out: Path) -> None:
    """Refuse to add to a run folder made under other settings (checkpoints and logs would mix them);
    only :data:`harness.supernet.config.LOGISTICS` and the report's settings may change."""
    saved = Path(out) / "config.json"
    if not saved.is_file():
        return
    changes = changed_settings(json.loads(saved.read_text()), cfg, ("data", "network", "supernet", "finetune", "device"))
    if changes:
        raise HarnessError(f"{out} holds a run made under other settings ({'; '.join(changes)}); its checkpoints and "
                           f"logs would mix with new ones. Use a new --out, or the run's own config ({saved}).")


def write_run_files(cfg: WSConfig, archs: ArchSet, out: Path) -> None:
    """config.json, archs.csv and truth.json in ``out`` (each written to a temp name and renamed)."""
    check_run_config(cfg, out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "config.json", lambda tmp: tmp.write_text(json.dumps(cfg.to_dict(), indent=2, default=list) + "\n"))
    write_atomic(out / "archs.csv", lambda tmp: archs.frame().to_csv(tmp, index=False))
    truth = {"source": archs.truth_source, "split": archs.truth_split}
    write_atomic(out / "truth.json", lambda tmp: tmp.write_text(json.dumps(truth) + "\n"))


def train(cfg: WSConfig, seed: int, out: Path, progress: bool = True) -> Path:
    """Train (or resume) the supernet of ``seed`` under ``out``; returns the checkpoint path."""
    from harness.supernet.train import cpu_threads, load_images, resolve_device, train_supernet

    check_run_config(cfg, out)
    device = resolve_device(cfg)
    train_images, _ = load_images(cfg, device)
    with cpu_threads(cfg):
        return train_supernet(cfg, seed, train_images, out, progress=progress)


def finetune(
    cfg: WSConfig, seed: int, archs: ArchSet, out: Path, shard: tuple[int, int] = (0, 1), progress: bool = True,
    unfinished_supernet: bool = False, report: Report | None = None,
) -> list[Path]:
    """Finetune shard ``i`` of ``n`` of the arch set from supernet ``seed``; logs under out/logs/seed<seed>/.

    ``unfinished_supernet`` accepts a checkpoint with fewer epochs than configured (a run cut short);
    the epochs it holds are written to out/supernet-seed<seed>.json so reports can state them.
    ``report`` (a task of an executor) is told ``("arch", n)`` as logs are written; without it a
    progress bar of the shard shows them when ``progress``. The archs go to
    :func:`~harness.supernet.finetune.finetune_archs` in chunks of those it finetunes at once
    (``archs_in_flight`` on CUDA, in groups of ``archs_per_group``), so each chunk is reported as it
    is logged while the archs are grouped and scheduled as by one call.
    """
    from harness.supernet.finetune import arch_log_path, finetune_archs
    from harness.supernet.train import checkpoint_path, cpu_threads, load_images, load_supernet, resolve_device

    i, n = shard
    if not 0 <= i < n:
        raise HarnessError(f"shard {i}/{n}: need 0 <= i < n")
    check_run_config(cfg, out)
    device = resolve_device(cfg)
    train_images, valid_images = load_images(cfg, device)
    items = get_space(cfg.space).items(archs)[i::n]
    logs = log_dir(out, seed)
    bar = None
    if report is None:
        logged = sum(arch_log_path(logs, index).is_file() for index, _ in items)
        bar = report = Progress(f"finetune seed {seed} [{i}/{n}]", {"arch": len(items)}, {"arch": logged}, progress)
    per_group = cfg.device.archs_per_group
    chunk = per_group * max(1, cfg.device.archs_in_flight // per_group)
    paths: list[Path] = []
    try:
        with cpu_threads(cfg):
            path = checkpoint_path(out, seed)
            supernet = load_supernet(path, cfg, device, allow_unfinished=unfinished_supernet)
            _write_supernet_summary(path, out / f"supernet-seed{seed}.json", logs)
            for start in range(0, len(items), chunk):
                part = items[start : start + chunk]
                new = sum(not arch_log_path(logs, index).is_file() for index, _ in part)
                paths += finetune_archs(supernet, part, cfg, train_images, valid_images, logs, progress=False)
                report("arch", new)
    finally:
        if bar is not None:
            bar.close()
    return paths


def _write_supernet_summary(checkpoint: Path, dest: Path, logs: Path) -> None:
    """Record the epochs of the supernet that the logs in ``logs`` are finetuned from; refuse to add
    logs from a supernet trained further (or less) than the one behind the logs already there."""
    from harness.supernet.train import load_checkpoint

    state = load_checkpoint(checkpoint)
    epochs = int(state["epoch"])
    if dest.is_file() and any(logs.glob("arch-*.parquet")):
        before = json.loads(dest.read_text())["epochs_done"]
        if before != epochs:
            raise HarnessError(f"the logs in {logs} were finetuned from the supernet after {before} epochs, but "
                               f"{checkpoint} now holds epoch {epochs}; move those logs away to finetune again")
    summary = {"epochs_done": epochs, "history": json.loads(state["history"])}
    write_atomic(dest, lambda tmp: tmp.write_text(json.dumps(summary, indent=1) + "\n"))  # shards write it at once


def log_dir(out: Path, seed: int) -> Path:
    return Path(out) / "logs" / f"seed{seed}"


def merged_log_path(out: Path, seed: int) -> Path:
    """One parquet file with the logs of every reported arch of ``seed``, written by :func:`report`.

    With it, a results folder needs neither checkpoints nor the per-arch files to be reported again.
    """
    return Path(out) / f"logs-seed{seed}.parquet"


def _logged_archs(out: Path, seed: int) -> dict[int, Path | pd.DataFrame]:
    """Arch index -> its log: the per-arch files under logs/seed<seed>/ when that folder exists (a run
    folder), otherwise the rows of the merged file (a results folder); empty when there is neither."""
    from_dir = log_dir(out, seed)
    if from_dir.is_dir():
        return {int(p.stem.removeprefix("arch-")): p for p in from_dir.glob("arch-*.parquet")}
    merged = merged_log_path(out, seed)
    if not merged.is_file():
        return {}
    logs = pd.read_parquet(merged)
    return {int(index): rows.reset_index(drop=True) for index, rows in logs.groupby("arch_index", sort=False)}


def read_logs(out: Path, seed: int, archs: ArchSet) -> pd.DataFrame:
    """All logs of ``seed``, in arch-set order; raises naming the first missing arch."""
    logged = _logged_archs(out, seed)
    frames = []
    for index in archs.indices:
        log = logged.get(int(index))
        if log is None:
            raise _no_log(out, seed, int(index))
        frames.append(pd.read_parquet(log) if isinstance(log, Path) else log)
    return pd.concat(frames, ignore_index=True)


def _no_log(out: Path, seed: int, index: int) -> HarnessError:
    return HarnessError(f"no finetuning log for arch {index} of supernet seed {seed} (neither "
                        f"{log_dir(out, seed)}/arch-{index:05d}.parquet nor a row in {merged_log_path(out, seed)}); "
                        "finish finetuning first")


# --------------------------------------------------------------------------- estimators and ranking


def correlations(cfg: WSConfig, logs_of: dict[int, pd.DataFrame], archs: ArchSet) -> pd.DataFrame:
    """Tidy table: estimator, step, seed, spearman, kendall, top_k (mean truth of top-k), n_archs.

    ``logs_of`` maps each supernet seed to its logs (:func:`read_logs`).
    """
    rows = []
    for seed, logs in logs_of.items():
        for name in cfg.report.estimators:
            steps, scores, higher = estimator_scores(logs, archs.indices, name)
            metrics = rank_metrics(
                scores, archs.truth, higher_is_better=higher, k=cfg.report.top_k,
                metrics=("spearman", "kendall", "top_k"), constant="nan",
            )
            for j, step in enumerate(steps):
                rows.append({
                    "estimator": name, "step": int(step), "seed": int(seed),
                    "spearman": metrics["spearman"][j], "kendall": metrics["kendall"][j],
                    "top_k": metrics["top_k"][j], "n_archs": int(metrics["n_archs"][j]),
                })
    return pd.DataFrame(rows)


def thesis_reference(cfg: WSConfig) -> tuple[pd.DataFrame, str]:
    """The thesis's numbers for this run's space, dataset and algorithm, indexed by estimator, and a
    line saying where they come from: Table 4.1 (NB201) or 4.2 (the other spaces) for SoTL, TLMini,
    ValAcc and ValAccMini (Spearman and top-10, mean and std over 3 supernets) and, for SPOS finetuned
    at lr 0.01 or 0.001, Table 4.5 (SoG and SoGN at that lr: Spearman only). Estimators the thesis
    does not report stay NaN (n/a)."""
    from harness import thesis

    space = get_space(cfg.space)
    key, label = space.thesis_dataset(cfg.data.dataset), ALGORITHMS[cfg.supernet.algorithm].label
    table = pd.DataFrame(np.nan, index=pd.Index(list(cfg.report.estimators), name="estimator"), columns=list(REFERENCE_COLUMNS))
    main = thesis.table(space.thesis_table)
    main = main[(main["dataset" if space.thesis_table == "4.1" else "search_space"] == key) & (main.algorithm == label)]
    sources = [f"Table {space.thesis_table} ({key}, {label})"] if len(main) else []
    for row in main.itertuples():
        if row.estimator in table.index:
            name = "spearman" if row.measure == "spearman" else "top_k"
            table.loc[row.estimator, [name, f"{name}_std"]] = [row.mean, row.std]
    lr = cfg.finetune_lr
    if cfg.supernet.algorithm == "spos" and lr in (0.01, 0.001):
        where = space.thesis_search_space(cfg.data.dataset)
        t45 = thesis.table("4.5")
        t45 = t45[(t45.search_space == where) & (t45.finetune_lr == f"{lr:g}")]
        for row in t45.itertuples():
            if row.metric in table.index:
                table.loc[row.metric, ["spearman", "spearman_std"]] = [row.mean, row.std]
        sources += [f"Table 4.5 ({where}, SoG and SoGN finetuned at lr {lr:g})"] if len(t45) else []
    if not sources:
        return table, f"the thesis reports no {label} results on {space.thesis_search_space(cfg.data.dataset)}: n/a"
    return table, f"the thesis's {' and '.join(sources)}; n/a where it gives no number"


def thesis_protocol(space: str) -> str:
    """The protocol the thesis's one-shot numbers on ``space`` were measured under, in words: its
    archs, supernet seeds and epochs are the space's default config (:class:`WSConfig`'s under the
    space's own Table B.1 defaults: 200 archs and 100 epochs on NB201, 50 epochs on NAS-Bench-1Shot1,
    350 archs on DARTS)."""
    cfg = config_from_dict({"space": space})
    return f"{cfg.finetune.n_archs} archs, {len(cfg.supernet.seeds)} supernets of {cfg.supernet.epochs} epochs, full-size network"


def read_reference(cfg: WSConfig) -> pd.DataFrame:
    """Published numbers to show beside ours, indexed by estimator: the thesis's
    (:func:`thesis_reference`), or the CSV ``report.reference`` names.

    The CSV has a row per estimator and the columns ``estimator``, ``spearman`` and ``top_k`` (top-k
    mean accuracy in %), optionally ``spearman_std``, ``top_k_std`` and ``step``; an empty cell is a
    number the source does not give (n/a). With ``step`` every row must be at the step the table
    reports that estimator at, so that SoTL after 100 steps is never set beside SoTL after 300.
    """
    names = list(cfg.report.estimators)
    table = pd.DataFrame(np.nan, index=pd.Index(names, name="estimator"), columns=list(REFERENCE_COLUMNS))
    if not cfg.report.reference:
        return thesis_reference(cfg)[0]
    path = Path(cfg.report.reference)
    try:
        frame = pd.read_csv(path, dtype={"estimator": str})
    except (OSError, ValueError) as err:  # pandas' parser errors are ValueErrors
        raise HarnessError(f"cannot read the reference table report.reference = {str(path)!r}: {err}") from None
    missing = {"estimator", "spearman", "top_k"} - set(frame.columns)
    unknown = set(frame.columns) - {"estimator", "step", *REFERENCE_COLUMNS}
    if missing or unknown:
        raise HarnessError(
            f"reference table {path}: columns {sorted(frame.columns)}; needs estimator, spearman and top_k, "
            f"may have step, spearman_std and top_k_std" + (f" (unknown: {sorted(unknown)})" if unknown else "")
        )
    bad = sorted(set(frame.estimator) - set(names))
    if bad or frame.estimator.duplicated().any():
        raise HarnessError(f"reference table {path}: estimators must be distinct names among {names}; got {list(frame.estimator)}")
    numbers = frame.drop(columns="estimator")
    if not all(pd.api.types.is_numeric_dtype(numbers[c]) for c in numbers):
        raise HarnessError(f"reference table {path}: every column but estimator must hold numbers (or stay empty)")
    for row in frame.itertuples():
        if "step" in frame.columns and not (np.isnan(row.step) or row.step == table_step(cfg, row.estimator)):
            raise HarnessError(
                f"reference table {path}: {row.estimator} is at step {row.step:g} there but at step "
                f"{table_step(cfg, row.estimator)} in this table (report.sum_step / report.other_step)"
            )
        if not np.isnan(row.spearman) and not -1 <= row.spearman <= 1:
            raise HarnessError(f"reference table {path}: {row.estimator} has Spearman {row.spearman:g} (valid -1..1)")
        if not np.isnan(row.top_k) and not 0 <= row.top_k <= 100:
            raise HarnessError(f"reference table {path}: {row.estimator} has top-k {row.top_k:g} (valid 0..100 %, a mean accuracy)")
    table.update(frame.set_index("estimator")[[c for c in REFERENCE_COLUMNS if c in frame.columns]])
    return table


def spearman_interval(cfg: WSConfig, logs_of: dict[int, pd.DataFrame], archs: ArchSet, spec: str, step: int
                      ) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the seed-mean Spearman of ``spec`` at ``step``: the archs are
    resampled with replacement ``report.bootstrap`` times (seeded by ``finetune.arch_seed``; the same
    resamples for every seed and estimator), Spearman is taken per seed on each resample and averaged
    over the seeds. It shows how much the reported mean owes to which archs were drawn. (NaN, NaN)
    with ``report.bootstrap = 0``."""
    if cfg.report.bootstrap == 0:
        return np.nan, np.nan
    rows = []
    for logs in logs_of.values():
        steps, scores, higher = estimator_scores(logs, archs.indices, spec)
        rows.append(scores[int(np.flatnonzero(steps == step)[0])])
    values = bootstrap_values(np.stack(rows), archs.truth, "spearman", higher_is_better=higher,
                              n_boot=cfg.report.bootstrap, seed=cfg.finetune.arch_seed)
    low, high = percentile_interval(values.mean(axis=0))  # a draw constant for any seed is NaN, left out
    return float(low), float(high)


def summary_table(cfg: WSConfig, corr: pd.DataFrame, logs_of: dict[int, pd.DataFrame], archs: ArchSet) -> pd.DataFrame:
    """Per estimator at its Table 4.1 step: mean and std (over supernet seeds) of Spearman and top-k,
    the Spearman's bootstrap interval over the archs (:func:`spearman_interval`), the reference
    numbers (:func:`read_reference`) and ours minus them."""
    reference = read_reference(cfg)
    rows = []
    for name in cfg.report.estimators:
        step = table_step(cfg, name)
        at = corr[(corr.estimator == name) & (corr.step == step)]
        if at.empty:
            raise HarnessError(f"{name} is not defined at step {step}; valid steps: {sorted(corr[corr.estimator == name].step.unique())[:10]}...")
        low, high = spearman_interval(cfg, logs_of, archs, name, step)
        row = {
            "estimator": name, "step": step, "n_seeds": len(at),
            "spearman_mean": at.spearman.mean(), "spearman_std": at.spearman.std(ddof=0),
            "spearman_ci_low": low, "spearman_ci_high": high,
            "top_k_mean": at.top_k.mean(), "top_k_std": at.top_k.std(ddof=0),
            **{f"reference_{c}": reference.loc[name, c] for c in REFERENCE_COLUMNS},
        }
        row["spearman_minus_reference"] = row["spearman_mean"] - row["reference_spearman"]
        row["top_k_minus_reference"] = row["top_k_mean"] - row["reference_top_k"]
        rows.append(row)
    return pd.DataFrame(rows)


def _reference_source(cfg: WSConfig) -> str:
    label = cfg.report.reference_label
    if cfg.report.reference:
        return f"Columns '({label})': from {Path(cfg.report.reference).name}; n/a where it gives no number."
    return f"Columns '({label})': {thesis_reference(cfg)[1]} ({thesis_protocol(cfg.space)})."


def supernet_quality(out: Path, seeds: Sequence[int], logs_of: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """The supernet-quality gate, per supernet seed: its final training loss (the mean over the last
    epoch's updates), the mean and max whole-validation accuracy (%) the archs inherit (ValAcc at
    step 0, in eval mode), and the mean loss of the inherited weights on the first finetuning
    minibatch (TLMini at step 0, in train mode). Low inherited accuracy with a high loss says the
    supernet was not trained enough to trust the correlations; low accuracy with a low loss says the
    eval-mode BatchNorm statistics, not the weights, are off (running statistics that another path
    left, as in NAS-Bench-1Shot1's one-shot model)."""
    rows = []
    for seed in seeds:
        summary = Path(out) / f"supernet-seed{seed}.json"
        history = json.loads(summary.read_text())["history"] if summary.is_file() else []
        at_step_0 = logs_of[seed].loc[logs_of[seed].step == 0]
        inherited = at_step_0["val_acc"].to_numpy(dtype=np.float64)
        rows.append({
            "seed": seed, "epochs": history[-1]["epoch"] if history else 0,
            "final_train_loss": history[-1]["train_loss"] if history else np.nan,
            "inherited_val_acc_mean": float(np.nanmean(inherited)), "inherited_val_acc_max": float(np.nanmax(inherited)),
            "inherited_train_loss_mean": float(np.nanmean(at_step_0["tl_mini"].to_numpy(dtype=np.float64))),
        })
    return pd.DataFrame(rows)


def _quality_line(quality: pd.DataFrame) -> str:
    parts = [f"seed {int(r.seed)}: {int(r.epochs)} epochs, final training loss {r.final_train_loss:.3f}, inherited ValAcc "
             f"mean {r.inherited_val_acc_mean:.2f} % / max {r.inherited_val_acc_max:.2f} % (eval mode), inherited "
             f"first-minibatch training loss mean {r.inherited_train_loss_mean:.3f} (train mode)" for r in quality.itertuples()]
    return "Supernet quality: " + "; ".join(parts) + "."


def _steps_sentence(cfg: WSConfig) -> str:
    """Which step each estimator of the table is read at (:func:`table_step`), in words."""
    by_step: dict[int, list[str]] = {}
    for name in cfg.report.estimators:
        by_step.setdefault(table_step(cfg, name), []).append(name)
    parts = [f"{', '.join(names)} at step {step}" + (" (inherited weights)" if step == 0 else "")
             for step, names in sorted(by_step.items())]
    return "Read after t finetuning updates: " + "; ".join(parts) + "."


def render_table(cfg: WSConfig, table: pd.DataFrame, archs: ArchSet, note: str = "", quality: pd.DataFrame | None = None) -> str:
    """Markdown in the thesis's 'mean (std)' format (:func:`harness.tables.render`), the reference
    and the difference beside ours, the supernet-quality gate under it."""
    from harness import tables

    k, label = cfg.report.top_k, cfg.report.reference_label
    measure = f"{archs.truth_split} acc"
    labels = [f"{row.estimator} @ step {row.step}" for row in table.itertuples()]
    ours_spearman = "Spearman [95% CI] (ours)"
    columns = {
        ours_spearman: ("spearman_mean", "spearman_std"),
        f"Spearman ({label})": ("reference_spearman", "reference_spearman_std"),
        "Spearman diff": ("spearman_minus_reference", None),
        f"top-{k} {measure} % (ours)": ("top_k_mean", "top_k_std"),
        f"top-{k} ({label})": ("reference_top_k", "reference_top_k_std"),
        f"top-{k} diff": ("top_k_minus_reference", None),
    }
    means = pd.DataFrame({name: table[m].to_numpy() for name, (m, _) in columns.items()}, index=labels)
    stds = pd.DataFrame({name: table[s].to_numpy() if s else np.full(len(table), np.nan) for name, (_, s) in columns.items()},
                        index=labels)
    intervals = {ours_spearman: (pd.Series(table.spearman_ci_low.to_numpy(), index=labels),
                                 pd.Series(table.spearman_ci_high.to_numpy(), index=labels))}
    seeds = int(table.n_seeds.max())
    algorithm = ALGORITHMS[cfg.supernet.algorithm].label
    steps = _steps_sentence(cfg)
    reference_columns = [name for name in columns if name != ours_spearman and "(ours)" not in name]
    lines = [
        tables.render(means, stds, row_label="estimator", digits=3, no_best=reference_columns,
                      column_digits={name: 2 for name in columns if "top-" in name}, intervals=intervals),
        "",
        (f"{len(archs.indices)} archs, mean (std over {seeds} {algorithm} supernet seed(s)); truth: {archs.truth_source}. "
         f"[95% CI]: percentile bootstrap over the archs ({cfg.report.bootstrap} resamples) of the seed-mean Spearman. "
         f"Finetuning lr {cfg.finetune_lr:g}. {steps} diff = ours - {label}. " + _reference_source(cfg)),
    ]
    if quality is not None:
        lines += ["", _quality_line(quality)]
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def finished(out: Path, seeds: Sequence[int], archs: ArchSet) -> np.ndarray:
    """Mask of the archs whose finetuning log exists for every seed in ``seeds``."""
    logged = [set(_logged_archs(out, s)) for s in seeds]
    return np.array([all(int(i) in done for done in logged) for i in archs.indices])


def report(
    cfg: WSConfig, out: Path, seeds: Sequence[int] | None = None, note: str = "", plot: bool = True, partial: bool = False
) -> dict[str, Path]:
    """Correlations, Table 4.1 (or 4.2) and Fig. 4.6a for a finished run directory; returns the files written.

    ``partial=True`` reports on the archs finished for every seed so far (the table says how many);
    otherwise a missing log raises. In a run folder it also writes ``logs-seed<s>.parquet``, every
    arch logged so far merged into one file (:func:`merged_log_path`), so that a results folder
    without checkpoints and per-arch files can be reported again; there it reads those files and
    rewrites none of them.
    """
    out = Path(out)
    check_run_config(cfg, out)
    archs = every_arch = _read_arch_set(out)
    seeds = list(cfg.supernet.seeds if seeds is None else seeds)
    if partial:
        done = finished(out, seeds, archs)
        if done.sum() < 3:
            raise HarnessError(f"only {int(done.sum())} archs finished for seeds {seeds}; need at least 3 to rank")
        if not done.all():
            note = (note + " " if note else "") + f"Partial run: {int(done.sum())} of {len(done)} archs finished for every seed."
        archs = archs.subset(done)
    done_epochs = {
        s: json.loads((out / f"supernet-seed{s}.json").read_text())["epochs_done"]
        for s in seeds if (out / f"supernet-seed{s}.json").is_file()
    }
    if any(e != cfg.supernet.epochs for e in done_epochs.values()):
        epochs = ", ".join(f"seed {s}: {e}" for s, e in done_epochs.items())
        note = (note + " " if note else "") + f"Supernets cut short: epochs done {epochs} (of {cfg.supernet.epochs} configured; cosine schedule not completed)."
    if cfg.data.limit_valid is not None:
        note = (note + " " if note else "") + f"Validation split limited to its first {cfg.data.limit_valid} images (ValAcc, ValAccMini)."
    files = {
        "correlations": out / "correlations.csv",
        "table_csv": out / "table.csv",
        "table_md": out / "table.md",
    }
    logs_of, every_log = {}, {}
    for seed in seeds:
        if log_dir(out, seed).is_dir():  # a run folder: read every arch logged so far, once
            logged = finished(out, [seed], every_arch)
            missing = archs.indices[~np.isin(archs.indices, every_arch.indices[logged])]
            if len(missing):
                raise _no_log(out, seed, int(missing[0]))
            every_log[seed] = read_logs(out, seed, every_arch.subset(logged))
            logs_of[seed] = every_log[seed][every_log[seed].arch_index.isin(archs.indices)].reset_index(drop=True)
        else:
            logs_of[seed] = read_logs(out, seed, archs)
    for seed, logs in every_log.items():  # the merged copy a folder without per-arch logs reports from
        files[f"logs_seed{seed}"] = write_atomic(merged_log_path(out, seed), lambda tmp: logs.to_parquet(tmp, index=False))
    files["quality"] = out / "quality.csv"
    corr = correlations(cfg, logs_of, archs)
    table = summary_table(cfg, corr, logs_of, archs)
    quality = supernet_quality(out, seeds, logs_of)
    corr.to_csv(files["correlations"], index=False)
    table.to_csv(files["table_csv"], index=False)
    quality.to_csv(files["quality"], index=False)
    files["table_md"].write_text(render_table(cfg, table, archs, note, quality))
    if plot:
        files["curves"] = _plot_curves(corr, out / "curves", _run_title(cfg, archs))
    return files


def _run_title(cfg: WSConfig, archs: ArchSet) -> str:
    algorithm = ALGORITHMS[cfg.supernet.algorithm].label
    return (f"{cfg.name}: {algorithm} on {get_space(cfg.space).label} {cfg.data.dataset}, {len(archs.indices)} archs, "
            f"{len(cfg.supernet.seeds)} supernet seed(s), finetuning lr {cfg.finetune_lr:g}")


def _plot_curves(corr: pd.DataFrame, stem: Path, title: str) -> Path:
    """Thesis Fig. 4.6a: Spearman and Kendall of every estimator of the table vs finetuning step, mean
    +- std over supernet seeds; the legend sits below the panels, so it covers no line."""
    from harness import plots  # matplotlib only when plotting

    fig, axes = plots.plt.subplots(1, 2, figsize=(11, 4.6), sharex=True, constrained_layout=True)
    for ax, metric in zip(axes, ("spearman", "kendall")):
        plots.correlation_vs_epoch(corr, metric, x="step", over="seed", ax=ax)
    handles, labels = axes[0].get_legend_handles_labels()
    title_of_legend = axes[0].get_legend().get_title().get_text()
    for ax in axes:
        ax.get_legend().remove()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5), fontsize=8,
               title=title_of_legend, title_fontsize=8)
    fig.suptitle(title, fontsize=10)
    return plots.save(fig, stem)[0]


def _read_arch_set(out: Path) -> ArchSet:
    return ArchSet.read(out)


def prepare(cfg: WSConfig, out: Path, truth_root: Path | None = None) -> ArchSet:
    """Sample the arch set, fetch its truth, and write config.json, archs.csv and truth.json to ``out``."""
    check_run_config(cfg, out)
    archs = arch_set(cfg, truth_root)
    write_run_files(cfg, archs, out)
    return archs


def task_resources(cfg: WSConfig) -> TaskResources:
    """What each task of the run reserves on a cluster (``[executor]``): ``num_cpus`` by default
    ``device.threads``; ``num_gpus`` by default none on the CPU, one on CUDA, and for ``auto`` one
    where the cluster has GPUs."""
    ex = cfg.executor
    gpus = ex.num_gpus
    if gpus is None and cfg.device.device != "auto":
        gpus = 0.0 if cfg.device.device == "cpu" else 1.0
    cpus = ex.num_cpus if ex.num_cpus is not None else float(cfg.device.threads)
    return TaskResources(num_cpus=cpus, num_gpus=gpus, max_retries=ex.max_retries)


def check_task(report: Report, cfg: WSConfig) -> None:
    """Task: the device and the images resolve where the tasks run (raises HarnessError if not)."""
    from harness.supernet.train import load_images, resolve_device

    load_images(cfg, resolve_device(cfg))


def train_task(report: Report, cfg: WSConfig, seed: int, out: Path, epoch_bar: bool) -> Path:
    """Task: train (or resume) the supernet of ``seed`` (:func:`train`); reports ``("supernet", 1)``."""
    path = train(cfg, seed, out, epoch_bar)
    report("supernet", 1)
    return path


def finetune_task(report: Report, cfg: WSConfig, seed: int, archs: ArchSet, out: Path, shard: tuple[int, int]) -> int:
    """Task: finetune ``shard`` of ``archs`` from supernet ``seed`` (:func:`finetune`), skipping the
    archs already logged; reports ``("arch", n)`` as logs are written. Returns the shard's arch count."""
    return len(finetune(cfg, seed, archs, out, shard, progress=False, report=report))


def run_all(cfg: WSConfig, out: Path, truth_root: Path | None = None, progress: bool = True,
            executor: Executor | None = None) -> dict[str, Path]:
    """The whole experiment: every supernet seed trained, all archs finetuned, report.

    ``executor`` runs the tasks: one training per supernet seed and ``executor.shards`` finetuning
    tasks per seed, each after its supernet (:func:`train_task`, :func:`finetune_task`). The
    default, :class:`~harness.experiments.executors.LocalExecutor`, runs them in this process, seed
    by seed; a :class:`~harness.experiments.executors.RayExecutor` on a cluster, all at once where
    their dependencies allow. The results are the same: every random stream depends on the seed,
    epoch, arch and step, never on where or when a task runs. The report is made here.

    Everything that can fail before training (the run folder's settings, the device, the images,
    the arch set and its truth) is checked before anything is written (the device and the images
    by a task, where the tasks run), so a corrected rerun starts clean instead of meeting files of
    the failed one."""
    executor = LocalExecutor() if executor is None else executor
    if executor.remote and cfg.device.device.startswith("cuda:") and cfg.device.device != "cuda:0":
        raise HarnessError(f"device {cfg.device.device!r}: a task on a cluster sees only the GPUs it reserved "
                           "(executor.num_gpus), numbered from cuda:0; use device = 'cuda' or 'auto'")
    resources = task_resources(cfg)
    check_run_config(cfg, out)
    executor.run([Task(check_task, (cfg,), label="ws check device and images")], resources)
    archs = arch_set(cfg, truth_root)
    write_run_files(cfg, archs, out)
    seeds, shards = cfg.supernet.seeds, cfg.executor.shards
    tasks: list[Task] = []
    for seed in seeds:
        tasks.append(Task(train_task, (cfg, seed, out, progress and not executor.remote), label=f"ws train seed {seed}"))
        trained = len(tasks) - 1
        tasks += [Task(finetune_task, (cfg, seed, archs, out, (i, shards)), (trained,), f"ws finetune seed {seed} shard {i}/{shards}")
                  for i in range(shards)]
    logged = sum(int(finished(out, [seed], archs).sum()) for seed in seeds)
    bar = Progress(f"ws run {cfg.name} ({executor.name})", {"arch": len(seeds) * len(archs.indices), "supernet": len(seeds)},
                   {"arch": logged}, progress)
    try:
        executor.run(tasks, resources, bar)
    finally:
        bar.close()
    return report(cfg, out)
