"""MoCo-v2 (Chen et al., 2020): a query encoder trained against a momentum key encoder and a queue of keys.

Shuffle-BN. MoCo computes the keys on a batch shuffled across GPUs so that a query and its key never
share BN statistics (which would let the network cheat through the batch statistics). Here the key batch
is gathered from every rank, permuted with a permutation shared by all ranks (seeded by (seed, step)),
split back, and each rank's part is further split into `moco.bn_splits` groups that are normalised
separately. On one process with `bn_splits=1` this degenerates to plain BN over the whole batch (no other
rank to shuffle with); `bn_splits=2` or more emulates the multi-GPU behaviour on one device.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from ..data.augment import sample_generator, view_augment
from .config import TrainConfig
from .distributed import all_gather_cat, rank, world_size
from .loss import info_nce_loss
from .networks import Encoder, freeze, momentum_update, unwrap
from .queue import EmbeddingQueue


class TwoViews:
    """MoCo-v2's two independently augmented views of each image."""

    def __init__(self, cfg: TrainConfig) -> None:
        d = cfg.data
        self.view = view_augment(d.augmentation, d.image_size, d.mean, d.std, blur_sigma=d.blur_sigma)

    def __call__(self, image: Tensor, g: torch.Generator) -> dict[str, Tensor]:
        return {"image": self.view(image, g), "key_image": self.view(image, g)}


class MocoObjective(nn.Module):
    """InfoNCE at temperature `moco.temperature` between queries and momentum keys, negatives the queue."""

    def __init__(self, encoder: Encoder, cfg: TrainConfig) -> None:
        super().__init__()
        self.model = encoder
        self.key_encoder = freeze(copy.deepcopy(encoder)).train()  # BN in train mode, as MoCo's encoder_k
        self.cfg, self.seed = cfg.moco, cfg.seed
        self.queue = EmbeddingQueue(self.cfg.queue_size, cfg.student.embed_dim, seed=cfg.seed)

    @torch.no_grad()
    def _keys(self, x: Tensor, step: int) -> Tensor:
        gathered, world, me = all_gather_cat(x), world_size(), rank()
        perm = torch.randperm(len(gathered), generator=sample_generator(self.seed, step, -1)).to(x.device)
        mine = gathered[perm].chunk(world)[me]
        k = torch.cat([self.key_encoder(part) for part in mine.chunk(self.cfg.bn_splits)])
        all_keys = all_gather_cat(k)
        return all_keys[torch.argsort(perm)].chunk(world)[me]

    def targets(self, batch: dict[str, Tensor]) -> None:
        """No part of a MoCo step is shared with another network (the key encoder is this run's own)."""
        return

    def compute(self, net: nn.Module, batch: dict[str, Tensor], step: int, targets: None = None) -> tuple[Tensor, Any]:
        q = net(batch["image"])
        with torch.no_grad():
            momentum_update(self.key_encoder, unwrap(net), self.cfg.momentum)
            k = self._keys(batch["key_image"], step)
        return info_nce_loss(q, k, self.queue.queue, self.cfg.temperature), k

    @torch.no_grad()
    def update(self, pending: Any) -> None:
        self.queue.enqueue(pending)

    def state(self) -> dict[str, Any]:
        return {"queue": self.queue.state_dict(), "key_encoder": self.key_encoder.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.queue.load_state_dict(state["queue"])
        self.key_encoder.load_state_dict(state["key_encoder"])
