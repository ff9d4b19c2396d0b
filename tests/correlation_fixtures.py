"""Synthetic NB201 stores with learning curves, written directly with ``StoreWriter``.

Column naming follows the NB201 converter (``harness.adapters.nb201_convert``): datasets
``cifar10-valid`` etc., schedule ``"200"``/``"12"``, splits ``train``, ``x-valid``, ``ori-test``,
metrics ``loss``/``accuracy``, seeds as ints, epochs 1..T; ``ori-test`` of ``cifar10-valid`` is
evaluated only after the last epoch, so its column holds epoch T alone, as the converter writes the
official hp=200 files; params in split ``cost``.

For cifar100 and ImageNet16-120, as in NATS hp=200, ``x-valid`` holds only the last epoch and the
final test accuracy is ``x-test``.

Values: each arch has a latent quality q in [0, 1] (deterministic from ``seed``); its final test
accuracy is 50 + 45 q + noise, its training loss decays towards 2.3 (1 - q) + noise per seed, so
that SoTL ranks archs well but not perfectly. Seeds are ragged: arch i has seed 999 only if i % 3
!= 0 and seed 888 only if i % 7 != 0 (NaN otherwise), like the official files' missing seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.adapters.nb201 import embedded_table
from harness.benchmark import Column
from harness.store import StoreWriter

SEEDS = (777, 888, 999)


def run_config(**overrides: object) -> dict:
    """A correlation config (as parsed from TOML) over the fixture store: NB201 cifar10-valid, hp=200."""
    base = {
        "name": "test-run", "benchmark": "nb201", "dataset": "cifar10-valid", "schedule": "200",
        "estimators": ["SoTL", "SoTL-all", "ValAcc", "Params"],
        "sampling": {"n_archs": 50, "repetitions": 3, "seed": 0},
        "ranking": {"metrics": ["spearman", "kendall", "top_k", "precision_at_k"], "k": 5},
    }
    base.update(overrides)
    return base


def write_curve_store(
    dest: Path, n_epochs: int = 20, schedule: str = "200", dataset: str = "cifar10-valid", seed: int = 0,
    schedules: dict[str, int] | None = None,
) -> Path:
    """A store holding train/x-valid loss and accuracy curves, the final ori-test accuracy and params.

    ``schedules`` (schedule -> number of epochs) writes several schedules of the same archs (each a
    separate noisy run, as NB201's hp=12 and hp=200); default ``{schedule: n_epochs}``. Also
    ``cifar10/<schedule>/ori-test/accuracy`` at the last epoch (archs with q < 0.02 at 10 %).
    """
    arch_strs = embedded_table()["arch_str"].tolist()
    n = len(arch_strs)
    rng = np.random.default_rng(seed)
    quality = rng.random(n)
    present = np.ones((n, len(SEEDS)), dtype=bool)
    present[np.arange(n) % 7 == 0, 1] = False
    present[np.arange(n) % 3 == 0, 2] = False
    with StoreWriter(dest, benchmark="nb201", source="synthetic (tests/correlation_fixtures.py)") as writer:
        for hp, epochs_n in (schedules or {schedule: n_epochs}).items():
            _write_schedule(writer, rng, quality, present, dataset, hp, epochs_n)
        writer.add_table("archs", pd.DataFrame({"index": np.arange(n, dtype=np.int64), "arch_str": arch_strs}))
    return dest


def _write_schedule(writer: StoreWriter, rng: np.random.Generator, quality: np.ndarray, present: np.ndarray,
                    dataset: str, schedule: str, n_epochs: int) -> None:
    n = len(quality)
    epochs = tuple(range(1, n_epochs + 1))
    t = np.arange(1, n_epochs + 1) / n_epochs

    def column(split: str, metric: str, at: tuple[int, ...] = epochs) -> np.ndarray:
        return writer.add_column(Column(dataset, schedule, split, metric, SEEDS, at, metric == "loss"), n)

    base = 2.3 * (1.0 - quality)[:, None, None] + 0.1
    noise = rng.normal(0.0, 0.15, size=(n, len(SEEDS), 1)) + rng.normal(0.0, 0.02, size=(n, len(SEEDS), n_epochs))
    train_loss = (base + 2.0 * np.exp(-5 * t)[None, None, :]) * (1 + noise)
    val_loss = train_loss * 1.1 + rng.normal(0.0, 0.05, size=train_loss.shape)
    train_acc = 100.0 * (1.0 - train_loss / 4.5)
    val_acc = 100.0 * (1.0 - val_loss / 4.8)
    halves = dataset in ("cifar100", "ImageNet16-120")  # x-valid/x-test = halves of the test set
    last = (n_epochs,)
    for split, metric, values in (("train", "loss", train_loss), ("train", "accuracy", train_acc),
                                  ("x-valid", "loss", val_loss), ("x-valid", "accuracy", val_acc)):
        values = np.where(present[:, :, None], values, np.nan).astype(np.float32)
        if halves and split == "x-valid":  # as NATS hp=200: x-valid only at the last epoch
            column(split, metric, last)[...] = values[:, :, -1:]
        else:
            column(split, metric)[...] = values
    final = 50.0 + 45.0 * quality[:, None] + rng.normal(0.0, 1.5, size=(n, len(SEEDS)))
    column("x-test" if halves else "ori-test", "accuracy", last)[:, :, 0] = np.where(present, final, np.nan).astype(np.float32)
    # the full-training-set run: only its final test accuracy (what non_degenerate() reads);
    # archs with quality < 0.02 sit at chance (10 %), like NB201's disconnected cells
    cifar10 = writer.add_column(Column("cifar10", schedule, "ori-test", "accuracy", SEEDS, last, False), n)
    cifar10[:, :, 0] = np.where(present, np.where(quality[:, None] < 0.02, 10.0, final + 2.0), np.nan).astype(np.float32)
    params = writer.add_column(Column(dataset, schedule, "cost", "params", (), (), True), n)
    params[:, 0, 0] = (0.1 + quality + rng.normal(0, 0.3, n)).astype(np.float32)
