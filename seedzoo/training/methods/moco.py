"""MoCo-v2 (Chen et al., 2020): a query encoder trained against a momentum key encoder and a queue of keys.

Shuffle-BN. MoCo's BN statistics are per GPU (32 images of the batch of 256 on 8 GPUs), for queries and
keys alike, and the keys are computed on a batch shuffled across GPUs, so that a query and its key never
share BN statistics (which would let the network find the positive through the batch statistics). Here
the key batch is gathered from every rank, permuted with a permutation shared by all ranks (seeded by
(seed, step)) and split back; with `moco.bn_splits` > 1 every BatchNorm of *both* encoders normalises
each rank's batch in that many groups (`SplitBatchNorm2d`, as the MoCo CIFAR demo and lightly do), which
is what makes shuffle-BN meaningful on one process. With `bn_splits=1` on one process a query and its key
see the statistics of the same images.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, cast

import torch
import torch.nn.functional as F
from timm.layers import BatchNormAct2d
from torch import Tensor, nn

from ...data.augment import sample_generator
from ..config import TrainConfig
from ..distributed import all_gather_cat, rank, world_size
from ..loss import info_nce_loss
from ..networks import Encoder, ModuleT, freeze, momentum_update, unwrap
from ..queue import EmbeddingQueue
from ..views import MAIN, ViewSpec
from . import MemoryNeeds, Method, main_view, momentum_queue_problems, register_method

KEY = "key_image"  # the second view, through the momentum key encoder


def split_batch_norm_2d(bn: nn.BatchNorm2d, x: Tensor, splits: int) -> Tensor:
    """`bn` applied to `x` in training mode with statistics of `splits` groups of the batch (sample n in
    group n mod `splits`); the running statistics move by the mean of the groups' updates. In eval mode,
    or with `splits` 1, it is `bn` itself."""
    if splits == 1 or not bn.training:
        return nn.BatchNorm2d.forward(bn, x)
    n, c, h, w = x.shape
    if n % splits:
        raise ValueError(f"a batch of {n} images cannot be split into {splits} equal BN groups: make the "
                         f"per-process batch a multiple of moco.bn_splits={splits}")
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:  # cumulative average, as nn.BatchNorm2d
            factor = 1.0 / float(bn.num_batches_tracked)
    # BN holds both running statistics or neither
    running_mean, running_var = (bn.running_mean, bn.running_var) if bn.track_running_stats else (None, None)
    mean = None if running_mean is None else running_mean.repeat(splits)
    var = None if running_var is None else running_var.repeat(splits)
    weight = None if bn.weight is None else bn.weight.repeat(splits)
    bias = None if bn.bias is None else bn.bias.repeat(splits)
    out = F.batch_norm(x.reshape(n // splits, splits * c, h, w), mean, var, weight, bias, True, factor, bn.eps)
    if running_mean is not None and running_var is not None and mean is not None and var is not None:
        with torch.no_grad():
            running_mean.copy_(mean.view(splits, c).mean(0))
            running_var.copy_(var.view(splits, c).mean(0))
    return out.reshape(n, c, h, w)


class SplitBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training-mode statistics are those of `num_splits` groups of the batch."""

    num_splits: int = 1

    def forward(self, x: Tensor) -> Tensor:
        return split_batch_norm_2d(self, x, self.num_splits)


class SplitBatchNormAct2d(BatchNormAct2d):
    """timm's BatchNormAct2d (EfficientNet) with split statistics, then its dropout and activation."""

    num_splits: int = 1

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.drop(split_batch_norm_2d(self, x, self.num_splits)))


_SPLIT = {nn.BatchNorm2d: SplitBatchNorm2d, BatchNormAct2d: SplitBatchNormAct2d,
          SplitBatchNorm2d: SplitBatchNorm2d, SplitBatchNormAct2d: SplitBatchNormAct2d}


def split_batch_norm(model: ModuleT, splits: int) -> ModuleT:
    """Make every BatchNorm2d of `model` normalise in `splits` groups during training, in place.

    Each module keeps its parameters, buffers and state-dict keys (so checkpoints and exports are plain
    BN); only its class changes, to the split subclass. Raises for batch norms of another kind (1d, 3d,
    SyncBatchNorm), which MoCo's encoders do not have.
    """
    if splits < 1:
        raise ValueError(f"moco.bn_splits={splits}: use 1 (one BN group) or more")
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if type(m) not in _SPLIT:
                raise TypeError(f"moco.bn_splits={splits} cannot split '{name}' ({type(m).__name__}): "
                                "it splits nn.BatchNorm2d and timm's BatchNormAct2d; use moco.bn_splits=1")
            m.__class__ = _SPLIT[type(m)]
            cast("SplitBatchNorm2d | SplitBatchNormAct2d", m).num_splits = splits
    return model


class MocoObjective(nn.Module):
    """InfoNCE at temperature `moco.temperature` between queries and momentum keys, negatives the queue.
    An `Objective`."""

    def __init__(self, encoder: Encoder, cfg: TrainConfig) -> None:
        super().__init__()
        self.model = split_batch_norm(encoder, cfg.moco.bn_splits)  # queries: BN groups as the keys'
        self.key_encoder = freeze(copy.deepcopy(encoder)).train()  # BN in train mode, as MoCo's encoder_k
        self.cfg, self.seed = cfg.moco, cfg.seed
        self.queue = EmbeddingQueue(self.cfg.queue_size, cfg.student.embed_dim, seed=cfg.seed)

    @torch.no_grad()
    def _keys(self, x: Tensor, step: int) -> Tensor:
        gathered, world, me = all_gather_cat(x), world_size(), rank()
        perm = torch.randperm(len(gathered), generator=sample_generator(self.seed, step, -1)).to(x.device)
        k = self.key_encoder(gathered[perm].chunk(world)[me])  # split BN inside, as for the queries
        all_keys = all_gather_cat(k)
        return all_keys[torch.argsort(perm)].chunk(world)[me]

    def compute(self, net: nn.Module, views: Mapping[str, Tensor], step: int, targets: Mapping[str, Tensor],
                epoch: int = 0) -> tuple[Tensor, Any]:
        q = net(views[MAIN])
        with torch.no_grad():
            momentum_update(self.key_encoder, unwrap(net), self.cfg.momentum)
            k = self._keys(views[KEY], step)
        return info_nce_loss(q, k, self.queue.queue, self.cfg.temperature), k

    @torch.no_grad()
    def update(self, pending: Any) -> None:
        self.queue.enqueue(pending)

    def state(self) -> dict[str, Any]:
        return {"queue": self.queue.state_dict(), "key_encoder": self.key_encoder.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.queue.load_state_dict(state["queue"])
        self.key_encoder.load_state_dict(state["key_encoder"])


def views(cfg: TrainConfig) -> tuple[ViewSpec, ...]:
    """Two independently augmented views of each image: the query's and the key's."""
    return main_view(cfg), main_view(cfg, KEY)


def config_problems(cfg: TrainConfig, world_size: int) -> list[str]:
    m = cfg.moco
    out = momentum_queue_problems("moco", m.queue_size, m.temperature, m.momentum, cfg.global_batch)
    per_rank = cfg.global_batch // max(world_size, 1)
    if m.bn_splits < 1:
        out.append(f"moco.bn_splits={m.bn_splits}: must be >= 1")
    elif cfg.global_batch > 0 and per_rank % m.bn_splits:
        out.append(f"moco.bn_splits={m.bn_splits} does not divide the {per_rank} images per process: "
                   "use a divisor of global_batch / processes")
    elif cfg.global_batch > 0 and per_rank // m.bn_splits < 2:
        # a group of one image has no batch statistics where a feature map is 1x1 (torch raises there)
        out.append(f"moco.bn_splits={m.bn_splits} leaves {per_rank // m.bn_splits} image per BN group of the "
                   f"{per_rank} images per process: each group needs at least 2; use at most {per_rank // 2}")
    return out


def memory(cfg: TrainConfig) -> MemoryNeeds:
    # the key encoder is a fourth copy of the weights; the key view passes through it without gradients
    return MemoryNeeds(student_views=(MAIN,), weight_copies=4,
                       state_bytes=cfg.moco.queue_size * cfg.student.embed_dim * 4)


MOCO = register_method(Method(
    name="moco", trained_by="MoCo-v2", objective=MocoObjective, views=views, config_problems=config_problems,
    memory=memory, queues=("moco.queue_size",),
    summary="MoCo-v2: InfoNCE between queries and momentum keys, negatives a queue of keys"))
