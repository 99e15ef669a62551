"""Training batches from an in-memory uint8 dataset (`course_lib.data.datasets.ImageData`)."""

from __future__ import annotations

import torch

from course_lib.core.errors import DataError
from course_lib.core.images import to_float
from course_lib.data.datasets import ImageData


class BatchLoader:
    """Shuffled minibatches from an in-memory uint8 dataset, addressed by a global batch index.

    Batch i comes from epoch i // batches_per_epoch, whose order is a permutation seeded by
    (seed, epoch). The loader therefore has no hidden state: resuming at batch i reproduces exactly
    the batches an uninterrupted run would have seen. With `on_device`, the uint8 set is copied to
    the device once and batches are converted there (no host-device copies per step).

    `flip`: random horizontal flips, one coin per image and epoch drawn with the permutation (so a
    batch stays a pure function of (seed, index)) and applied on the device. `channels_last`:
    batches come in NHWC memory layout (see course_lib.training.speed).
    """

    def __init__(
        self,
        data: ImageData,
        batch_size: int,
        seed: int = 0,
        device="cpu",
        on_device: bool = False,
        flip: bool = False,
        channels_last: bool = False,
    ):
        if batch_size < 1:
            raise DataError(f"batch size must be at least 1, got {batch_size}")
        if batch_size > len(data):
            raise DataError(f"batch size {batch_size} is larger than the dataset ({len(data)} images)")
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.device = torch.device(device)
        self.images = data.images.to(self.device) if on_device else data.images
        self.labels = None if data.labels is None else (data.labels.to(self.device) if on_device else data.labels)
        self.batches_per_epoch = len(data) // batch_size  # drop_last, so every batch has the same shape
        self.flip, self.channels_last = flip, channels_last
        self._epoch, self._perm, self._flips = -1, None, None

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(len(self.data), generator=gen).to(self.images.device)
            # Drawn after the permutation, so turning flips on leaves the order of the batches unchanged.
            self._flips = torch.rand(len(self.data), generator=gen).lt(0.5).to(self.device) if self.flip else None
            self._epoch = epoch
        return self._perm

    def flips(self, index: int) -> torch.Tensor | None:
        """Which images of batch `index` are mirrored (bool (batch_size,) on the device), or None without flips."""
        epoch, pos = divmod(index, self.batches_per_epoch)
        self._permutation(epoch)
        return None if self._flips is None else self._flips[pos * self.batch_size : (pos + 1) * self.batch_size]

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(images in [-1, 1] on the device, labels or None) for global batch `index`."""
        epoch, pos = divmod(index, self.batches_per_epoch)
        idx = self._permutation(epoch)[pos * self.batch_size : (pos + 1) * self.batch_size]
        x = self.images[idx]
        non_blocking = x.device.type == "cpu" and self.device.type == "cuda"
        if non_blocking:
            x = x.pin_memory()
        x = to_float(x.to(self.device, non_blocking=non_blocking))
        if self.flip:  # mirror the chosen images along the width axis, on the device
            x = torch.where(self.flips(index).view(-1, 1, 1, 1), x.flip(3), x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = None if self.labels is None else self.labels[idx].to(self.device)
        return x, y
