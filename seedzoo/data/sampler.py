"""A distributed batch sampler that shuffles per (seed, epoch) and resumes mid-epoch.

Global batch b of an epoch is `perm[b * G:(b + 1) * G]` of one permutation shared by every rank; rank r
takes its contiguous slice. N processes with G / N images each therefore see exactly the batches of one
process with G images, in the same order (what makes a DDP run comparable to a single-process one).
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from .augment import sample_generator


class GlobalBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields this rank's part of each global batch as keys (epoch, index); drops the last partial batch."""

    def __init__(self, size: int, global_batch: int, rank: int = 0, world_size: int = 1, seed: int = 0) -> None:
        if global_batch % world_size:
            raise ValueError(f"global batch {global_batch} is not divisible by the {world_size} processes: "
                             "choose a global batch that is a multiple of the number of processes")
        if size < global_batch:
            raise ValueError(f"the data set has {size} images, fewer than one global batch ({global_batch}): "
                             "lower global_batch or use more data")
        self.size, self.global_batch, self.seed = size, global_batch, seed
        self.rank, self.world_size = rank, world_size
        self.local_batch = global_batch // world_size
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch's permutation; skip its first `start_batch` batches (mid-epoch resume)."""
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        return self.size // self.global_batch - self.start_batch

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        g = sample_generator(self.seed, self.epoch, -1)  # index -1: no sample's own stream
        perm = torch.randperm(self.size, generator=g).tolist()
        lo = self.rank * self.local_batch
        for b in range(self.start_batch, self.size // self.global_batch):
            batch = perm[b * self.global_batch:(b + 1) * self.global_batch]
            yield [(self.epoch, i) for i in batch[lo:lo + self.local_batch]]
