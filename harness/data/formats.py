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
from pathlib import Path, PurePosixPath

import numpy as np

from harness.errors import HarnessError, choices
from harness.rng import is_int
from harness.safe_pickle import load_pickle


@dataclass(frozen=True)
class ImageSet:
    """Images ``uint8 [N, 3, H, W]`` and labels ``int64 [N]``."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if (
            images.ndim != 4
            or images.shape[1] != 3
            or labels.ndim != 1
            or not np.issubdtype(labels.dtype, np.integer)
            or len(images) != len(labels)
        ):
            raise HarnessError(
                f"bad image set: images {images.dtype}{list(images.shape)}, labels {labels.dtype}{list(labels.shape)}; "
                "expected images [N, 3, H, W] and integer labels [N]"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> ImageSet:
        return ImageSet(self.images[index], self.labels[index])

    def downsampled(self, factor: int) -> ImageSet:
        """Images shrunk ``factor`` times per side: each pixel the mean of a ``factor x factor`` block,
        rounded half to even, as ``uint8`` (the same labels). A side not divisible by it is refused."""
        n, channels, height, width = self.images.shape
        if not is_int(factor) or factor < 1 or height % factor or width % factor:
            raise HarnessError(f"cannot shrink {height}x{width} images by {factor!r}: the factor must divide both sides")
        blocks = self.images.reshape(n, channels, height // factor, factor, width // factor, factor)
        means = blocks.mean(axis=(3, 5), dtype=np.float64)
        return ImageSet(np.rint(means).astype(np.uint8), self.labels)


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
IMAGENET16_CLASSES = 1000  # labels in the files are 1-based: 1..1000


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
        _extract(archive, tmp)
        (Path(tmp) / spec.folder).rename(folder)
    return folder


def _extract(archive: Path, dest: str) -> None:
    """Unpack ``archive`` into ``dest``; no member may land outside it or be a link or device."""
    with tarfile.open(archive, "r:gz") as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
            try:
                tar.extractall(dest, filter="data")
            except tarfile.FilterError as err:
                raise HarnessError(
                    f"{archive}: refusing member {err.tarinfo.name!r} ({err}); only files and folders inside the "
                    "archive are allowed"
                ) from None
            return
        for member in tar.getmembers():
            name = PurePosixPath(member.name)
            if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
                raise HarnessError(
                    f"{archive}: refusing member {member.name!r}; only files and folders inside the archive are allowed"
                )
        tar.extractall(dest)


def _cifar_spec(name: str) -> CifarSpec:
    if name not in CIFAR:
        raise choices("CIFAR dataset", name, CIFAR)
    return CIFAR[name]


def _str_keys(obj: object, path: Path) -> dict[str, object]:
    if not isinstance(obj, dict):
        raise HarnessError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def _read_batch(path: Path, label_key: str, side: int, first_label: int, n_classes: int) -> ImageSet:
    """One batch file; its labels must be ints in ``first_label..first_label + n_classes - 1`` (shifted to 0-based)."""
    if not path.is_file():
        raise HarnessError(f"missing data file {path}")
    record = _str_keys(load_pickle(path, encoding="latin1"), path)
    for key in ("data", label_key):
        if key not in record:
            raise HarnessError(f"{path}: no {key!r} entry (has {sorted(record)}); not a {label_key!r} batch file")
    try:
        data, labels = np.asarray(record["data"]), np.asarray(record[label_key])
    except ValueError as err:  # a ragged list
        raise HarnessError(f"{path}: 'data' or {label_key!r} is not a rectangular array ({err})") from err
    pixels = 3 * side * side
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != pixels or len(data) == 0:
        raise HarnessError(f"{path}: data {data.dtype}{list(data.shape)}; expected uint8 [N, {pixels}] with N >= 1")
    if not np.issubdtype(labels.dtype, np.integer) or labels.shape != (len(data),):
        raise HarnessError(f"{path}: {label_key!r} is {labels.dtype}{list(labels.shape)}; expected {len(data)} integer labels")
    last = first_label + n_classes - 1
    outside = labels[(labels < first_label) | (labels > last)]
    if len(outside):
        raise HarnessError(f"{path}: label {outside[0]} outside the valid {first_label}..{last}")
    return ImageSet(data.reshape(-1, 3, side, side), labels.astype(np.int64) - first_label)


def _concat(parts: list[ImageSet]) -> ImageSet:
    return ImageSet(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]))


def read_cifar(name: str, root: Path, train: bool) -> ImageSet:
    """CIFAR-10/100 train (50k) or test (10k) images from ``root/<official folder>``."""
    spec = _cifar_spec(name)
    folder = Path(root) / spec.folder
    if not folder.is_dir():
        raise HarnessError(
            f"no {spec.folder}/ under {root}; pass the folder holding it as --data-root, "
            f"or fetch it (online) with 'harness ws ... --download' (in Python: download_cifar({name!r}, root))"
        )
    files = spec.train_files if train else spec.test_files
    return _concat([_read_batch(folder / f, spec.label_key, 32, 0, spec.n_classes) for f in files])


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
    if not is_int(n_classes) or not 1 <= n_classes <= IMAGENET16_CLASSES:
        raise HarnessError(
            f"n_classes must be an int in 1..{IMAGENET16_CLASSES} (ImageNet16's classes; NB201 uses 120), got {n_classes!r}"
        )
    folder = find_imagenet16(root)
    files = IMAGENET16_TRAIN_FILES if train else (IMAGENET16_VAL_FILE,)
    data = _concat([_read_batch(folder / f, "labels", 16, 1, IMAGENET16_CLASSES) for f in files])
    return data.subset(np.flatnonzero(data.labels < n_classes))
