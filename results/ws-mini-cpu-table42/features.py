"""What SoTL and the truth each favour in the published Table 4.2 mini runs: per space, the Spearman
correlation of a few features of the sampled archs' cell with the truth and with -SoTL@100 (the estimator's
direction: a lower summed training loss ranks higher), per algorithm, mean over the reported supernet seeds.

Features. NB1Shot1 (the blocks that reach the output, as the supernet runs them): the number of conv3x3,
conv1x1 and maxpool blocks, the number of blocks run, and whether the cell input feeds the output directly
(the input -> output projection, the cell's shortcut). DARTS (the normal cell of the genotype): the number of
skip connections, of convolutions (sep and dil) and of pools, and how many of the 4 nodes take the cell's
inputs only (a shallow cell has many). From the repo root (ROOT: a run.sh output folder, after its reports;
default: this folder):
    python3 results/ws-mini-cpu-table42/features.py [ROOT]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

from harness.spaces.nb1shot1 import Config, search_space
from harness.supernet.nb1shot1_model import cell_plan
from harness.supernet.spaces import get_space

RESULTS = Path(__file__).resolve().parent
SUM_STEP = 100
UNIFORM = 2000  # configurations drawn uniformly from a whole NB1Shot1 space (seed 0), for the features' means there


def nb1shot1_features(space: str, arch: str) -> dict[str, float]:
    return config_features(get_space(space).decode(arch))


def config_features(config: Config) -> dict[str, float]:
    plan = cell_plan(config)
    ops = [op for op in plan.ops if op is not None]
    return {"conv3x3 blocks": ops.count("conv3x3-bn-relu"), "conv1x1 blocks": ops.count("conv1x1-bn-relu"),
            "maxpool blocks": ops.count("maxpool3x3"), "blocks run": len(ops),
            "input -> output shortcut": float(0 in plan.parents[-1])}


def darts_features(space: str, arch: str) -> dict[str, float]:
    normal = get_space(space).decode(arch).normal
    ops = [op for op, _ in normal]
    shallow = sum(all(src < 2 for _, src in normal[2 * node: 2 * node + 2]) for node in range(4))
    return {"skip connections": ops.count("skip_connect"), "convolutions": sum("conv" in op for op in ops),
            "pools": sum("pool" in op for op in ops), "nodes reading only the cell inputs": shallow}


def correlations(folder: Path, features: pd.DataFrame, archs: pd.DataFrame) -> dict[str, float]:
    """Spearman of each feature with -SoTL@SUM_STEP, mean over the folder's merged-log seeds."""
    per_seed = []
    for log in sorted(folder.glob("logs-seed*.parquet")):
        logs = pd.read_parquet(log)
        steps = logs[(logs.step >= 1) & (logs.step <= SUM_STEP)]
        sotl = steps.groupby("arch_index").train_loss.sum().loc[archs.arch_index].to_numpy()
        per_seed.append({name: spearmanr(-sotl, features[name]).statistic for name in features})
    return pd.DataFrame(per_seed).mean().to_dict()


def main(root: Path) -> None:
    for space_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in ("tables", "done")):
        space = space_dir.name
        folders = sorted(p for p in space_dir.iterdir() if any(p.glob("logs-seed*.parquet")))
        if not folders:
            continue
        archs = pd.read_csv(folders[0] / "archs.csv", dtype={"arch": str})
        describe = darts_features if space == "darts" else nb1shot1_features
        features = pd.DataFrame([describe(space, arch) for arch in archs.arch])
        columns = {"truth": {name: spearmanr(archs.truth, features[name]).statistic for name in features}}
        for folder in folders:
            columns[f"-SoTL@{SUM_STEP} {folder.name}"] = correlations(folder, features, archs)
        table = pd.DataFrame(columns)
        table.insert(0, "mean", features.mean())
        if space != "darts":  # the DARTS archs are a uniform draw already; NB1Shot1's are drawn among those with data
            uniform = search_space(get_space(space).number).sample(UNIFORM, seed=0)
            table.insert(1, "uniform mean", pd.DataFrame([config_features(c) for c in uniform]).mean())
        print(f"\n{space} ({len(archs)} archs): Spearman with the feature; 'mean': the feature's mean over the archs"
              + ("" if space == "darts" else f"; 'uniform mean': over {UNIFORM:,} configurations drawn uniformly from the space"))
        print("| feature | " + " | ".join(table.columns) + " |")
        print("|---|" + "---:|" * len(table.columns))
        for name, row in table.iterrows():
            print(f"| {name} | " + " | ".join(f"{value:.2f}" for value in row) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS)
