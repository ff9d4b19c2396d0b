"""The main job: zero-cost proxies, params and FLOPs against real accuracy, from embedded tables.

For each dataset of a NASLib zero-cost table (:mod:`harness.zerocost`) every static estimator (the
zero-cost proxies present, ``Params``, ``FLOPs``) is ranked against the table's final validation
accuracy: Spearman rho with a bootstrap 95% CI (archs resampled, seeded), Kendall tau-b, the mean true
accuracy of the estimator's top-k, and precision@k. Estimator inputs are found through
:func:`harness.metrics.required_columns`, the same path the correlation-vs-epoch runner uses.

Missing values: within a dataset only archs that have every estimator's value and the accuracy are
used, so all estimators are compared on the same archs; the number dropped is reported in
``n_dropped`` (NB201 cifar10 lacks synflow for one arch).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from harness.errors import HarnessError, choices
from harness.metrics import get_estimator, required_columns
from harness.metrics.registry import Estimator
from harness.ranking import bootstrap, rank_metrics
from harness.zerocost import VALID_SPLITS, ZeroCostBenchmark, open_zerocost, proxies_of

def static_estimators(zc: ZeroCostBenchmark) -> list[Estimator]:
    """The zero-cost proxies the table holds, then Params and FLOPs."""
    return [get_estimator(p) for p in proxies_of(zc.frame)] + [get_estimator("Params"), get_estimator("FLOPs")]


def compare_zero_cost(
    benchmark: str = "nb201",
    datasets: Sequence[str] | None = None,
    k: int = 10,
    n_boot: int = 1000,
    seed: int = 0,
    zc: ZeroCostBenchmark | None = None,
) -> pd.DataFrame:
    """One row per (dataset, estimator): spearman, its CI, kendall, top_k, precision_at_k, n_archs."""
    zc = open_zerocost(benchmark) if zc is None else zc
    caps = zc.capabilities()
    datasets = list(caps.datasets) if datasets is None else list(datasets)
    for dataset in datasets:
        if dataset not in caps.datasets:
            raise choices(f"dataset of the {zc.name} table", dataset, caps.datasets)
    estimators = static_estimators(zc)
    rows = []
    all_archs = np.arange(caps.n_archs or 0)
    for dataset in datasets:
        truth_column = caps.column(dataset, "accuracy", VALID_SPLITS[zc.space], None)
        truth = zc.query(all_archs, dataset, "accuracy", truth_column.split).values[:, 0, 0]
        scores = {}
        for est in estimators:
            (signal, column), = required_columns(est, zc, dataset).items()
            scores[est.name] = est(zc.query(all_archs, dataset, column.metric, column.split).values[:, 0, 0])
        present = ~np.isnan(truth)
        in_dataset = int(present.sum())
        for values in scores.values():
            present &= ~np.isnan(values)
        if present.sum() < 3:
            raise HarnessError(f"{zc.name} {dataset}: only {int(present.sum())} archs have every value; a ranking needs 3")
        # Estimators are oriented (negated when lower is better) so that one bootstrap call with the
        # same resamples serves them all.
        true = truth[present]
        oriented = np.stack([s[present] if e.higher_is_better else -s[present] for e, s in zip(estimators, scores.values())])
        m = rank_metrics(oriented, true, higher_is_better=True, k=k, metrics=("spearman", "kendall", "top_k", "precision_at_k"))
        lows, highs = bootstrap(oriented, true, "spearman", higher_is_better=True, n_boot=n_boot, seed=seed)
        best_top_k = float(np.sort(true)[-k:].mean())
        for i, est in enumerate(estimators):
            rows.append({
                "benchmark": benchmark, "dataset": dataset, "estimator": est.name,
                "higher_is_better": est.higher_is_better, "n_archs": int(m["n_archs"][i]),
                "n_dropped": in_dataset - int(present.sum()),
                "spearman": float(m["spearman"][i]), "spearman_ci_low": float(lows[i]), "spearman_ci_high": float(highs[i]),
                "kendall": float(m["kendall"][i]), "k": k, "top_k": float(m["top_k"][i]),
                "precision_at_k": float(m["precision_at_k"][i]), "best_top_k": best_top_k,
            })
    return pd.DataFrame(rows)
