"""Inherited validation accuracy under the two BatchNorm readings: eval mode (the running statistics, what ValAcc
at step 0 and the quality gate read) and batch statistics (train-mode BN, no update), for every 10th arch of a run
folder's arch set, from its supernet checkpoint (run folders keep checkpoints; results folders do not). NAS-Bench-
1Shot1's one-shot model keeps running statistics with PyTorch momentum 0.997 (the official setting: practically the
last batch that ran the op, on whatever path ran it), so eval mode can sink an arch's accuracy that its weights do
not. From the repo root (DATA: the CIFAR-10 root):
    python3 results/ws-mini-cpu-table42/bn_statistics.py runs/ws-mini-cpu-table42/nb1shot1-1/spos DATA [SEED]
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

from harness.experiments.weight_sharing import arch_set
from harness.supernet.config import load_config
from harness.supernet.finetune import evaluate
from harness.supernet.spaces import get_space
from harness.supernet.train import checkpoint_path, cpu_threads, load_images, load_supernet

N_VALID = 1024


def main(folder: Path, data_root: str, seed: int) -> None:
    cfg = load_config(folder / "config.json")
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=data_root, limit_valid=N_VALID))
    space = get_space(cfg.space)
    archs = arch_set(cfg)
    device = torch.device("cpu")
    with cpu_threads(cfg):
        _, valid = load_images(cfg, device)
        supernet = load_supernet(checkpoint_path(folder, seed), cfg, device)
        readings: dict[str, list[float]] = {"eval mode (running statistics)": [], "batch statistics": []}
        for text in archs.arches[::10]:
            net = space.materialise_group(supernet, [space.decode(text)])
            with torch.no_grad():
                for reading, train_mode in zip(readings, (False, True)):
                    net.train(train_mode)
                    readings[reading].append(float(evaluate(net, valid, cfg)[0][0]))
    for reading, accuracies in readings.items():
        print(f"{folder} seed {seed}: inherited ValAcc, {reading}: mean {np.mean(accuracies):.1f} % "
              f"({len(accuracies)} archs, first {N_VALID} validation images)")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
