"""Image data readers on tiny datasets written in the official on-disk formats."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from harness.data import formats
from harness.data.formats import download_cifar, read_cifar, read_imagenet16
from harness.data.nb201 import halves, load_nb201, read_split_file
from harness.errors import HarnessError
from image_fixtures import write_cifar10, write_imagenet16


@pytest.mark.parametrize("bytes_keys", [True, False])
def test_cifar10_reads_channel_major_rows(tmp_path: Path, bytes_keys: bool) -> None:
    images = write_cifar10(tmp_path, bytes_keys=bytes_keys)
    train = read_cifar("cifar10", tmp_path, train=True)
    test = read_cifar("cifar10", tmp_path, train=False)
    assert train.images.shape == (50, 3, 32, 32) and test.images.shape == (20, 3, 32, 32)
    np.testing.assert_array_equal(train.images, images[:50])
    # row layout: the first 1024 values of a row are the red plane, row-major
    raw = pickle.loads((tmp_path / "cifar-10-batches-py" / "data_batch_1").read_bytes())
    row = raw[b"data" if bytes_keys else "data"][0]
    assert train.images[0, 0, 0, 1] == row[1] and train.images[0, 1, 0, 0] == row[1024]


def test_cifar100_uses_fine_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name, n in (("train", 12), ("test", 8)):
        record = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "fine_labels": list(range(100 - n, 100)),
                  "coarse_labels": [0] * n}
        (folder / name).write_bytes(pickle.dumps(record, protocol=2))
    parts = load_nb201("cifar100", tmp_path, ("train", "valid", "test"))
    assert len(parts["train"]) == 12 and len(parts["valid"]) == 4 and len(parts["test"]) == 4
    assert parts["train"].labels.max() == 99 and not set(parts["valid"].labels) & set(parts["test"].labels)


def test_imagenet16_keeps_120_classes_zero_based(tmp_path: Path) -> None:
    images, labels = write_imagenet16(tmp_path)
    train = read_imagenet16(tmp_path, train=True)
    keep = labels <= 120
    assert len(train) == keep.sum()
    np.testing.assert_array_equal(train.labels, labels[keep] - 1)
    np.testing.assert_array_equal(train.images.reshape(len(train), -1), images[keep])
    assert train.images.shape[1:] == (3, 16, 16) and train.labels.min() >= 0 and train.labels.max() <= 119


def test_malicious_pickle_is_refused_not_run(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps({"data": Evil()}))
    with pytest.raises(HarnessError, match="refusing to unpickle"):
        read_cifar("cifar10", tmp_path, train=True)
    assert not marker.exists()


def test_truncated_batch_and_missing_folder_raise(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="cifar-10-batches-py"):
        read_cifar("cifar10", tmp_path, train=True)
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(HarnessError):
        read_cifar("cifar10", tmp_path, train=True)
    with pytest.raises(HarnessError, match="valid"):
        read_cifar("svhn", tmp_path, train=True)


def test_cifar10_valid_halves_partition_the_training_set(tmp_path: Path) -> None:
    write_cifar10(tmp_path, n_train=40)
    parts = load_nb201("cifar10-valid", tmp_path)
    again = load_nb201("cifar10-valid", tmp_path)
    assert len(parts["train"]) == len(parts["valid"]) == 20
    np.testing.assert_array_equal(parts["train"].images, again["train"].images)  # seeded, reproducible
    full = read_cifar("cifar10", tmp_path, train=True).images.reshape(40, -1)
    both = np.concatenate([parts["train"].images, parts["valid"].images]).reshape(40, -1)
    assert sorted(map(bytes, both)) == sorted(map(bytes, full))


def test_official_split_file_format(tmp_path: Path) -> None:
    """NB201's cifar-split.txt: JSON whose values are ["int", [indices]]."""
    path = tmp_path / "cifar-split.txt"
    path.write_text(json.dumps({"train": ["int", [0, 2, 3]], "valid": ["int", [1, 4, 5]]}))
    train, valid = read_split_file(path, ("train", "valid"))
    assert train.tolist() == [0, 2, 3] and valid.tolist() == [1, 4, 5]
    write_cifar10(tmp_path, n_train=6)
    parts = load_nb201("cifar10-valid", tmp_path, split_file=path)
    np.testing.assert_array_equal(parts["valid"].images, read_cifar("cifar10", tmp_path, True).images[[1, 4, 5]])
    path.write_text(json.dumps({"train": [0, 1, 2], "valid": [2, 3, 4, 5]}))
    with pytest.raises(HarnessError, match="partition"):
        halves(6, 0, path, ("train", "valid"))


def _tar_of(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return buffer.getvalue()


def test_download_checks_md5_before_unpacking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cifar10(tmp_path / "src")
    archive = _tar_of(tmp_path / "src" / "cifar-10-batches-py")
    monkeypatch.setattr(formats.urllib.request, "urlretrieve", lambda url, dest: Path(dest).write_bytes(archive))
    with pytest.raises(HarnessError, match="MD5"):
        download_cifar("cifar10", tmp_path / "bad")
    assert not (tmp_path / "bad" / "cifar-10-batches-py").exists()
    spec = formats.CIFAR["cifar10"]
    monkeypatch.setitem(formats.CIFAR, "cifar10", formats.CifarSpec(**{**spec.__dict__, "md5": hashlib.md5(archive).hexdigest()}))
    folder = download_cifar("cifar10", tmp_path / "good")
    assert len(read_cifar("cifar10", folder.parent, train=True)) == 50


def test_offline_download_raises_harness_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, dest: str) -> None:
        raise OSError("Name or service not known")

    monkeypatch.setattr(formats.urllib.request, "urlretrieve", offline)
    with pytest.raises(HarnessError, match="data root"):
        download_cifar("cifar100", tmp_path)
