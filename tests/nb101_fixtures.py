"""Generate NAS-Bench-101 ``.tfrecord`` fixtures in exactly the official format.

Built from the 1,000 real cells embedded in the package (harness/embedded/nb101/nb101-1k.csv):
REAL: module hash, pruned adjacency and ops, trainable parameters, the final validation accuracy of
repeat 0 at each budget (4/12/36/108) and the final training time of repeat 0 at 108 epochs.
SYNTHETIC (the real file has them, the embedded table does not): repeats 1 and 2, the halfway and
initial evaluations, train and test accuracies, training times at 4/12/36 epochs and total_time.
Every evaluation says which of its fields are real in its ``checkpoint_path`` (a field the official
file leaves blank), e.g. ``"fixture real=validation_accuracy synthetic=..."``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from harness.adapters.nb101 import embedded_table
from harness.adapters.nb101_tfrecord import EvaluationData, ModelMetrics, encode_record, write_tfrecord

BUDGETS = (4, 12, 36, 108)


def fixture_truth(n_cells: int | None = None, seed: int = 0, budgets: tuple[int, ...] = BUDGETS) -> pd.DataFrame:
    """One row per record (cell, budget, repeat) with every value the fixture file will hold."""
    table = embedded_table()
    if n_cells is not None:
        table = table.iloc[:n_cells]
    rng = np.random.default_rng(seed)
    rows = []
    for cell in table.itertuples(index=False):
        for budget in budgets:
            real_valid = getattr(cell, f"valid_{budget}")
            for repeat in range(3):
                valid = real_valid if repeat == 0 else float(np.clip(real_valid + rng.normal(0, 0.005), 0, 1))
                final_time = cell.time_108 * budget / 108 if budget != 108 or repeat else cell.time_108
                if repeat:
                    final_time *= 1 + rng.normal(0, 0.01)
                rows.append(
                    {
                        "hash": cell.hash,
                        "adjacency": cell.adjacency,
                        "operations": cell.operations,
                        "params": int(cell.params),
                        "budget": budget,
                        "repeat": repeat,
                        "final_valid": valid,
                        "final_train": float(min(1.0, valid + abs(rng.normal(0.05, 0.01)))),
                        "final_test": float(np.clip(valid + rng.normal(0, 0.003), 0, 1)),
                        "final_time": float(final_time),
                        "half_valid": float(valid * rng.uniform(0.8, 0.97)),
                        "half_train": float(valid * rng.uniform(0.8, 0.97)),
                        "half_test": float(valid * rng.uniform(0.8, 0.97)),
                        "half_time": float(final_time / 2 * rng.uniform(0.98, 1.02)),
                        "total_time": float(final_time * 1.1),
                        "valid_is_real": repeat == 0,
                        "time_is_real": repeat == 0 and budget == 108,
                    }
                )
    return pd.DataFrame(rows)


def _marker(real: list[str], synthetic: list[str]) -> str:
    return f"fixture real={','.join(real) or '-'} synthetic={','.join(synthetic)}"


def payloads(truth: pd.DataFrame) -> Iterator[bytes]:
    """The JSON record of every row of ``truth``, in row order."""
    acc = ["train_accuracy", "validation_accuracy", "test_accuracy"]
    for r in truth.itertuples(index=False):
        ops = r.operations.split(",")
        matrix = np.frombuffer(r.adjacency.encode(), dtype=np.uint8).reshape(len(ops), len(ops)) - ord("0")
        init = EvaluationData(0.0, 0.0, 0.1, 0.1, 0.1, _marker([], ["all"]))
        half = EvaluationData(float(r.budget // 2), r.half_time, r.half_train, r.half_valid, r.half_test, _marker([], ["all"]))
        real = (["validation_accuracy"] if r.valid_is_real else []) + (["training_time"] if r.time_is_real else [])
        synthetic = [f for f in ["training_time", *acc] if f not in real]
        final = EvaluationData(float(r.budget), r.final_time, r.final_train, r.final_valid, r.final_test, _marker(real, synthetic))
        metrics = ModelMetrics((init, half, final), r.params, r.total_time)
        yield encode_record(r.hash, r.budget, matrix, ops, metrics)


def write_fixture(path: Path, n_cells: int | None = None, seed: int = 0, budgets: tuple[int, ...] = BUDGETS) -> pd.DataFrame:
    """Write the fixture tfrecord to ``path``; returns the truth table (one row per record)."""
    truth = fixture_truth(n_cells, seed, budgets)
    write_tfrecord(path, payloads(truth))
    return truth
