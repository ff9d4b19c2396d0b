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


@pytest.mark.parametrize("dataset", ["cifar10", "ImageNet16-120"])
def test_crop_offsets_cover_0_to_2p_independently_and_half_are_flipped(dataset: str) -> None:
    """Pitfall: RandomCrop offsets drawn from 0..2p-1 (never the last), one offset for both axes, or a
    flip probability other than RandomHorizontalFlip's 0.5 (never / always flipped)."""
    info = dataset_info(dataset)
    side = info.side
    data = DeviceImages(ImageSet(np.zeros((2, 3, side, side), np.uint8), np.arange(2)), info)
    offsets, flips = data.draw_augmentation(np.random.default_rng(0), 4000)
    # torchvision RandomCrop: i, j uniform on 0..(side + 2p) - side, inclusive, drawn separately
    for axis in (0, 1):
        counts = np.bincount(offsets[:, axis], minlength=2 * info.crop_padding + 1)
        assert len(counts) == 2 * info.crop_padding + 1 and counts.min() > 0.5 * 4000 / len(counts)
    assert np.mean(offsets[:, 0] == offsets[:, 1]) < 0.5
    assert 0.45 < flips.mean() < 0.55


def test_augmented_batch_is_a_flip_and_crop_of_the_padded_image() -> None:
    """Through batch(rng): each output is, up to normalisation, a zero-padded crop of the image or of its mirror."""
    info = dataset_info("ImageNet16-120")
    p, side = info.crop_padding, info.side
    images = np.random.default_rng(2).integers(1, 256, (6, 3, side, side), dtype=np.uint8)
    data = DeviceImages(ImageSet(images, np.arange(6) + 10), info)
    x, y = data.batch(np.arange(6), np.random.default_rng(4))
    assert y.tolist() == list(range(10, 16))
    pixels = np.rint((x.numpy() * np.asarray(info.std)[:, None, None] + np.asarray(info.mean)[:, None, None]) * 255)
    flipped = 0
    for k in range(6):
        candidates = {}
        for flip in (False, True):
            padded = np.pad(images[k][:, :, ::-1] if flip else images[k], ((0, 0), (p, p), (p, p)))
            for i in range(2 * p + 1):
                for j in range(2 * p + 1):
                    if np.array_equal(padded[:, i : i + side, j : j + side], pixels[k]):
                        candidates[(flip, i, j)] = True
        assert len(candidates) == 1, k  # pixels are nonzero, so exactly one (flip, crop) explains the output
        flipped += next(iter(candidates))[0]
    assert 0 < flipped < 6  # rng seed 4 draws both flipped and unflipped images


def test_epoch_batches_are_a_shuffled_partition_without_the_partial_batch() -> None:
    """Pitfall: the last partial batch kept, overlapping batches, or the split not shuffled."""
    data = DeviceImages(ImageSet(np.zeros((10, 3, 32, 32), np.uint8), np.arange(10)), dataset_info("cifar10"))
    batches = data.epoch_batches(np.random.default_rng(0), 4)
    assert [len(b) for b in batches] == [4, 4]
    seen = np.concatenate(batches)
    assert len(set(seen.tolist())) == 8 and set(seen.tolist()) <= set(range(10))
    orders = {tuple(np.concatenate(data.epoch_batches(np.random.default_rng(s), 5)).tolist()) for s in range(5)}
    assert len(orders) > 1 and tuple(range(10)) not in orders


def test_channels_last_batch_has_channels_last_memory_and_same_values() -> None:
    images = np.random.default_rng(3).integers(0, 256, (3, 3, 32, 32), dtype=np.uint8)
    info = dataset_info("cifar10")
    plain, _ = DeviceImages(ImageSet(images, np.arange(3)), info).batch(np.arange(3))
    last, _ = DeviceImages(ImageSet(images, np.arange(3)), info, channels_last=True).batch(np.arange(3))
    assert last.is_contiguous(memory_format=torch.channels_last) and not plain.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_array_equal(last.numpy(), plain.numpy())
