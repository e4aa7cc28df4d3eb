"""Per-epoch batch order that depends only on (seed, epoch): resuming mid-epoch replays it exactly."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochBatchSampler(Sampler[torch.Tensor]):
    """Yields index tensors, one per batch, of a seeded permutation, from batch ``start_batch`` on.

    Used with ``DataLoader(dataset, sampler=..., batch_size=None)`` so a whole batch is one gather.
    """

    def __init__(self, size: int, batch_size: int, seed: int, epoch: int, start_batch: int = 0) -> None:
        self.size = size
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = epoch
        self.start_batch = start_batch

    def __iter__(self) -> Iterator[torch.Tensor]:
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        order = torch.randperm(self.size, generator=generator)
        yield from order.split(self.batch_size)[self.start_batch :]

    def __len__(self) -> int:
        return max(0, batches_per_epoch(self.size, self.batch_size) - self.start_batch)


def epoch_seed(seed: int, epoch: int) -> int:
    """One seed per (run seed, epoch): for the epoch's order, and its DataLoader workers."""
    return seed * 1_000_003 + epoch


def batches_per_epoch(size: int, batch_size: int) -> int:
    return math.ceil(size / batch_size)
