"""Device-side augmentation equals NB201's torchvision pipeline (flip, zero-padded crop, normalise)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.data.formats import ImageSet
from harness.data.loader import DeviceImages
from harness.data.nb201 import dataset_info
from harness.errors import HarnessError


def _reference(image: np.ndarray, offset: tuple[int, int], flip: bool, pad: int, mean, std) -> np.ndarray:
    """torchvision order: RandomHorizontalFlip, RandomCrop(padding=pad, fill=0), ToTensor, Normalize."""
    x = image[:, :, ::-1] if flip else image
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    side = image.shape[-1]
    crop = padded[:, offset[0] : offset[0] + side, offset[1] : offset[1] + side].astype(np.float64) / 255
    return (crop - np.asarray(mean)[:, None, None]) / np.asarray(std)[:, None, None]


def test_gather_matches_reference_crop_and_flip() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 3, 32, 32), dtype=np.uint8)
    info = dataset_info("cifar10-valid")
    data = DeviceImages(ImageSet(images, np.arange(10)), info)
    index = np.array([3, 7, 7, 0])
    offsets, flips = data.draw_augmentation(np.random.default_rng(5), len(index))
    x, y = data.gather(data.to_device(index), data.to_device(offsets), data.to_device(flips))
    assert y.tolist() == index.tolist()
    for row, i in enumerate(index):
        # torchvision flips before cropping; flipping after a crop at the mirrored column offset is the same image
        mirrored = (offsets[row][0], 2 * info.crop_padding - offsets[row][1]) if flips[row] else tuple(offsets[row])
        expected = _reference(images[i], mirrored, bool(flips[row]), info.crop_padding, info.mean, info.std)
        np.testing.assert_allclose(x[row].numpy(), expected, atol=1e-5)


def test_unaugmented_batch_is_the_normalised_image() -> None:
    images = np.random.default_rng(1).integers(0, 256, (4, 3, 16, 16), dtype=np.uint8)
    info = dataset_info("ImageNet16-120")
    data = DeviceImages(ImageSet(images, np.arange(4)), info)
    x, _ = data.batch(np.arange(4))
    expected = _reference(images[2], (info.crop_padding, info.crop_padding), False, info.crop_padding, info.mean, info.std)
    np.testing.assert_allclose(x[2].numpy(), expected, atol=1e-5)


def test_draws_come_only_from_the_callers_generator() -> None:
    images = np.zeros((8, 3, 32, 32), dtype=np.uint8)
    data = DeviceImages(ImageSet(images, np.arange(8)), dataset_info("cifar10-valid"))
    before = torch.random.get_rng_state()
    a = data.draw_augmentation(np.random.default_rng(3), 8)
    b = data.draw_augmentation(np.random.default_rng(3), 8)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert torch.equal(before, torch.random.get_rng_state())
    assert a[0].min() >= 0 and a[0].max() <= 8


def _four_cifar_images() -> DeviceImages:
    return DeviceImages(ImageSet(np.zeros((4, 3, 32, 32), np.uint8), np.arange(4)), dataset_info("cifar10"))


@pytest.mark.parametrize("index", [[4], [-1], [1.7], [[0, 1]]])
def test_out_of_range_negative_or_float_index_is_refused_not_wrapped(index: list) -> None:
    with pytest.raises(HarnessError, match=r"1-D integer array with values in 0\.\.3"):
        _four_cifar_images().batch(np.array(index))


@pytest.mark.parametrize("batch_size", [0, 5, 2.0])
def test_batch_size_outside_1_to_split_size_is_refused(batch_size: object) -> None:
    with pytest.raises(HarnessError, match=r"batch_size must be an int in 1\.\.4"):
        _four_cifar_images().epoch_batches(np.random.default_rng(0), batch_size)


def test_gather_offsets_without_flips_is_refused() -> None:
    data = _four_cifar_images()
    with pytest.raises(HarnessError, match="offsets and flips together"):
        data.gather(torch.arange(2), torch.zeros((2, 2), dtype=torch.int64))


def test_images_of_another_side_than_the_dataset_info_are_refused() -> None:
    images = ImageSet(np.zeros((2, 3, 16, 16), np.uint8), np.arange(2))
    with pytest.raises(HarnessError, match="images are 16x16 but the dataset info is for 32x32"):
        DeviceImages(images, dataset_info("cifar10"))
