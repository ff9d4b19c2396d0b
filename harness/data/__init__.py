"""Image datasets for weight-sharing runs: NB201's CIFAR-10/100 and ImageNet16-120.

Readers and splits are torch-free; :class:`harness.data.loader.DeviceImages` (torch) holds a split on
the compute device and augments there.
"""

from harness.data.formats import ImageSet, download_cifar, read_cifar, read_imagenet16
from harness.data.nb201 import DATASETS, dataset_info, load_nb201

__all__ = ["DATASETS", "ImageSet", "dataset_info", "download_cifar", "load_nb201", "read_cifar", "read_imagenet16"]
