"""Tiny image datasets written in the official on-disk formats (CIFAR python batches, ImageNet16-120)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def write_cifar10(root: Path, n_train: int = 50, n_test: int = 20, seed: int = 0, bytes_keys: bool = True) -> np.ndarray:
    """CIFAR-10 python batches as the authors' files hold them: dict, uint8 [N, 3072] channel-major."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    images = rng.integers(0, 256, size=(n_train + n_test, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n_train + n_test)
    key = (lambda k: k.encode()) if bytes_keys else (lambda k: k)
    parts = np.array_split(np.arange(n_train), 5)
    for b, part in enumerate(parts, start=1):
        record = {key("data"): images[part].reshape(len(part), -1), key("labels"): labels[part].tolist(),
                  key("batch_label"): f"training batch {b} of 5"}
        (folder / f"data_batch_{b}").write_bytes(pickle.dumps(record, protocol=2))
    test = np.arange(n_train, n_train + n_test)
    record = {key("data"): images[test].reshape(n_test, -1), key("labels"): labels[test].tolist()}
    (folder / "test_batch").write_bytes(pickle.dumps(record, protocol=2))
    return images


def write_imagenet16(root: Path, per_file: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    folder = root / "ImageNet16"
    folder.mkdir(parents=True)
    all_images, all_labels = [], []
    for name in [f"train_data_batch_{i}" for i in range(1, 11)] + ["val_data"]:
        images = rng.integers(0, 256, size=(per_file, 768), dtype=np.uint8)
        labels = rng.integers(1, 1001, size=per_file)
        labels[:5] = [1, 120, 121, 1000, 60]
        (folder / name).write_bytes(pickle.dumps({"data": images, "labels": labels.tolist(), "mean": images.mean(0)}))
        all_images.append(images)
        all_labels.append(labels)
    return np.concatenate(all_images[:-1]), np.concatenate(all_labels[:-1])


def write_cifar100(root: Path, n_train: int = 12, n_test: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-100 python files ``train``/``test`` (keys ``data``, ``fine_labels``, ``coarse_labels``).

    Returns the train and test images ``uint8 [N, 3, 32, 32]``; fine label ``i % 100`` marks row ``i``.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    out = []
    for name, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
        record = {"data": images.reshape(n, -1), "fine_labels": [i % 100 for i in range(n)], "coarse_labels": [0] * n}
        (folder / name).write_bytes(pickle.dumps(record, protocol=2))
        out.append(images)
    return out[0], out[1]
