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
from harness.data.formats import ImageSet, download_cifar, read_cifar, read_imagenet16
from harness.data.nb201 import dataset_info, halves, load_nb201, read_split_file
from harness.errors import HarnessError
from image_fixtures import write_cifar10, write_cifar100, write_imagenet16


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


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ({"train": [0.9, 1.7], "valid": [2.2, 3.0]}, "'train' must be a list of ints.*found 0.9"),  # was truncated to 0, 1
        ({"train": [False, True], "valid": [2, 3]}, "'train' must be a list of ints.*found False"),
        ({"train": ["0", "1"], "valid": [2, 3]}, "'train' must be a list of ints.*found '0'"),
        ({"train": ["str", [0, 1]], "valid": [2, 3]}, "'train' must be a list of ints.*found 'str'"),
        ({"train": [0, 1], "valid": 23}, "'valid' must be a list of ints.*found 23"),
        (5, "expected a JSON object"),
    ],
    ids=["floats", "bools", "strings", "wrong-tag", "number-value", "number-file"],
)
def test_split_file_with_non_int_indices_is_refused_not_truncated(tmp_path: Path, content: object, match: str) -> None:
    path = tmp_path / "split.json"
    path.write_text(json.dumps(content))
    with pytest.raises(HarnessError, match=f"split.json.*{match}"):
        halves(4, 0, path, ("train", "valid"))


def test_split_file_for_a_dataset_without_split_is_refused(tmp_path: Path) -> None:
    write_cifar10(tmp_path, n_train=6)
    path = tmp_path / "cifar-split.txt"
    path.write_text(json.dumps({"train": [0, 1, 2], "valid": [3, 4, 5]}))
    with pytest.raises(HarnessError, match="cifar10 has no split.*'cifar10-valid', 'cifar100', 'ImageNet16-120'"):
        load_nb201("cifar10", tmp_path, ("train", "test"), split_file=path)


def test_missing_split_file_is_named_even_when_its_halves_are_not_read(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    with pytest.raises(HarnessError, match="nope.json does not exist"):
        load_nb201("cifar10-valid", tmp_path, ("test",), split_file=tmp_path / "nope.json")


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        ([0.9] * 20, r"'labels' is float64\[20\]; expected 20 integer labels"),  # was truncated to class 0
        ([[1]] * 20, r"'labels' is int64\[20, 1\]"),
        (["a"] * 20, r"'labels' is <U1\[20\]"),
        ([3] * 19 + [10], "label 10 outside the valid 0..9"),
    ],
    ids=["float", "2d", "str", "class-10"],
)
def test_float_2d_or_out_of_range_labels_are_refused_not_cast(tmp_path: Path, labels: list, match: str) -> None:
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(pickle.dumps({"data": np.zeros((20, 3072), np.uint8), "labels": labels}))
    with pytest.raises(HarnessError, match=f"test_batch: {match}"):
        read_cifar("cifar10", tmp_path, train=False)


@pytest.mark.parametrize(
    ("n", "labels", "match"),
    [(3, [3, 5, 1001], "label 1001 outside the valid 1..1000"), (0, [], r"data uint8\[0, 768\]; expected uint8 \[N, 768\] with N >= 1")],
    ids=["label-1001", "empty"],
)
def test_imagenet16_label_above_1000_or_empty_file_is_refused(tmp_path: Path, n: int, labels: list, match: str) -> None:
    folder = tmp_path / "ImageNet16"
    folder.mkdir()
    (folder / "val_data").write_bytes(pickle.dumps({"data": np.zeros((n, 768), np.uint8), "labels": labels}))
    with pytest.raises(HarnessError, match=f"val_data: {match}"):
        read_imagenet16(tmp_path, train=False)


@pytest.mark.parametrize("n_classes", [0, 2000, 12.5])
def test_imagenet16_n_classes_outside_1_to_1000_is_refused(tmp_path: Path, n_classes: object) -> None:
    write_imagenet16(tmp_path)
    with pytest.raises(HarnessError, match=r"n_classes must be an int in 1\.\.1000"):
        read_imagenet16(tmp_path, train=False, n_classes=n_classes)


@pytest.mark.parametrize("labels", [np.zeros((2, 1), np.int64), np.array([0.5, 1.5])])
def test_image_set_with_2d_or_float_labels_is_refused(labels: np.ndarray) -> None:
    with pytest.raises(HarnessError, match=r"expected images \[N, 3, H, W\] and integer labels \[N\]"):
        ImageSet(np.zeros((2, 3, 4, 4), np.uint8), labels)


def _tar_of(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return buffer.getvalue()


def _serve(monkeypatch: pytest.MonkeyPatch, archive: bytes, official: bool) -> None:
    """Make download_cifar('cifar10') fetch ``archive``; ``official`` makes the spec's MD5 its MD5."""
    monkeypatch.setattr(formats.urllib.request, "urlretrieve", lambda url, dest: Path(dest).write_bytes(archive))
    if official:
        spec = formats.CIFAR["cifar10"]
        monkeypatch.setitem(formats.CIFAR, "cifar10", formats.CifarSpec(**{**spec.__dict__, "md5": hashlib.md5(archive).hexdigest()}))


def test_download_checks_md5_before_unpacking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cifar10(tmp_path / "src")
    archive = _tar_of(tmp_path / "src" / "cifar-10-batches-py")
    _serve(monkeypatch, archive, official=False)
    with pytest.raises(HarnessError, match="MD5"):
        download_cifar("cifar10", tmp_path / "bad")
    assert not (tmp_path / "bad" / "cifar-10-batches-py").exists()
    _serve(monkeypatch, archive, official=True)
    folder = download_cifar("cifar10", tmp_path / "good")
    assert len(read_cifar("cifar10", folder.parent, train=True)) == 50


def _tarfile_before_extraction_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    """tarfile as on Python < 3.10.12 / 3.11.4: no data_filter, and extractall takes no filter."""
    if hasattr(tarfile, "data_filter"):
        extractall = tarfile.TarFile.extractall
        monkeypatch.delattr(tarfile, "data_filter")
        monkeypatch.setattr(
            tarfile.TarFile, "extractall", lambda self, path=".", members=None: extractall(self, path, members, filter="fully_trusted")
        )


def test_download_unpacks_on_python_without_tar_filters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cifar10(tmp_path / "src")
    _serve(monkeypatch, _tar_of(tmp_path / "src" / "cifar-10-batches-py"), official=True)
    _tarfile_before_extraction_filters(monkeypatch)
    folder = download_cifar("cifar10", tmp_path / "data")
    assert len(read_cifar("cifar10", folder.parent, train=True)) == 50


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_unsafe_archive_member_is_refused_without_tar_filters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    write_cifar10(tmp_path / "src")
    target = tmp_path / "escaped"
    member = tarfile.TarInfo({"dotdot": "cifar-10-batches-py/../../escaped", "absolute": str(target), "symlink": "link"}[kind])
    if kind == "symlink":
        member.type, member.linkname = tarfile.SYMTYPE, str(target)
    else:
        member.size = 1
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        tar.addfile(member, io.BytesIO(b"x"))
    _serve(monkeypatch, buffer.getvalue(), official=True)
    _tarfile_before_extraction_filters(monkeypatch)
    with pytest.raises(HarnessError, match="refusing member"):
        download_cifar("cifar10", tmp_path / "data")
    assert not target.exists() and not (tmp_path / "data" / "cifar-10-batches-py").exists()


def test_offline_download_raises_harness_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, dest: str) -> None:
        raise OSError("Name or service not known")

    monkeypatch.setattr(formats.urllib.request, "urlretrieve", offline)
    with pytest.raises(HarnessError, match="data root"):
        download_cifar("cifar100", tmp_path)



def test_cifar_archives_are_the_official_urls_and_md5s() -> None:
    """Pitfall: a mistyped URL or MD5 only shows online; the values of https://www.cs.toronto.edu/~kriz/cifar.html."""
    assert (formats.CIFAR["cifar10"].url, formats.CIFAR["cifar10"].md5) == (
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a")
    assert (formats.CIFAR["cifar100"].url, formats.CIFAR["cifar100"].md5) == (
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85")


def _archive_with_escaping_member(src: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        member = tarfile.TarInfo("cifar-10-batches-py/../../escaped")
        member.size = 1
        tar.addfile(member, io.BytesIO(b"x"))
    return buffer.getvalue()


@pytest.mark.skipif(not hasattr(tarfile, "data_filter"), reason="needs tarfile extraction filters (Python >= 3.11.4)")
def test_escaping_archive_member_is_not_written_with_tar_filters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pitfall: extracting with a permissive filter writes '../..' members outside the temp folder."""
    write_cifar10(tmp_path / "src")
    _serve(monkeypatch, _archive_with_escaping_member(tmp_path / "src"), official=True)
    with pytest.raises((HarnessError, tarfile.TarError)):
        download_cifar("cifar10", tmp_path / "data")
    assert not (tmp_path / "data" / "escaped").exists() and not (tmp_path / "escaped").exists()
    assert not (tmp_path / "data" / "cifar-10-batches-py").exists()


@pytest.mark.skipif(not hasattr(tarfile, "data_filter"), reason="needs tarfile extraction filters (Python >= 3.11.4)")
def test_escaping_archive_member_raises_harness_error_with_tar_filters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pitfall: with tar extraction filters the refusal escaped as tarfile.OutsideDestinationError,
    a traceback in the CLI, where older Pythons gave the HarnessError of the manual check."""
    write_cifar10(tmp_path / "src")
    _serve(monkeypatch, _archive_with_escaping_member(tmp_path / "src"), official=True)
    with pytest.raises(HarnessError, match=r"refusing member '.*escaped'"):
        download_cifar("cifar10", tmp_path / "data")


def test_cifar10_test_part_is_the_test_batch_not_train_images(tmp_path: Path) -> None:
    """Pitfall: the 'test' part of cifar10 / cifar10-valid read from the training batches."""
    images = write_cifar10(tmp_path, n_train=10, n_test=6)
    for dataset in ("cifar10", "cifar10-valid"):
        parts = load_nb201(dataset, tmp_path, ("train", "test") if dataset == "cifar10" else ("test",))
        np.testing.assert_array_equal(parts["test"].images, images[10:])
    np.testing.assert_array_equal(load_nb201("cifar10", tmp_path, ("train",))["train"].images, images[:10])


def test_cifar100_official_split_file_picks_xvalid_as_valid_and_xtest_as_test(tmp_path: Path) -> None:
    """Pitfall: xvalid/xtest swapped, or the halves taken from the training set (NB201: halves of the test set)."""
    train, test = write_cifar100(tmp_path, n_train=12, n_test=8)
    path = tmp_path / "cifar100-test-split.txt"
    path.write_text(json.dumps({"xvalid": ["int", [1, 3, 4, 6]], "xtest": ["int", [0, 2, 5, 7]]}))
    parts = load_nb201("cifar100", tmp_path, ("train", "valid", "test"), split_file=path)
    np.testing.assert_array_equal(parts["train"].images, train)
    np.testing.assert_array_equal(parts["valid"].images, test[[1, 3, 4, 6]])
    np.testing.assert_array_equal(parts["test"].images, test[[0, 2, 5, 7]])
    assert parts["valid"].labels.tolist() == [1, 3, 4, 6] and parts["test"].labels.tolist() == [0, 2, 5, 7]


def _raw_imagenet16(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    record = pickle.loads((folder / name).read_bytes())
    return np.asarray(record["data"]), np.asarray(record["labels"])


def test_imagenet16_120_parts_train_from_train_batches_valid_test_halves_of_val(tmp_path: Path) -> None:
    """Pitfall: ImageNet16-120 valid/test halves cut from the train batches, or train read from val_data."""
    write_imagenet16(tmp_path)
    folder = tmp_path / "ImageNet16"
    val_images, val_labels = _raw_imagenet16(folder, "val_data")
    keep = np.flatnonzero(val_labels <= 120)  # NB201: classes 1..120 of the 1-based labels
    n = len(keep)
    valid_idx, test_idx = list(range(0, n, 2)), list(range(1, n, 2))
    path = tmp_path / "imagenet-16-120-test-split.txt"
    path.write_text(json.dumps({"xvalid": ["int", valid_idx], "xtest": ["int", test_idx]}))
    parts = load_nb201("ImageNet16-120", tmp_path, ("train", "valid", "test"), split_file=path)
    np.testing.assert_array_equal(parts["valid"].images.reshape(-1, 768), val_images[keep[valid_idx]])
    np.testing.assert_array_equal(parts["test"].images.reshape(-1, 768), val_images[keep[test_idx]])
    np.testing.assert_array_equal(parts["test"].labels, val_labels[keep[test_idx]] - 1)
    train = [_raw_imagenet16(folder, f"train_data_batch_{i}") for i in range(1, 11)]
    train_images, train_labels = np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train])
    np.testing.assert_array_equal(parts["train"].images.reshape(-1, 768), train_images[train_labels <= 120])
    seeded = load_nb201("ImageNet16-120", tmp_path, ("valid", "test"))  # no split file: seeded halves
    assert len(seeded["valid"]) == n // 2 and len(seeded["test"]) == n - n // 2
    both = np.concatenate([seeded["valid"].images, seeded["test"].images]).reshape(n, -1)
    assert sorted(map(bytes, both)) == sorted(map(bytes, val_images[keep]))


# NB201's own constants: xautodl/datasets/get_dataset_with_transform.py (get_datasets): per-channel RGB
# mean/std in 0..255 units divided by 255; RandomCrop(32, padding=4) for CIFAR, RandomCrop(16, padding=2)
# for ImageNet16; 10 / 100 / 120 classes.
NB201_TRANSFORMS = {
    "cifar10-valid": (10, 32, 4, (125.3, 123.0, 113.9), (63.0, 62.1, 66.7)),
    "cifar10": (10, 32, 4, (125.3, 123.0, 113.9), (63.0, 62.1, 66.7)),
    "cifar100": (100, 32, 4, (129.3, 124.1, 112.4), (68.2, 65.4, 70.4)),
    "ImageNet16-120": (120, 16, 2, (122.68, 116.66, 104.01), (63.22, 61.26, 65.09)),
}


@pytest.mark.parametrize("dataset", list(NB201_TRANSFORMS))
def test_normalisation_padding_and_classes_are_nb201s_in_rgb_order(dataset: str) -> None:
    """Pitfall: mean/std channels swapped (BGR), mean and std swapped, wrong crop padding or class count."""
    n_classes, side, padding, mean, std = NB201_TRANSFORMS[dataset]
    info = dataset_info(dataset)
    assert (info.n_classes, info.side, info.crop_padding) == (n_classes, side, padding)
    np.testing.assert_allclose(info.mean, [m / 255 for m in mean], rtol=1e-12)
    np.testing.assert_allclose(info.std, [s / 255 for s in std], rtol=1e-12)


def test_split_seed_changes_the_seeded_halves(tmp_path: Path) -> None:
    """Pitfall: split_seed ignored, so every 'different' seeded split is the same one."""
    write_cifar10(tmp_path, n_train=40)
    a = load_nb201("cifar10-valid", tmp_path, ("valid",), split_seed=0)["valid"].images.reshape(20, -1)
    b = load_nb201("cifar10-valid", tmp_path, ("valid",), split_seed=1)["valid"].images.reshape(20, -1)
    assert set(map(bytes, a)) != set(map(bytes, b))


def test_cifar10_valid_part_is_refused_not_silently_empty(tmp_path: Path) -> None:
    """NB201's cifar10 (full training) has no validation split; its 25k/25k split is cifar10-valid."""
    write_cifar10(tmp_path)
    with pytest.raises(HarnessError, match="cifar10 has no validation split; use cifar10-valid"):
        load_nb201("cifar10", tmp_path, ("train", "valid"))
