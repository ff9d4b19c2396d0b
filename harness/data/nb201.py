"""NAS-Bench-201's dataset splits and normalisation (Dong & Yang 2020, Sec. 3 and its code release).

=================  ===========================  ===============================  ======================
dataset            train                        valid                            test
=================  ===========================  ===============================  ======================
cifar10-valid      25k of the 50k train images  the other 25k train images       the 10k test images
cifar10            all 50k train images         (none; NB201 reports ori-test)   the 10k test images
cifar100           all 50k train images         5k of the 10k test images        the other 5k (x-test)
ImageNet16-120     151.7k train images          3k of the 6k val images          the other 3k (x-test)
=================  ===========================  ===============================  ======================

The official halves come from NB201's split files (``cifar-split.txt`` with keys ``train``/``valid``;
``cifar100-test-split.txt`` and ``imagenet-16-120-test-split.txt`` with ``xvalid``/``xtest``). They are
JSON objects whose values are index lists, either bare or as ``["int", [...]]`` (NB201's config
format). Pass one as ``split_file`` to use the official halves. Without it the halves are a seeded
uniform permutation (first half train/valid, second half valid/test; ``split_seed``, default 0); the
run records which was used. The official index lists refer to the official sample order, so they
only make sense with the original files (not with a re-encoded copy whose order was lost).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.data.formats import ImageSet, read_cifar, read_imagenet16
from harness.errors import HarnessError, choices
from harness.rng import SPLIT, is_int, stream

DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
PARTS = ("train", "valid", "test")
SPLIT_FILE_DATASETS = ("cifar10-valid", "cifar100", "ImageNet16-120")  # the ones split in halves


@dataclass(frozen=True)
class DatasetInfo:
    n_classes: int
    side: int
    crop_padding: int
    mean: tuple[float, float, float]  # per channel, in [0, 1] pixel units
    std: tuple[float, float, float]


def _scaled(values: tuple[float, float, float]) -> tuple[float, float, float]:
    return tuple(v / 255 for v in values)  # type: ignore[return-value]


_CIFAR10 = (_scaled((125.3, 123.0, 113.9)), _scaled((63.0, 62.1, 66.7)))
_CIFAR100 = (_scaled((129.3, 124.1, 112.4)), _scaled((68.2, 65.4, 70.4)))
_IMAGENET16 = (_scaled((122.68, 116.66, 104.01)), _scaled((63.22, 61.26, 65.09)))

INFO: dict[str, DatasetInfo] = {
    "cifar10-valid": DatasetInfo(10, 32, 4, *_CIFAR10),
    "cifar10": DatasetInfo(10, 32, 4, *_CIFAR10),
    "cifar100": DatasetInfo(100, 32, 4, *_CIFAR100),
    "ImageNet16-120": DatasetInfo(120, 16, 2, *_IMAGENET16),
}


def dataset_info(dataset: str) -> DatasetInfo:
    if dataset not in INFO:
        raise choices("NB201 dataset", dataset, DATASETS)
    return INFO[dataset]


def read_split_file(path: Path, keys: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """The two index lists ``keys`` of an NB201 split file (JSON; values bare or ``["int", list]``)."""
    try:
        content = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise HarnessError(f"cannot read NB201 split file {path}: {err}") from err
    if not isinstance(content, dict):
        raise HarnessError(f"split file {path}: expected a JSON object with keys {keys}, got {type(content).__name__}")
    return _index_list(path, content, keys[0]), _index_list(path, content, keys[1])


def _index_list(path: Path, content: dict[str, object], key: str) -> np.ndarray:
    """``content[key]``: a list of ints, bare or in NB201's ``["int", [...]]`` form."""
    if key not in content:
        raise HarnessError(f"split file {path} has no {key!r} list (has {sorted(content)})")
    value = content[key]
    if isinstance(value, list) and len(value) == 2 and value[0] == "int" and isinstance(value[1], list):
        value = value[1]
    bad = [v for v in value if not is_int(v)] if isinstance(value, list) else [value]
    if bad:
        raise HarnessError(
            f"split file {path}: {key!r} must be a list of ints or [\"int\", [ints]]; found {bad[0]!r}"
        )
    return np.asarray(value, dtype=np.int64)


def halves(n: int, seed: int, split_file: Path | None, keys: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint index sets covering ``range(n)``: from the split file, or a seeded permutation."""
    if split_file is None:
        order = stream(SPLIT, seed).permutation(n)
        return np.sort(order[: n // 2]), np.sort(order[n // 2 :])
    first, second = read_split_file(split_file, keys)
    if not np.array_equal(np.sort(np.concatenate([first, second])), np.arange(n)):
        raise HarnessError(
            f"split file {split_file}: {keys} must partition range({n}) (each index exactly once); "
            f"got {len(first)} + {len(second)} indices"
        )
    return first, second


def load_nb201(
    dataset: str,
    root: Path,
    parts: tuple[str, ...] = ("train", "valid"),
    split_file: Path | None = None,
    split_seed: int = 0,
) -> dict[str, ImageSet]:
    """The requested ``parts`` of an NB201 dataset, read from ``root`` (see the module table)."""
    dataset_info(dataset)
    for part in parts:
        if part not in PARTS:
            raise choices("dataset part", part, PARTS)
    if dataset == "cifar10" and "valid" in parts:
        raise HarnessError("NB201's cifar10 has no validation split; use cifar10-valid (25k/25k of train)")
    if split_file is not None:
        if dataset not in SPLIT_FILE_DATASETS:
            raise HarnessError(f"{dataset} has no split, so it takes no split file; only {SPLIT_FILE_DATASETS} do")
        if not Path(split_file).is_file():
            raise HarnessError(f"split file {split_file} does not exist (or is not a file)")
    root = Path(root)
    out: dict[str, ImageSet] = {}
    if dataset.startswith("cifar10"):
        name = "cifar100" if dataset == "cifar100" else "cifar10"
        if dataset == "cifar10-valid" and {"train", "valid"} & set(parts):
            full = read_cifar(name, root, train=True)
            train, valid = halves(len(full), split_seed, split_file, ("train", "valid"))
            out.update(train=full.subset(train), valid=full.subset(valid))
        elif "train" in parts:
            out["train"] = read_cifar(name, root, train=True)
        if dataset == "cifar100" and {"valid", "test"} & set(parts):
            out.update(_valid_test_halves(read_cifar(name, root, train=False), split_seed, split_file))
        elif "test" in parts:
            out["test"] = read_cifar(name, root, train=False)
    else:
        if "train" in parts:
            out["train"] = read_imagenet16(root, train=True)
        if {"valid", "test"} & set(parts):
            out.update(_valid_test_halves(read_imagenet16(root, train=False), split_seed, split_file))
    return {p: out[p] for p in parts}


def _valid_test_halves(images: ImageSet, split_seed: int, split_file: Path | None) -> dict[str, ImageSet]:
    """NB201's x-valid / x-test: the two halves of a held-out set (cifar100, ImageNet16-120)."""
    valid, xtest = halves(len(images), split_seed, split_file, ("xvalid", "xtest"))
    return {"valid": images.subset(valid), "test": images.subset(xtest)}
