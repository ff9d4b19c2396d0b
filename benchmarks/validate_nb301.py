"""How well does the embedded NB301 surrogate (backend A) rank real DARTS architectures?

Truth: the 500 DARTS-space architectures of NASLib's ``naslib-zc-nasbench301.json`` (embedded as
``harness/embedded/zc/nb301.parquet``) with their real, trained CIFAR-10 validation accuracy.
Score: backend A's predicted validation accuracy, at epoch 98 (the surrogate's "final" value) and at
every epoch 1..98. For reference, the same rank metrics for the parameter count and FLOPs of the same
table (the cheapest proxies there are).

Writes ``results/nb301-validation/summary.json``, ``per_epoch.csv`` and ``summary.md``.
Run: ``python benchmarks/validate_nb301.py [--out results/nb301-validation]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from harness.ranking import rank_metrics
from harness.registry import load_benchmark
from harness.zerocost import embedded_table

METRICS = ("spearman", "kendall", "top_k")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/nb301-validation"))
    args = parser.parse_args()

    table = embedded_table("nb301")
    truth = table["val_accuracy"].to_numpy()
    bench = load_benchmark("nb301")
    curves = bench.query(table["arch"].tolist(), "cifar10", "accuracy", "valid").values[:, 0, :]  # [archs, 98]

    per_epoch = rank_metrics(curves.T, truth, higher_is_better=True, metrics=METRICS, k=10)
    frame = pd.DataFrame({"epoch": np.arange(1, 99), **{m: per_epoch[m] for m in METRICS}})
    final = frame.iloc[-1]
    best = frame.loc[frame["spearman"].idxmax()]
    baselines = {
        name: {m: float(v) for m, v in rank_metrics(table[name].to_numpy(), truth, higher_is_better=True,
                                                     metrics=METRICS, k=10).items() if m in METRICS}
        for name in ("params", "flops")
    }
    summary = {
        "n_archs": int(len(truth)),
        "truth": "real CIFAR-10 validation accuracy (NASLib naslib-zc-nasbench301.json)",
        "surrogate_epoch_98": {m: float(final[m]) for m in METRICS},
        "surrogate_best_epoch": {"epoch": int(best["epoch"]), **{m: float(best[m]) for m in METRICS}},
        "mean_prediction_minus_truth_points": float(np.mean(curves[:, -1] - truth)),
        "mean_abs_error_points": float(np.mean(np.abs(curves[:, -1] - truth))),
        "true_top10_mean": float(np.sort(truth)[-10:].mean()),
        "baselines": baselines,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    frame.to_csv(args.out / "per_epoch.csv", index=False, float_format="%.4f")
    lines = [
        f"# NB301 surrogate (YAHPO ONNX, backend A) vs real validation accuracy, {len(truth)} archs",
        "",
        "| score | Spearman | Kendall tau-b | top-10 mean true acc |",
        "|---|---|---|---|",
        f"| surrogate, epoch 98 | {final['spearman']:.3f} | {final['kendall']:.3f} | {final['top_k']:.2f} |",
        f"| surrogate, epoch {int(best['epoch'])} (best epoch) | {best['spearman']:.3f} | {best['kendall']:.3f} | {best['top_k']:.2f} |",
        *(f"| {n} | {b['spearman']:.3f} | {b['kendall']:.3f} | {b['top_k']:.2f} |" for n, b in baselines.items()),
        "",
        f"Best possible top-10 mean: {summary['true_top10_mean']:.2f}. Mean prediction - truth at epoch 98: "
        f"{summary['mean_prediction_minus_truth_points']:+.2f} points (MAE {summary['mean_abs_error_points']:.2f}).",
    ]
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
