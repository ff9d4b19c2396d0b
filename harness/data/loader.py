"""Images held on the compute device, with NB201's augmentation done there too.

NB201 trains with ``RandomHorizontalFlip, RandomCrop(side, padding=p), ToTensor, Normalize(mean, std)``
(p = 4 for CIFAR, 2 for ImageNet16). Here the whole split sits on the device as ``uint8`` padded by p
with zeros (the same black border torchvision's crop adds), and a batch is one gather: crop offsets
and flips are folded into the row/column indices. The random draws (offsets, flips, sample order) come
from a caller-owned ``numpy.random.Generator``, so a run is reproducible across CPU and GPU and a
resumed run can recreate its streams exactly. No DataLoader workers, no per-image Python.
"""

from __future__ import annotations

import numpy as np
import torch

from harness.data.formats import ImageSet
from harness.data.nb201 import DatasetInfo


class DeviceImages:
    """One split on ``device``; ``batch(index, rng)`` returns normalised float images and labels."""

    def __init__(self, data: ImageSet, info: DatasetInfo, device: torch.device | str = "cpu", channels_last: bool = False):
        self.device = torch.device(device)
        self.pad = info.crop_padding
        self.side = data.images.shape[-1]
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

        Without offsets the images are centred (offset p) and unflipped, i.e. not augmented. All
        arguments live on the device, so a caller can transfer a whole run's draws at once.
        """
        n = index.shape[0]
        if offsets is None:
            rows = self.pad + self._grid.expand(n, self.side)
            cols = rows
        else:
            rows = offsets[:, 0:1] + self._grid  # [n, side]
            cols = offsets[:, 1:2] + torch.where(flips[:, None], self.side - 1 - self._grid, self._grid)
        picked = self.padded[
            index.view(n, 1, 1, 1), self._channels, rows.view(n, 1, self.side, 1), cols.view(n, 1, 1, self.side)
        ]
        x = (picked.float() / 255.0 - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.labels[index]

    def batch(self, index: np.ndarray, rng: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``index``; augmented (random crop + flip drawn from ``rng``) when given, centred otherwise."""
        idx = self.to_device(np.asarray(index, dtype=np.int64))
        if rng is None:
            return self.gather(idx)
        offsets, flips = self.draw_augmentation(rng, len(index))
        return self.gather(idx, self.to_device(offsets), self.to_device(flips))

    def to_device(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    def epoch_batches(self, rng: np.random.Generator, batch_size: int, drop_last: bool = True) -> list[np.ndarray]:
        """A shuffled pass over the split, as index arrays of ``batch_size``."""
        order = rng.permutation(len(self))
        stop = len(order) - len(order) % batch_size if drop_last else len(order)
        return [order[i : i + batch_size] for i in range(0, stop, batch_size)]
