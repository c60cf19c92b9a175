"""DisCo (Gao et al., ECCV 2022; Yuting-Gao/DisCo-pytorch): MoCo-v2 on the student plus the squared
distance between the student's and the teacher's normalised embeddings, on both views.

As the authors' code (`DisCo/main.py` with `moco/builder_kq_mse_largeembedding_2048.py`, the commands of
their Reproduction.md): the student is a MoCo-v2 query encoder (momentum key encoder, queue of keys,
T = 0.2, m = 0.999) whose head is Linear(d, 2048) - ReLU - Linear(2048, 128) whatever the backbone's
width; the student's query encoder embeds both the query view and the key view, the teacher embeds both
views, and the loss is InfoNCE + sum ||q - t_q||^2 + sum ||q_k - t_k||^2 on normalised embeddings. The
distance terms are *sums* over the batch and the dimensions (`nn.MSELoss(reduction='sum')`), not means:
the code is followed, so their weight against InfoNCE grows with the per-process batch (the authors split
a batch of 256 over their GPUs). The authors' teacher runs with its BN in training mode (their loop sets
the whole model to train mode); seedzoo's teacher always runs in eval mode, so that one teacher pass
serves every student of a cohort. The MoCo-v2 part reads the `moco` section (its defaults are DisCo's);
`student.head_hidden=2048` gives the authors' head.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import TrainConfig
from ..loss import as_fp32, info_nce_loss, no_autocast
from ..networks import momentum_update, unwrap
from ..views import MAIN
from . import MemoryNeeds, Method, moco, register_method, same_width_problems


def embedding_distance_sum(student: Tensor, teacher: Tensor) -> Tensor:
    """sum_n || s_n/|s_n| - t_n/|t_n| ||^2 over the batch, fp32; no gradient into `teacher`."""
    with no_autocast(student.device.type):
        student, teacher = as_fp32(student, teacher)
        return (F.normalize(student, dim=1) - F.normalize(teacher.detach(), dim=1)).pow(2).sum()


def disco_loss(query: Tensor, key: Tensor, query_of_key_view: Tensor, teacher_query: Tensor,
               teacher_key: Tensor, queue: Tensor, temperature: float = 0.2) -> Tensor:
    """InfoNCE(query, key | queue) + the summed distances of the student's embeddings of both views to the
    teacher's. All N x D before normalisation but `queue` (K x D, normalised rows)."""
    return (info_nce_loss(query, key, queue, temperature) + embedding_distance_sum(query, teacher_query)
            + embedding_distance_sum(query_of_key_view, teacher_key))


class DiscoObjective(moco.MocoObjective):
    """MoCo-v2's objective plus the distances of the student's embeddings of both views to the teacher's.
    An `Objective`."""

    def compute(self, net: nn.Module, views: Mapping[str, Tensor], step: int, targets: Mapping[str, Tensor],
                epoch: int = 0) -> tuple[Tensor, Any]:
        q, q_of_key_view = net([views[MAIN], views[moco.KEY]])  # one forward for DDP; BN per view
        with torch.no_grad():
            momentum_update(self.key_encoder, unwrap(net), self.cfg.momentum)
            k = self._keys(views[moco.KEY], step)
        loss = disco_loss(q, k, q_of_key_view, targets[MAIN], targets[moco.KEY], self.queue.queue,
                          self.cfg.temperature)
        return loss, k


def teacher_views(cfg: TrainConfig) -> tuple[str, ...]:
    return (MAIN, moco.KEY)


def config_problems(cfg: TrainConfig, world_size: int) -> list[str]:
    return moco.config_problems(cfg, world_size) + same_width_problems(cfg, world_size)


def memory(cfg: TrainConfig) -> MemoryNeeds:
    # both views pass through the student with gradients; the key encoder is a fourth copy of the weights
    return MemoryNeeds(student_views=(MAIN, moco.KEY), weight_copies=4,
                       state_bytes=cfg.moco.queue_size * cfg.student.embed_dim * 4)


DISCO = register_method(Method(
    name="disco", trained_by="DisCo", objective=DiscoObjective, views=moco.views, needs_teacher=True,
    teacher_views=teacher_views, config_problems=config_problems, memory=memory,
    summary="DisCo: MoCo-v2 on the student plus its distance to the teacher's embeddings of both views"))
