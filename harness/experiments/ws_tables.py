"""The thesis's weight-sharing tables and figures from several reported run folders, beside its numbers.

Each run folder is one algorithm on one dataset with its supernet seeds, reported by ``harness ws
report`` (it holds ``config.json``, ``archs.csv``, ``table.csv``, ``correlations.csv`` and the merged
``logs-seed<s>.parquet``). From a set of them:

* Table 4.1: per dataset, Spearman and top-10 of SoTL, TLMini, ValAcc and ValAccMini for each
  algorithm (mean (std) over supernet seeds, Spearman with its bootstrap 95% CI over the archs), the
  thesis's number and ours minus it beside each; the best estimator of each algorithm in bold.
* Table 4.4: SPOS finetuned at lr 0.01 and at 0.001 (two runs on the same supernets: equal data,
  network and supernet settings), SoTL and ValAcc after ``report.sum_step`` minibatches.
* Table 4.5: SoG and SoGN of each SPOS run at its finetuning lr; Params (the parameter count's
  Spearman with the truth); SoTL-P and SoG-P (SoTL's and SoG's Spearman with the parameter count; the
  thesis does not say at which finetuning lr, so each run's lr is named and both set beside its one
  number).
* Fig. 4.6b: SoTL's Spearman vs finetuning step, one line per algorithm.
* Fig. 4.7: SPOS runs on the same supernets finetuned with other batch sizes and lrs (the thesis's
  grid: batch {64, 128, 256} at lr 0.01, lr {0.001, 0.01} at batch 64): SoTL's Spearman and top-10
  vs finetuning step, one line per (batch, lr).
* Fig. 4.8: per finetuning step, the top-10 of SoTL, the mean minibatch loss over the archs, and the
  mean loss of the truth's top 10% of archs against the median archs (the middle 10%).

Nothing here trains or reads images; it needs no torch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness import tables, thesis
from harness.errors import HarnessError
from harness.experiments import weight_sharing as ws
from harness.ranking import rank_metrics
from harness.supernet.config import WSConfig, config_from_dict
from harness.supernet.estimators import estimator_scores
from harness.supernet.sampling import ALGORITHMS
from harness.supernet.spaces import get_space
from harness.supernet.spaces.base import ArchSet

TABLE_4_1_ESTIMATORS = ("SoTL", "TLMini", "ValAcc", "ValAccMini")
# Which settings must agree for two runs to share their supernets (Table 4.4's pairs)
_SUPERNET_SECTIONS = ("data", "network", "supernet")


@dataclass(frozen=True)
class Run:
    """One reported run folder."""

    path: Path
    cfg: WSConfig
    table: pd.DataFrame  # table.csv, indexed by estimator
    corr: pd.DataFrame  # correlations.csv
    archs: ArchSet

    @property
    def algorithm(self) -> str:
        return ALGORITHMS[self.cfg.supernet.algorithm].label

    @property
    def dataset(self) -> str:
        """The run's space and dataset as the thesis's one-shot table keys it (``CIFAR10``, ``NB101-1``)."""
        return get_space(self.cfg.space).thesis_dataset(self.cfg.data.dataset)

    @property
    def seeds(self) -> list[int]:
        """The supernet seeds the run was reported on (``harness ws report --seeds`` may name fewer
        than the config's, e.g. while later seeds are still training)."""
        return sorted(int(seed) for seed in self.corr.seed.unique())

    @property
    def thesis_table(self) -> str:
        """The thesis's table of this run's space: 4.1 (NB201) or 4.2."""
        return get_space(self.cfg.space).thesis_table

    @property
    def search_space(self) -> str:
        """The run's space and dataset as Tables 4.4 and 4.5 name it (``NB201 (CIFAR10)``, ``NB101-1``)."""
        return get_space(self.cfg.space).thesis_search_space(self.cfg.data.dataset)

    def logs(self, seed: int) -> pd.DataFrame:
        return ws.read_logs(self.path, seed, self.archs)

    def supernet_key(self) -> str:
        """The settings that make the supernets (equal keys: the same supernets)."""
        whole = self.cfg.to_dict()
        return json.dumps({section: whole[section] for section in _SUPERNET_SECTIONS}, sort_keys=True, default=list)


def load_run(path: Path) -> Run:
    """A run folder reported by ``harness ws report``; raises naming what is missing."""
    path = Path(path)
    missing = [name for name in ("config.json", "table.csv", "correlations.csv", "archs.csv") if not (path / name).is_file()]
    if missing:
        raise HarnessError(f"{path} is not a reported weight-sharing run (missing {', '.join(missing)}); run 'harness ws report' there first")
    cfg = config_from_dict(json.loads((path / "config.json").read_text()))
    return Run(path, cfg, pd.read_csv(path / "table.csv").set_index("estimator"), pd.read_csv(path / "correlations.csv"),
               ArchSet.read(path))


# --------------------------------------------------------------------------- Tables 4.1 and 4.2


def table_4_1(runs: Sequence[Run], name: str = "4.1") -> str:
    """Markdown: per dataset (Table 4.1, NB201) or search space (Table 4.2) and measure, estimators x
    algorithms, ours beside the thesis's and the difference; only runs of that table finetuned at
    their algorithm's own lr and batch 64 (the thesis's setting) count."""
    reference = thesis.table(name)
    key = "dataset" if name == "4.1" else "search_space"
    runs = [run for run in runs if run.thesis_table == name and _thesis_batch(run)
            and run.cfg.finetune_lr == ALGORITHMS[run.cfg.supernet.algorithm].finetune_lr]
    out = []
    for dataset in dict.fromkeys(run.dataset for run in runs):
        chosen = [run for run in runs if run.dataset == dataset]
        algorithms = [run.algorithm for run in chosen]
        if len(set(algorithms)) != len(algorithms):
            raise HarnessError(f"two runs of {', '.join(algorithms)} on {dataset}: give one run folder per algorithm and dataset")
        for measure, column in (("spearman", "spearman"), ("top10", "top_k")):
            means, stds, lows, highs = {}, {}, {}, {}
            for run in chosen:
                published = reference[(reference[key] == dataset) & (reference.algorithm == run.algorithm)
                                      & (reference.measure == measure)].set_index("estimator")
                ours = run.table.reindex(list(TABLE_4_1_ESTIMATORS))
                theirs = published.reindex(list(TABLE_4_1_ESTIMATORS))
                means[f"{run.algorithm} ours"] = ours[f"{column}_mean"].to_numpy()
                stds[f"{run.algorithm} ours"] = ours[f"{column}_std"].to_numpy()
                means[f"{run.algorithm} thesis"] = theirs["mean"].to_numpy()
                stds[f"{run.algorithm} thesis"] = theirs["std"].to_numpy()
                means[f"{run.algorithm} diff"] = ours[f"{column}_mean"].to_numpy() - theirs["mean"].to_numpy()
                stds[f"{run.algorithm} diff"] = np.full(len(TABLE_4_1_ESTIMATORS), np.nan)
                if column == "spearman":
                    lows[f"{run.algorithm} ours"] = pd.Series(ours["spearman_ci_low"].to_numpy(), index=TABLE_4_1_ESTIMATORS)
                    highs[f"{run.algorithm} ours"] = pd.Series(ours["spearman_ci_high"].to_numpy(), index=TABLE_4_1_ESTIMATORS)
            labels = [f"{name} @ {int(chosen[0].table.loc[name, 'step'])}" if name in chosen[0].table.index else name
                      for name in TABLE_4_1_ESTIMATORS]
            mean_frame = pd.DataFrame(means, index=list(TABLE_4_1_ESTIMATORS))
            std_frame = pd.DataFrame(stds, index=list(TABLE_4_1_ESTIMATORS))
            intervals = {name: (lows[name], highs[name]) for name in lows}
            rendered = tables.render(
                mean_frame.set_axis(labels), std_frame.set_axis(labels), row_label="estimator @ step",
                digits=3 if column == "spearman" else 2,
                no_best=[c for c in mean_frame.columns if not c.endswith("ours")],
                intervals={name: (low.set_axis(labels), high.set_axis(labels)) for name, (low, high) in intervals.items()},
            )
            splits = "/".join(dict.fromkeys(run.archs.truth_split for run in chosen))  # the truth's: test or val
            what = "Spearman [95% CI over the archs]" if column == "spearman" else f"top-10 mean true {splits} accuracy (%)"
            out += [f"#### {dataset}: {what}", "", rendered, ""]
    return "\n".join(out)


# --------------------------------------------------------------------------- Tables 4.4 and 4.5


def _thesis_batch(run: Run) -> bool:
    """Whether the run finetunes with the thesis's batch of 64 (Tables 4.1, 4.4, 4.5 do; Fig. 4.7 varies it)."""
    return run.cfg.finetune.batch_size == WSConfig().finetune.batch_size


def _at(run: Run, estimator: str, step: int) -> pd.DataFrame:
    rows = run.corr[(run.corr.estimator == estimator) & (run.corr.step == step)]
    if rows.empty:
        raise HarnessError(f"{run.path}: no {estimator} at step {step} in correlations.csv (add it to report.estimators)")
    return rows


def table_4_4(runs: Sequence[Run]) -> str | None:
    """SPOS at finetuning lr 0.01 and 0.001 on the same supernets: SoTL and ValAcc after sum_step
    minibatches, Spearman and top-10; None when no such pair is among ``runs``."""
    spos = [run for run in runs if run.cfg.supernet.algorithm == "spos" and _thesis_batch(run)]
    by_key: dict[tuple[str, str], dict[float, Run]] = {}
    for run in spos:
        by_key.setdefault((run.dataset, run.supernet_key()), {})[run.cfg.finetune_lr] = run
    pairs = [(dataset, pair) for (dataset, _), pair in by_key.items() if {0.01, 0.001} <= set(pair)]
    if not pairs:
        return None
    reference = thesis.table("4.4")
    rows = []
    for _, pair in pairs:
        for lr in (0.01, 0.001):
            run = pair[lr]
            step = run.cfg.report.sum_step
            for estimator in ("SoTL", "ValAcc"):
                at = _at(run, estimator, step)
                published = reference[(reference.search_space == run.search_space) & (reference.estimator == estimator)
                                      & (reference.finetune_lr == f"{lr:g}")].set_index("measure")
                row = {"row": f"{run.search_space} {estimator} @ {step}, lr {lr:g}"}
                for measure, column in (("spearman", "spearman"), ("top10", "top_k")):
                    theirs = published.loc[measure] if measure in published.index else None
                    row[f"{measure} ours mean"], row[f"{measure} ours std"] = at[column].mean(), at[column].std(ddof=0)
                    row[f"{measure} thesis mean"] = np.nan if theirs is None else theirs["mean"]
                    row[f"{measure} thesis std"] = np.nan if theirs is None else theirs["std"]
                    row[f"{measure} diff mean"] = row[f"{measure} ours mean"] - row[f"{measure} thesis mean"]
                rows.append(row)
    return _render_measures(rows, ("spearman", "top10"))


def _render_measures(rows: list[dict[str, object]], measures: Sequence[str]) -> str:
    frame = pd.DataFrame(rows).set_index("row")
    names = [f"{measure} {kind}" for measure in measures for kind in ("ours", "thesis", "diff")]
    means = pd.DataFrame({name: frame[f"{name} mean"] for name in names})
    stds = pd.DataFrame({name: frame[f"{name} std"] if f"{name} std" in frame else np.nan for name in names})
    digits = {name: 2 for name in names if name.startswith("top10")}
    # rows of different things (estimators at two lrs, correlations with the parameter count): no "best"
    return tables.render(means, stds, row_label="", digits=3, column_digits=digits, no_best=names)


def table_4_5(runs: Sequence[Run]) -> str | None:
    """SoG and SoGN at each SPOS run's finetuning lr, Params, SoTL-P and SoG-P (Spearman with the
    parameter count), ours beside the thesis's; None without a SPOS run."""
    spos = [run for run in runs if run.cfg.supernet.algorithm == "spos" and _thesis_batch(run)]
    if not spos:
        return None
    reference = thesis.table("4.5")
    rows, params_done = [], set()
    for run in spos:
        published = reference[reference.search_space == run.search_space]
        step, lr, params = run.cfg.report.sum_step, run.cfg.finetune_lr, get_space(run.cfg.space).params(run.archs)
        values: dict[str, tuple[np.ndarray, str]] = {}
        for name in ("SoG", "SoGN"):
            at = _at(run, name, step)
            values[f"{name} ({lr:g})"] = (at.spearman.to_numpy(), name)
        if (run.dataset, tuple(run.archs.indices)) not in params_done:  # one row per arch set
            params_done.add((run.dataset, tuple(run.archs.indices)))
            params_rho = rank_metrics(params, run.archs.truth, higher_is_better=True, metrics=("spearman",))["spearman"]
            values["Params"] = (np.atleast_1d(params_rho), "Params")
        for name, registry in (("SoTL", "SoTL-P"), ("SoG", "SoG-P")):
            rhos = []
            for seed in run.seeds:
                steps, scores, higher = estimator_scores(run.logs(seed), run.archs.indices, name)
                score = scores[int(np.flatnonzero(steps == step)[0])] * (1 if higher else -1)
                rhos.append(float(rank_metrics(score, params, higher_is_better=True, metrics=("spearman",))["spearman"]))
            values[f"{registry} (lr {lr:g})"] = (np.asarray(rhos), registry)
        for label, (rhos, printed) in values.items():
            by_lr = label.startswith(("SoG (", "SoGN ("))  # the thesis prints these with their lr: "SoG (0.01)"
            match = published[published.column_printed == label] if by_lr else published[published.metric == printed]
            theirs = match.iloc[0] if len(match) else None
            ours_mean = float(np.mean(rhos))
            rows.append({"row": f"{run.search_space} {label}", "spearman ours mean": ours_mean, "spearman ours std": float(np.std(rhos)),
                         "spearman thesis mean": np.nan if theirs is None else theirs["mean"],
                         "spearman thesis std": np.nan if theirs is None else theirs["std"],
                         "spearman diff mean": ours_mean - (np.nan if theirs is None else theirs["mean"])})
    return _render_measures(rows, ("spearman",))


# --------------------------------------------------------------------------- figures


def figure_4_6b(runs: Sequence[Run], stem: Path) -> Path:
    """SoTL's Spearman vs finetuning step per algorithm (mean +- std over supernet seeds)."""
    from harness import plots

    frames = []
    for run in runs:
        rows = run.corr[run.corr.estimator == "SoTL"].copy()
        rows["estimator"] = f"{run.algorithm} ({run.dataset})"
        frames.append(rows)
    fig = plots.correlation_vs_epoch(pd.concat(frames), "spearman", x="step", over="seed",
                                     title="Fig. 4.6b analogue: SoTL during finetuning, by supernet algorithm")
    return plots.save(fig, stem)[0]


def finetuning_grid(runs: Sequence[Run]) -> list[Run]:
    """The largest set of SPOS runs on the same supernets (and dataset) that differ in finetuning batch
    size or lr (Fig. 4.7's grid), ordered by (batch, lr); fewer than two: none."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        if run.cfg.supernet.algorithm == "spos":
            groups.setdefault((run.dataset, run.supernet_key()), []).append(run)
    best = max(groups.values(), key=len, default=[])
    return sorted(best, key=lambda run: (run.cfg.finetune.batch_size, run.cfg.finetune_lr)) if len(best) > 1 else []


def figure_4_7(runs: Sequence[Run], stem: Path) -> Path:
    """SoTL's Spearman and top-10 vs finetuning step for each (batch size, lr) of the grid (mean
    +- std over the supernet seeds every run of the grid has)."""
    from harness import plots

    seeds = set.intersection(*(set(run.corr.seed) for run in runs))
    frames = []
    for run in runs:
        rows = run.corr[(run.corr.estimator == "SoTL") & run.corr.seed.isin(seeds)].copy()
        rows["estimator"] = f"batch {run.cfg.finetune.batch_size}, lr {run.cfg.finetune_lr:g}"
        frames.append(rows)
    results = pd.concat(frames)
    fig, axes = plots.plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for ax, metric in zip(axes, ("spearman", "top_k")):
        plots.correlation_vs_epoch(results, metric, x="step", over="seed", ax=ax)
    fig.suptitle(f"Fig. 4.7 analogue: SoTL of SPOS on {runs[0].search_space} by finetuning batch size and lr "
                 f"(supernet seeds {sorted(seeds)})", fontsize=10)
    return plots.save(fig, stem)[0]


def figure_4_8(run: Run, stem: Path) -> Path:
    """Three panels over finetuning steps: SoTL's top-10 (mean true accuracy of its 10 best archs),
    the mean minibatch loss over all archs, and the mean minibatch loss of the archs in the truth's
    top 10% against the median archs (the middle 10%), mean over supernet seeds."""
    from harness import plots

    order = np.argsort(run.archs.truth)
    tenth = max(1, len(order) // 10)
    top, middle = set(run.archs.indices[order[-tenth:]]), set(run.archs.indices[order[len(order) // 2 - tenth // 2:][:tenth]])
    curves = []
    for seed in run.seeds:
        logs = run.logs(seed)
        logs = logs[logs.step >= 1]
        curves.append(pd.DataFrame({
            "all": logs.groupby("step").train_loss.mean(),
            "top 10%": logs[logs.arch_index.isin(top)].groupby("step").train_loss.mean(),
            "median 10%": logs[logs.arch_index.isin(middle)].groupby("step").train_loss.mean(),
        }))
    loss = sum(curves) / len(curves)
    fig, axes = plots.plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    top_k = run.corr[run.corr.estimator == "SoTL"].groupby("step").top_k.mean()
    axes[0].plot(top_k.index, top_k.to_numpy())
    axes[0].set(xlabel="finetuning step", ylabel="top-10 mean true accuracy (%)", title="SoTL's top-10")
    axes[1].plot(loss.index, loss["all"].to_numpy())
    axes[1].set(xlabel="finetuning step", ylabel="minibatch training loss", title="mean over all archs")
    for name in ("top 10%", "median 10%"):
        axes[2].plot(loss.index, loss[name].to_numpy(), label=f"truth's {name}")
    axes[2].set(xlabel="finetuning step", ylabel="minibatch training loss", title="best vs median archs")
    axes[2].legend(fontsize=8)
    for ax in axes:
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"Fig. 4.8 analogue: {run.algorithm} on {run.search_space}, finetuning lr {run.cfg.finetune_lr:g} ({run.path.name})",
                 fontsize=10)
    return plots.save(fig, stem)[0]


def _protocols(runs: Sequence[Run]) -> str:
    """The thesis's protocol of the runs' spaces (:func:`~harness.experiments.weight_sharing.thesis_protocol`),
    each with the spaces it is of, as Tables 4.4 and 4.5 name them: ``"NB201 (CIFAR10): 200 archs, ..."``."""
    by_protocol: dict[str, list[str]] = {}
    for run in runs:
        names = by_protocol.setdefault(ws.thesis_protocol(run.cfg.space), [])
        if run.search_space not in names:
            names.append(run.search_space)
    return "; ".join(f"{', '.join(names)}: {protocol}" for protocol, names in by_protocol.items())


def write_tables(run_dirs: Sequence[Path], out: Path, label: str = "") -> dict[str, Path]:
    """Tables 4.1, 4.2, 4.4, 4.5 (``tables.md``) and Figs. 4.6b and 4.8 of ``run_dirs`` into ``out``."""
    runs = [load_run(Path(p)) for p in run_dirs]
    if not runs:
        raise HarnessError("no run folders given")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sections = [f"# Weight-sharing tables{f': {label}' if label else ''}", "",
                "Runs: " + "; ".join(f"`{run.path.name}` ({run.algorithm}, {run.dataset}, {len(run.archs.indices)} archs, "
                                     f"seeds {run.seeds}, finetuning lr {run.cfg.finetune_lr:g})" for run in runs),
                "", f"Thesis columns: {thesis.SOURCE}, its protocol ({_protocols(runs)}); "
                "diff = ours - thesis; the best of ours per column in bold."]
    for name in ("4.1", "4.2"):
        if any(run.thesis_table == name for run in runs):
            sections += ["", f"## Table {name}", "", table_4_1(runs, name)]
    for name, text in (("Table 4.4", table_4_4(runs)), ("Table 4.5", table_4_5(runs))):
        sections += ["", f"## {name}", "", text if text is not None else "(needs SPOS runs" +
                     (" finetuned at lr 0.01 and 0.001 on the same supernets)" if name == "Table 4.4" else ")")]
    files = {"tables": out / "tables.md"}
    files["tables"].write_text("\n".join(sections) + "\n")
    table_runs = [run for run in runs if run.cfg.finetune_lr == ALGORITHMS[run.cfg.supernet.algorithm].finetune_lr
                  and _thesis_batch(run)]
    files["fig4.6b"] = figure_4_6b(table_runs or runs, out / "fig4.6b-sotl-by-algorithm")
    grid = finetuning_grid(runs)
    if grid:
        files["fig4.7"] = figure_4_7(grid, out / "fig4.7-finetuning-batch-and-lr")
    spos = [run for run in runs if run.cfg.supernet.algorithm == "spos"] or runs
    files["fig4.8"] = figure_4_8(spos[0], out / "fig4.8-finetuning-losses")
    return files
