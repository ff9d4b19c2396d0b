"""Readers (and, for CIFAR, downloaders) of the official on-disk image formats NAS-Bench-201 uses.

* CIFAR-10 / CIFAR-100: torchvision's layout, i.e. the authors' python pickles
  ``cifar-10-batches-py/{data_batch_1..5,test_batch}`` (keys ``data``, ``labels``) and
  ``cifar-100-python/{train,test}`` (keys ``data``, ``fine_labels``). ``data`` is ``uint8 [N, 3072]``,
  each row one image stored channel-major (1024 red, 1024 green, 1024 blue values, row-major).
  Source: https://www.cs.toronto.edu/~kriz/cifar.html
* ImageNet16-120: the downsampled ImageNet of Chrabaszcz, Loshchilov & Hutter (2017) at 16x16, as
  NAS-Bench-201 uses it: pickles ``train_data_batch_1..10`` and ``val_data`` with ``data``
  (``uint8 [N, 768]``, channel-major like CIFAR) and ``labels`` (1-based class ids 1..1000).
  NB201 keeps the 120 classes with label <= 120 and shifts labels to 0..119 (Dong & Yang 2020, Sec. 3).

Every pickle is read through :func:`harness.safe_pickle.load_pickle`, an allow-list unpickler: a
file that tries to run code is refused, never executed. torchvision's ``CIFAR10`` class is not used:
it MD5-checks every batch, which is right for downloads (we do it too, on the archive) but refuses
faithful re-encodings such as the one built from JPEGs on machines without internet.
"""

from __future__ import annotations

import hashlib
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import HarnessError, choices
from harness.safe_pickle import load_pickle


@dataclass(frozen=True)
class ImageSet:
    """Images ``uint8 [N, 3, H, W]`` and labels ``int64 [N]``."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[1] != 3 or len(self.images) != len(self.labels):
            raise HarnessError(f"bad image set: images {self.images.shape}, labels {self.labels.shape}")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> ImageSet:
        return ImageSet(self.images[index], self.labels[index])


@dataclass(frozen=True)
class CifarSpec:
    folder: str
    archive: str
    url: str
    md5: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_key: str
    n_classes: int


CIFAR: dict[str, CifarSpec] = {
    "cifar10": CifarSpec(
        folder="cifar-10-batches-py",
        archive="cifar-10-python.tar.gz",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_files=("test_batch",),
        label_key="labels",
        n_classes=10,
    ),
    "cifar100": CifarSpec(
        folder="cifar-100-python",
        archive="cifar-100-python.tar.gz",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        md5="eb9058c3a382ffc7106e4002c42a8d85",
        train_files=("train",),
        test_files=("test",),
        label_key="fine_labels",
        n_classes=100,
    ),
}

IMAGENET16_FOLDER_NAMES = ("ImageNet16", "imagenet16", "ImageNet16-120")
IMAGENET16_TRAIN_FILES = tuple(f"train_data_batch_{i}" for i in range(1, 11))
IMAGENET16_VAL_FILE = "val_data"


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_cifar(name: str, root: Path) -> Path:
    """Download and unpack CIFAR ``name`` into ``root`` (checksum-checked); returns its folder.

    Skips the download when the folder is already there. The archive is fetched to a temp file,
    its MD5 compared with the official one, and only then unpacked.
    """
    spec = _cifar_spec(name)
    root = Path(root)
    folder = root / spec.folder
    if folder.is_dir():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        archive = Path(tmp) / spec.archive
        try:
            urllib.request.urlretrieve(spec.url, archive)  # fixed https URL of the dataset authors
        except OSError as err:
            raise HarnessError(
                f"cannot download {spec.url} ({err}); offline, pass a folder holding {spec.folder}/ as the data root"
            ) from err
        got = _md5(archive)
        if got != spec.md5:
            raise HarnessError(f"{spec.url}: MD5 {got} != official {spec.md5}; refusing the download")
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(tmp, filter="data")
        (Path(tmp) / spec.folder).rename(folder)
    return folder


def _cifar_spec(name: str) -> CifarSpec:
    if name not in CIFAR:
        raise choices("CIFAR dataset", name, CIFAR)
    return CIFAR[name]


def _str_keys(obj: object, path: Path) -> dict[str, object]:
    if not isinstance(obj, dict):
        raise HarnessError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def _read_batch(path: Path, label_key: str, side: int, label_offset: int = 0) -> ImageSet:
    if not path.is_file():
        raise HarnessError(f"missing data file {path}")
    record = _str_keys(load_pickle(path, encoding="latin1"), path)
    for key in ("data", label_key):
        if key not in record:
            raise HarnessError(f"{path}: no {key!r} entry (has {sorted(record)}); not a {label_key!r} batch file")
    data = np.asarray(record["data"])
    labels = np.asarray(record[label_key], dtype=np.int64) - label_offset
    pixels = 3 * side * side
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != pixels or len(data) != len(labels):
        raise HarnessError(
            f"{path}: data {data.dtype}{list(data.shape)} with {len(labels)} labels; expected uint8 [N, {pixels}]"
        )
    return ImageSet(data.reshape(-1, 3, side, side), labels)


def _concat(parts: list[ImageSet]) -> ImageSet:
    return ImageSet(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]))


def read_cifar(name: str, root: Path, train: bool) -> ImageSet:
    """CIFAR-10/100 train (50k) or test (10k) images from ``root/<official folder>``."""
    spec = _cifar_spec(name)
    folder = Path(root) / spec.folder
    if not folder.is_dir():
        raise HarnessError(
            f"no {spec.folder}/ under {root}; pass the folder holding it as --data-root, "
            f"or download it (online) with download_cifar({name!r}, root)"
        )
    files = spec.train_files if train else spec.test_files
    out = _concat([_read_batch(folder / f, spec.label_key, side=32) for f in files])
    if out.labels.min() < 0 or out.labels.max() >= spec.n_classes:
        raise HarnessError(f"{folder}: labels outside 0..{spec.n_classes - 1}")
    return out


def find_imagenet16(root: Path) -> Path:
    root = Path(root)
    for candidate in (root, *(root / n for n in IMAGENET16_FOLDER_NAMES)):
        if (candidate / IMAGENET16_VAL_FILE).is_file():
            return candidate
    raise HarnessError(
        f"no ImageNet16 data under {root}: expected {IMAGENET16_VAL_FILE} and "
        f"{IMAGENET16_TRAIN_FILES[0]}..10 in it or in one of {IMAGENET16_FOLDER_NAMES}"
    )


def read_imagenet16(root: Path, train: bool, n_classes: int = 120) -> ImageSet:
    """ImageNet16 train or val images restricted to classes 1..n_classes, labels shifted to 0-based."""
    folder = find_imagenet16(root)
    files = IMAGENET16_TRAIN_FILES if train else (IMAGENET16_VAL_FILE,)
    data = _concat([_read_batch(folder / f, "labels", side=16, label_offset=1) for f in files])
    keep = data.labels < n_classes
    if data.labels.min() < 0:
        raise HarnessError(f"{folder}: ImageNet16 labels must be 1-based")
    return data.subset(np.flatnonzero(keep))
