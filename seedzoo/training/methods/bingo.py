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

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..loss import as_fp32, no_autocast

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

