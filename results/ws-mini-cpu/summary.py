"""Prints the summary table of results/ws-mini-cpu/README.md (and the README's "Weight sharing on NB201"
section) from the published run folders: per algorithm the Spearman of each estimator with the truth, mean
(std) over the reported supernet seeds [95% bootstrap CI], the thesis's SoTL, the supernet-quality gate, and
the Spearman of SoTL with the parameter count (Table 4.5's SoTL-P reading). From the repo root:
    python3 results/ws-mini-cpu/summary.py
"""

from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

from harness import load_benchmark

RESULTS = Path(__file__).resolve().parent
ALGORITHMS = {"spos": "SPOS", "fairnas": "FairNAS", "multipath": "MultiPath", "reptile": "Reptile", "metaprox": "Metaprox"}
ESTIMATORS = (("SoTL", 100), ("TLMini", 0), ("ValAcc", 0), ("ValAccMini", 1))


def _cell(row: pd.Series) -> str:
    return f"{row.spearman_mean:.3f} ({row.spearman_std:.3f}) [{row.spearman_ci_low:.3f}, {row.spearman_ci_high:.3f}]"


def main() -> None:
    tables = {a: pd.read_csv(RESULTS / a / "table.csv").set_index("estimator") for a in ALGORITHMS}
    quality = {a: pd.read_csv(RESULTS / a / "quality.csv") for a in ALGORITHMS}
    print("| | " + " | ".join(ALGORITHMS.values()) + " |")
    print("|---|" + "---:|" * len(ALGORITHMS))
    for estimator, step in ESTIMATORS:
        print(f"| {estimator} @ {step} | " + " | ".join(_cell(tables[a].loc[estimator]) for a in ALGORITHMS) + " |")
    print("| thesis SoTL (Table 4.1) | " + " | ".join(f"{tables[a].loc['SoTL'].reference_spearman:.2f}" for a in ALGORITHMS) + " |")
    print("| supernet final train loss; inherited ValAcc mean | " + " | ".join(
        f"{quality[a].final_train_loss.mean():.3f}; {quality[a].inherited_val_acc_mean.mean():.1f} %" for a in ALGORITHMS) + " |")
    bench, cells = load_benchmark("nb201"), []
    for a in ALGORITHMS:
        index = pd.read_csv(RESULTS / a / "archs.csv").arch_index.to_numpy()
        params = bench.query(index, "cifar10", "params", "cost", "200").values[:, 0, 0]
        rhos = []
        for seed in quality[a].seed:
            logs = pd.read_parquet(RESULTS / a / f"logs-seed{seed}.parquet")
            sotl = -logs[(logs.step >= 1) & (logs.step <= 100)].groupby("arch_index").train_loss.sum().loc[index].to_numpy()
            rhos.append(spearmanr(sotl, params).statistic)
        cells.append(f"{sum(rhos) / len(rhos):.3f}")
    print("| Spearman(SoTL, params), seed mean | " + " | ".join(cells) + " |")
    print()
    print("seeds:", {a: [int(s) for s in quality[a].seed] for a in ALGORITHMS})
    for run in sorted(RESULTS.glob("spos-*/table.csv")):
        table = pd.read_csv(run).set_index("estimator")
        print(f"{run.parent.name}: " + "; ".join(f"{e} {_cell(table.loc[e])}" for e, _ in ESTIMATORS if e in table.index))


if __name__ == "__main__":
    main()
