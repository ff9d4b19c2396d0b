"""The main job: zero-cost proxies, params and FLOPs against real accuracy, from embedded tables.

For each dataset of a NASLib zero-cost table (:mod:`harness.zerocost`) every static estimator (the
zero-cost proxies present, ``Params``, ``FLOPs``) is ranked against the table's final validation
accuracy: Spearman rho with a bootstrap 95% CI (archs resampled, seeded), Kendall tau-b, the mean true
accuracy of the estimator's top-k, and precision@k. Estimator inputs are found through
:func:`harness.metrics.required_columns`, the same path the correlation-vs-epoch runner uses. Rows are
sorted by Spearman rho, best first, within each dataset (datasets in the table's order).

Missing values: within a dataset only archs that have every estimator's value and the accuracy are
used, so all estimators are compared on the same archs; nothing is imputed. Each arch left out is
named in :attr:`Comparison.dropped` with the estimators that lack its value (NB201 cifar10 lacks
synflow for one arch), and counted in ``n_dropped``.

Published reference: for NB201, NAS-Bench-Suite-Zero's own Spearman rho per proxy and dataset
(Krishnakumar et al. 2022, Fig. 6; :func:`published_spearman`) is set beside ours in the columns
``nbsz_spearman`` and ``spearman_minus_nbsz`` (ours - theirs). No such figures are published for the
NB101 and NB301 tables, and their results have no reference columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd

from harness.errors import HarnessError, choices
from harness.metrics import get_estimator, required_columns
from harness.metrics.registry import Estimator
from harness.ranking import bootstrap, rank_metrics
from harness.zerocost import BENCHMARKS, VALID_SPLITS, ZeroCostBenchmark, open_zerocost, proxies_of

# Published Spearman rho per estimator (rows) and dataset (columns), under harness/embedded/reference/.
REFERENCE_FILES = {"nb201": "nbsz-fig6-nb201.csv"}
REFERENCE_SOURCE = "NAS-Bench-Suite-Zero (Krishnakumar et al. 2022), Fig. 6: 1,000 sampled archs, validation accuracy"


@dataclass(frozen=True)
class Comparison:
    """What :func:`compare_zero_cost` found.

    ``scores``: one row per (dataset, estimator), Spearman rho descending within each dataset.
    ``dropped``: one row per (dataset, arch) left out for a missing value: ``dataset``, the arch (NB201:
    ``index`` and ``arch_str``; every table: NASLib's key ``arch``) and ``missing``, the estimators
    without a value for it (comma-separated).
    ``reference``: the published figures of :func:`published_spearman`, None where none are published.
    """

    scores: pd.DataFrame
    dropped: pd.DataFrame
    reference: pd.DataFrame | None


def static_estimators(zc: ZeroCostBenchmark) -> list[Estimator]:
    """The zero-cost proxies the table holds, then Params and FLOPs."""
    return [get_estimator(p) for p in proxies_of(zc.frame)] + [get_estimator("Params"), get_estimator("FLOPs")]


def published_spearman(benchmark: str) -> pd.DataFrame | None:
    """NAS-Bench-Suite-Zero's published Spearman rho on ``benchmark``, or None where none is published.

    Columns ``dataset``, ``estimator`` (the harness's names), ``nbsz_spearman``. Source and caveats:
    ``harness/embedded/reference/ATTRIBUTION.md``.
    """
    if benchmark not in BENCHMARKS:
        raise choices("zero-cost benchmark", benchmark, BENCHMARKS)
    if benchmark not in REFERENCE_FILES:
        return None
    with resources.as_file(resources.files("harness.embedded") / "reference" / REFERENCE_FILES[benchmark]) as path:
        wide = pd.read_csv(path, comment="#")
    long = wide.melt(id_vars="estimator", var_name="dataset", value_name="nbsz_spearman")
    return long[["dataset", "estimator", "nbsz_spearman"]]


def compare_zero_cost(
    benchmark: str = "nb201",
    datasets: Sequence[str] | None = None,
    k: int = 10,
    n_boot: int = 1000,
    seed: int = 0,
    zc: ZeroCostBenchmark | None = None,
) -> Comparison:
    """Rank every static estimator against final validation accuracy, per dataset.

    ``scores`` columns: benchmark, dataset, estimator, higher_is_better, n_archs, n_dropped, spearman,
    spearman_ci_low, spearman_ci_high, kendall, k, top_k, precision_at_k, best_top_k (the mean of
    the k best true accuracies), and for NB201 nbsz_spearman and spearman_minus_nbsz.
    """
    zc = open_zerocost(benchmark) if zc is None else zc
    caps = zc.capabilities()
    datasets = list(caps.datasets) if datasets is None else list(datasets)
    for dataset in datasets:
        if dataset not in caps.datasets:
            raise choices(f"dataset of the {zc.name} table", dataset, caps.datasets)
    estimators = static_estimators(zc)
    rows, dropped = [], []
    all_archs = np.arange(caps.n_archs or 0)
    for dataset in datasets:
        truth_column = caps.column(dataset, "accuracy", VALID_SPLITS[zc.space], None)
        truth = zc.query(all_archs, dataset, "accuracy", truth_column.split).values[:, 0, 0]
        scores = {}
        for est in estimators:
            ((_, column),) = required_columns(est, zc, dataset).items()
            scores[est.name] = est(zc.query(all_archs, dataset, column.metric, column.split).values[:, 0, 0])
        in_dataset = ~np.isnan(truth)
        lacking = np.stack([np.isnan(values) for values in scores.values()])  # [estimators, archs]
        present = in_dataset & ~lacking.any(axis=0)
        if present.sum() < 3:
            raise HarnessError(f"{zc.name} {dataset}: only {int(present.sum())} archs have every value; a ranking needs 3")
        dropped += [{"dataset": dataset, "arch": zc.archs[row],
                     "missing": ", ".join(name for name, gone in zip(scores, lacking[:, row]) if gone)}
                    for row in np.flatnonzero(in_dataset & ~present)]
        # Estimators are oriented (negated when lower is better) so that one bootstrap call with the
        # same resamples serves them all.
        true = truth[present]
        oriented = np.stack([s[present] if e.higher_is_better else -s[present] for e, s in zip(estimators, scores.values())])
        m = rank_metrics(oriented, true, higher_is_better=True, k=k, metrics=("spearman", "kendall", "top_k", "precision_at_k"))
        lows, highs = bootstrap(oriented, true, "spearman", higher_is_better=True, n_boot=n_boot, seed=seed)
        best_top_k = float(np.sort(true)[-k:].mean())
        ranked = sorted(range(len(estimators)), key=lambda i: -m["spearman"][i])  # stable: ties keep the registry order
        for i in ranked:
            est = estimators[i]
            rows.append({
                "benchmark": benchmark, "dataset": dataset, "estimator": est.name,
                "higher_is_better": est.higher_is_better, "n_archs": int(m["n_archs"][i]),
                "n_dropped": int(in_dataset.sum() - present.sum()),
                "spearman": float(m["spearman"][i]), "spearman_ci_low": float(lows[i]), "spearman_ci_high": float(highs[i]),
                "kendall": float(m["kendall"][i]), "k": k, "top_k": float(m["top_k"][i]),
                "precision_at_k": float(m["precision_at_k"][i]), "best_top_k": best_top_k,
            })
    frame = pd.DataFrame(rows)
    reference = published_spearman(benchmark)
    if reference is not None:
        frame = frame.merge(reference, on=["dataset", "estimator"], how="left", validate="one_to_one")
        frame["spearman_minus_nbsz"] = frame["spearman"] - frame["nbsz_spearman"]
    return Comparison(frame, _dropped_table(zc, benchmark, dropped), reference)


def _dropped_table(zc: ZeroCostBenchmark, benchmark: str, dropped: list[dict[str, object]]) -> pd.DataFrame:
    """The dropped archs as a frame; NB201 archs also by official index and arch string."""
    frame = pd.DataFrame(dropped, columns=["dataset", "arch", "missing"])
    if zc.space == "nb201":
        names = zc.frame.drop_duplicates("arch").set_index("arch")[["index", "arch_str"]]
        frame = frame.join(names, on="arch")[["dataset", "index", "arch_str", "arch", "missing"]]
    return frame.assign(benchmark=benchmark)[["benchmark", *frame.columns]]
