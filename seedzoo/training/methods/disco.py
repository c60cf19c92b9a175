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
serves every student of a cohort.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..loss import as_fp32, info_nce_loss, no_autocast


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

