"""BINGO (Xu et al., ICLR 2022; haohang96/bingo): bags of the teacher's nearest neighbours; the student
is pulled towards the teacher's embeddings of the image and of a neighbour from its bag.

As the authors' code (`compute_knn.py` + `clustering.knn`, `moco/builder.py`, `main_moco.py`, `utils.py`):
- bags: once per run, the k = 5 nearest neighbours of every training image (self excluded) by the
  teacher's L2-normalised pooled *backbone* features of a centre view, in eval mode;
- each step, per image, one neighbour drawn from its bag; the student embeds the query view of the
  image q, of the neighbour q_nb and a CutMix of the two query views q_mix (one mixing ratio per batch,
  alpha 2); the teacher embeds the key views of both, k and k_nb; the queue holds the teacher's k;
- every query has two positives, each scored as InfoNCE against the queue:
  loss = [w_o CE(q; k) + w_n CE(q; k_nb) + w_n CE(q_nb; k) + w_o CE(q_nb; k_nb)
          + lam CE(q_mix; k) + (1 - lam) CE(q_mix; k_nb)] / 3,
  with (w_o, w_n) = (0.5, 0.5), but (1, 0) in the first 11 epochs (the code's `epoch > 10`); lam is the
  area share of the image in the mix. The mixed query and the warm-up are in the code, not the paper.
The temperature is 0.2 in the authors' ResNet scripts (0.12 in their EfficientNet-B0 script). Their
teacher runs with BN in training mode (nothing sets it to eval); seedzoo's teacher runs in eval mode,
so that one teacher pass serves every student of a cohort. Self is removed from a bag by index, where
the authors drop the first neighbour found (the same unless an image has an exact duplicate).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...data.augment import sample_generator
from ..config import Problems, TrainConfig
from ..loss import as_fp32, no_autocast
from ..networks import Encoder
from ..queue import EmbeddingQueue
from ..views import MAIN, ViewSpec
from . import MemoryNeeds, Method, main_view, queue_problems, register_method, same_width_problems
from .moco import KEY

NEIGHBOUR, NEIGHBOUR_KEY = "neighbour_image", "neighbour_key_image"  # views of a neighbour from the bag


def multi_positive_info_nce(query: Tensor, positives: list[Tensor], weights: list[float], queue: Tensor,
                            temperature: float) -> Tensor:
    """sum_i w_i CE([q.p_i, q.queue] / T, 0): one InfoNCE per positive against the same negatives, fp32.

    `query` and each positive N x D before normalisation (no gradient into the positives); `queue` K x D
    normalised rows.
    """
    with no_autocast(query.device.type):
        query, queue = as_fp32(query, queue)
        q = F.normalize(query, dim=1)
        negatives = q @ queue.detach().T
        target = torch.zeros(len(q), dtype=torch.long, device=q.device)
        loss = q.new_zeros(())
        for positive, weight in zip(positives, weights):
            p = F.normalize(positive.detach().float(), dim=1)
            logits = torch.cat([(q * p).sum(1, keepdim=True), negatives], dim=1) / temperature
            loss = loss + weight * F.cross_entropy(logits, target)
        return loss


def bingo_loss(query: Tensor, neighbour_query: Tensor, mixed_query: Tensor, key: Tensor, neighbour_key: Tensor,
               queue: Tensor, temperature: float, own_weight: float, neighbour_weight: float,
               mix_ratio: float) -> Tensor:
    """BINGO's loss of one batch (see the module docstring). `mix_ratio`: the image's area share in the
    mixed query view."""
    positives = [key, neighbour_key]
    return (multi_positive_info_nce(query, positives, [own_weight, neighbour_weight], queue, temperature)
            + multi_positive_info_nce(neighbour_query, positives, [neighbour_weight, own_weight], queue, temperature)
            + multi_positive_info_nce(mixed_query, positives, [mix_ratio, 1 - mix_ratio], queue, temperature)) / 3


def bag_weights(epoch: int, weights: tuple[float, float], warmup_epochs: int) -> tuple[float, float]:
    """(own, neighbour) weights of epoch `epoch` (0-based): (1, 0) during the warm-up."""
    return (1.0, 0.0) if epoch < warmup_epochs else (float(weights[0]), float(weights[1]))


def cutmix(images: Tensor, others: Tensor, g: torch.Generator, alpha: float = 2.0) -> tuple[Tensor, float]:
    """`images` with one box of `others` pasted in, the same box for the whole batch (N x C x H x W), and
    the share of the area left to `images`. The box's area share is drawn from Beta(alpha, alpha), its
    centre uniformly, then clipped to the image (as the authors' `utils.cutmix`)."""
    rng = np.random.default_rng(int(torch.randint(2**62, (), generator=g)))
    height, width = images.shape[-2:]
    cut = float(np.sqrt(1.0 - rng.beta(alpha, alpha)))
    cut_h, cut_w = int(height * cut), int(width * cut)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    top, bottom = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
    left, right = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
    mixed = images.clone()
    mixed[..., top:bottom, left:right] = others[..., top:bottom, left:right]
    return mixed, 1.0 - float((bottom - top) * (right - left)) / (height * width)


class BingoObjective(nn.Module):
    """BINGO's loss against a queue of the teacher's keys. An `Objective`: the run makes the bags (its views
    of a neighbour ask for them), and the neighbour's views arrive with the image's."""

    def __init__(self, student: Encoder, cfg: TrainConfig) -> None:
        super().__init__()
        self.model = student
        self.cfg, self.seed = cfg.bingo, cfg.seed
        self.queue = EmbeddingQueue(self.cfg.queue_size, cfg.student.embed_dim, seed=cfg.seed)

    def compute(self, net: nn.Module, views: Mapping[str, Tensor], step: int, targets: Mapping[str, Tensor],
                epoch: int = 0) -> tuple[Tensor, Any]:
        c = self.cfg
        # one box and ratio per batch, from the step's own stream: the same on every rank and in a cohort
        mixed, ratio = cutmix(views[MAIN], views[NEIGHBOUR], sample_generator(self.seed, step, -2), c.cutmix_alpha)
        q, q_neighbour, q_mixed = net([views[MAIN], views[NEIGHBOUR], mixed])  # one forward for DDP
        own, neighbour = bag_weights(epoch, c.weights, c.warmup_epochs)
        k = targets[KEY]
        loss = bingo_loss(q, q_neighbour, q_mixed, k, targets[NEIGHBOUR_KEY], self.queue.queue, c.temperature,
                          own, neighbour, ratio)
        return loss, k

    @torch.no_grad()
    def update(self, pending: Any) -> None:
        self.queue.enqueue(pending)

    def state(self) -> dict[str, Any]:
        return {"queue": self.queue.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.queue.load_state_dict(state["queue"])


def views(cfg: TrainConfig) -> tuple[ViewSpec, ...]:
    """The query and key views of the image and of one neighbour from its bag (MoCo-v2's views)."""
    k = cfg.bingo.neighbours
    return (main_view(cfg), main_view(cfg, KEY), dataclasses.replace(main_view(cfg, NEIGHBOUR), neighbours=k),
            dataclasses.replace(main_view(cfg, NEIGHBOUR_KEY), neighbours=k))


def teacher_views(cfg: TrainConfig) -> tuple[str, ...]:
    return (KEY, NEIGHBOUR_KEY)


def config_problems(cfg: TrainConfig, world_size: int) -> list[str]:
    c = cfg.bingo
    out = Problems()
    out += queue_problems("bingo.queue_size", c.queue_size, cfg.global_batch)
    out.positive("bingo.temperature", c.temperature)
    out.positive("bingo.neighbours", c.neighbours, "must be > 0 (the size of each image's bag)")
    out.at_least("bingo.warmup_epochs", c.warmup_epochs, 0, "must be >= 0")
    out.positive("bingo.cutmix_alpha", c.cutmix_alpha)
    out.need(all(w >= 0 for w in c.weights), "bingo.weights", c.weights, "must be >= 0")
    return out + same_width_problems(cfg, world_size)


def config_warnings(cfg: TrainConfig) -> list[str]:
    c = cfg.bingo
    if c.warmup_epochs >= cfg.epochs and c.weights[1] > 0:
        return [f"bingo.warmup_epochs={c.warmup_epochs} is not below epochs={cfg.epochs}: the neighbour's weight "
                f"stays 0 for the whole run, so the bag's positives never count (only the CutMix query sees the "
                f"neighbour's key); lower bingo.warmup_epochs for a short run"]
    return []


def memory(cfg: TrainConfig) -> MemoryNeeds:
    # three batches through the student with gradients: the image's query, the neighbour's, their mix
    return MemoryNeeds(student_views=(MAIN, NEIGHBOUR, MAIN),
                       state_bytes=cfg.bingo.queue_size * cfg.student.embed_dim * 4)


def lineage(cfg: TrainConfig) -> dict[str, Any]:
    return {"temperature": cfg.bingo.temperature, "neighbours": cfg.bingo.neighbours}


BINGO = register_method(Method(
    name="bingo", trained_by="BINGO", objective=BingoObjective, views=views, needs_teacher=True,
    teacher_views=teacher_views, config_problems=config_problems, config_warnings=config_warnings, memory=memory,
    lineage=lineage,
    summary="BINGO: InfoNCE towards the teacher's keys of the image and of a neighbour from its teacher-kNN bag"))
