"""A FIFO of L2-normalised embeddings: SEED's queue of teacher embeddings and MoCo's queue of keys."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import SeedzooError
from .distributed import all_gather_cat


class QueueSizeError(SeedzooError, ValueError):
    """The queue size is not a multiple of the global batch (each enqueue must fill whole slots)."""


def check_queue_size(size: int, global_batch: int) -> None:
    if global_batch <= 0 or size % global_batch:
        multiples = [global_batch * m for m in (max(1, size // global_batch), size // global_batch + 1) if m > 0]
        raise QueueSizeError(
            f"queue size {size} is not a multiple of the global batch {global_batch}: set the queue size to "
            f"a multiple, e.g. {' or '.join(str(m) for m in multiples)}, or change the global batch")


class EmbeddingQueue(nn.Module):
    """K x D rows, filled first-in first-out; `ptr` is the slot the next batch starts at.

    The initial rows are random unit vectors from a generator seeded by `seed`, so every rank of a
    distributed run starts from the same queue (the official code gives each rank its own). `enqueue`
    gathers the batch from every rank first, so all ranks keep identical queues.
    """

    queue: Tensor  # buffers, declared for type checkers (nn.Module types unknown attributes loosely)
    ptr: Tensor

    def __init__(self, size: int, dim: int, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("queue", F.normalize(torch.randn(size, dim, generator=g), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        return self.queue.shape[0]

    @torch.no_grad()
    def enqueue(self, keys: Tensor, gather: bool = True) -> None:
        """Write the L2-normalised `keys` (N x D, this rank's) at the pointer and advance it."""
        keys = F.normalize(keys.detach().float(), dim=1)
        if gather:
            keys = all_gather_cat(keys)
        n = keys.shape[0]
        check_queue_size(self.size, n)
        ptr = int(self.ptr)
        self.queue[ptr:ptr + n] = keys.to(self.queue.dtype)
        self.ptr.fill_((ptr + n) % self.size)

    def extra_repr(self) -> str:
        return f"size={self.queue.shape[0]}, dim={self.queue.shape[1]}"
