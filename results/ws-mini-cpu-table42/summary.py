"""Prints the summary table of results/ws-mini-cpu-table42/README.md from the published run folders: per space
and algorithm, the Spearman of SoTL@100, TLMini@0, ValAcc@0 and ValAccMini@1 with the truth, mean over the
reported supernet seeds [95% bootstrap CI], the thesis's Table 4.2 number beside each, the seeds, and the
supernet-quality gate (inherited ValAcc in eval mode, the inherited first-minibatch training loss in train mode).
From the repo root (ROOT: another folder of the same layout, e.g. the run folder runs/ws-mini-cpu-table42 before
it is published):
    python3 results/ws-mini-cpu-table42/summary.py [ROOT]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).resolve().parent
SPACES = {"nb1shot1-1": "NB101-1", "nb1shot1-2": "NB101-2", "nb1shot1-3": "NB101-3", "darts": "DARTS"}
ALGORITHMS = {"spos": "SPOS", "multipath": "MultiPath", "metaprox": "Metaprox"}
ESTIMATORS = ("SoTL", "TLMini", "ValAcc", "ValAccMini")


def _cell(row: pd.Series) -> str:
    return (f"{row.spearman_mean:.3f} [{row.spearman_ci_low:.3f}, {row.spearman_ci_high:.3f}] "
            f"({row.reference_spearman:.2f})")


def main(root: Path) -> None:
    header = [f"{name} @ {step}" for name, step in (("SoTL", 100), ("TLMini", 0), ("ValAcc", 0), ("ValAccMini", 1))]
    print("| space | algorithm | seeds | " + " | ".join(header) + " | inherited ValAcc %; first-minibatch loss |")
    print("|---|---|---|" + "---:|" * (len(header) + 1))
    for space, space_label in SPACES.items():
        for algorithm, label in ALGORITHMS.items():
            folder = root / space / algorithm
            if not (folder / "table.csv").is_file():
                print(f"| {space_label} | {label} | not run |" + " |" * (len(header) + 1))
                continue
            table = pd.read_csv(folder / "table.csv").set_index("estimator")
            quality = pd.read_csv(folder / "quality.csv")
            seeds = ",".join(str(int(s)) for s in quality.seed)
            gate = f"{quality.inherited_val_acc_mean.mean():.1f}; {quality.inherited_train_loss_mean.mean():.3f}"
            cells = " | ".join(_cell(table.loc[name]) for name in ESTIMATORS)
            print(f"| {space_label} | {label} | {seeds} | {cells} | {gate} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS)
