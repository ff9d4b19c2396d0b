"""Images held on the compute device, with NB201's augmentation done there too.

NB201 trains with ``RandomHorizontalFlip, RandomCrop(side, padding=p), ToTensor, Normalize(mean, std)``
(p = 4 for CIFAR, 2 for ImageNet16). Here the whole split sits on the device as ``uint8`` padded by p
with zeros (the same black border torchvision's crop adds), and a batch is one gather: crop offsets
and flips are folded into the row/column indices. The random draws (offsets, flips, sample order) come
from a caller-owned ``numpy.random.Generator``, so a run is reproducible across CPU and GPU and a
resumed run can recreate its streams exactly. No DataLoader workers, no per-image Python.

Index arrays are checked on the host where they enter (``check_index``, which ``batch`` applies;
``epoch_batches`` makes valid ones by construction), never in ``gather``: a check there would sync
the device every step, and an out-of-range index on CUDA is a device-side assert that kills the context.
"""

from __future__ import annotations

import numpy as np
import torch

from harness.data.formats import ImageSet
from harness.data.nb201 import DatasetInfo
from harness.errors import HarnessError
from harness.rng import is_int


class DeviceImages:
    """One split on ``device``; ``batch(index, rng)`` returns normalised float images and labels."""

    def __init__(self, data: ImageSet, info: DatasetInfo, device: torch.device | str = "cpu", channels_last: bool = False):
        self.side = data.images.shape[-1]
        if self.side != info.side:
            raise HarnessError(
                f"images are {self.side}x{self.side} but the dataset info is for {info.side}x{info.side} images; "
                "pass dataset_info() of the dataset the images come from"
            )
        self.device = torch.device(device)
        self.pad = info.crop_padding
        images = torch.from_numpy(np.ascontiguousarray(data.images)).to(self.device)
        self.padded = torch.nn.functional.pad(images, (self.pad,) * 4)  # uint8 [N, 3, side+2p, side+2p]
        self.labels = torch.from_numpy(data.labels).to(self.device)
        self.mean = torch.tensor(info.mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(info.std, device=self.device).view(1, 3, 1, 1)
        self.channels_last = channels_last
        self._grid = torch.arange(self.side, device=self.device)
        self._channels = torch.arange(3, device=self.device).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def draw_augmentation(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Crop offsets ``[n, 2]`` in ``0..2p`` and flip flags ``[n]`` for one batch, from ``rng``."""
        return rng.integers(0, 2 * self.pad + 1, size=(n, 2)), rng.random(n) < 0.5

    def gather(self, index: torch.Tensor, offsets: torch.Tensor | None = None, flips: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``index`` (device tensor), cropped at ``offsets`` and flipped where ``flips``.

        Without offsets and flips the images are centred (offset p) and unflipped, i.e. not augmented.
        All arguments live on the device, so a caller can transfer a whole run's draws at once; they
        are not checked here (see the module docstring): ``index`` must hold ints in ``0..len - 1``.
        """
        n = index.shape[0]
        if offsets is not None and flips is not None:
            rows = offsets[:, 0:1] + self._grid  # [n, side]
            cols = offsets[:, 1:2] + torch.where(flips[:, None], self.side - 1 - self._grid, self._grid)
        elif offsets is None and flips is None:
            rows = self.pad + self._grid.expand(n, self.side)
            cols = rows
        else:
            raise HarnessError("gather takes offsets and flips together (augmented) or neither (centred)")
        picked = self.padded[
            index.view(n, 1, 1, 1), self._channels, rows.view(n, 1, self.side, 1), cols.view(n, 1, 1, self.side)
        ]
        x = (picked.float() / 255.0 - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.labels[index]

    def batch(self, index: np.ndarray, rng: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``index``; augmented (random crop + flip drawn from ``rng``) when given, centred otherwise."""
        idx = self.to_device(self.check_index(index))
        if rng is None:
            return self.gather(idx)
        offsets, flips = self.draw_augmentation(rng, len(index))
        return self.gather(idx, self.to_device(offsets), self.to_device(flips))

    def check_index(self, index: np.ndarray) -> np.ndarray:
        """``index`` as ``int64``, checked on the host: a 1-D integer array with values in ``0..len - 1``."""
        index = np.asarray(index)
        integer = np.issubdtype(index.dtype, np.integer) and index.ndim == 1
        if not integer or np.any((index < 0) | (index >= len(self))):
            raise HarnessError(
                f"image index must be a 1-D integer array with values in 0..{len(self) - 1}; "
                f"got {index.dtype}{list(index.shape)} {np.ravel(index)[:8].tolist()}"
            )
        return index.astype(np.int64)

    def to_device(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    def epoch_batches(self, rng: np.random.Generator, batch_size: int) -> list[np.ndarray]:
        """A shuffled pass over the split, as index arrays of ``batch_size`` (the last partial batch is dropped)."""
        if not is_int(batch_size) or not 1 <= batch_size <= len(self):
            raise HarnessError(f"batch_size must be an int in 1..{len(self)} (the split's size), got {batch_size!r}")
        order = rng.permutation(len(self))
        stop = len(order) - len(order) % batch_size
        return [order[i : i + batch_size] for i in range(0, stop, batch_size)]
