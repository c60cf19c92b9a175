"""The objectives: SEED's soft cross-entropy against a queue of teacher embeddings, and MoCo's InfoNCE.

Both compute their logits, softmax and loss in fp32 with autocast disabled: with fp16 logits a teacher
temperature of 1e-4 quantises the teacher's logits in steps of 8 and below ~1.5e-5 overflows (NaN loss).
The losses of the other objectives (`training/methods/`) do the same, with `as_fp32` and `no_autocast`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def as_fp32(*tensors: Tensor) -> list[Tensor]:
    return [t.float() for t in tensors]


def no_autocast(device_type: str) -> torch.autocast:
    """Every objective computes its loss in fp32 (see the module's docstring)."""
    return torch.autocast(device_type=device_type, enabled=False)


def seed_logits(student: Tensor, teacher: Tensor, queue: Tensor) -> tuple[Tensor, Tensor]:
    """(student logits, teacher logits), both N x (1 + K), before any temperature.

    `student`, `teacher`: N x D embeddings before normalisation; `queue`: K x D, L2-normalised rows.
    Column 0 is the similarity to the teacher's embedding of the same image (1 on the teacher side,
    computed as the official code does), columns 1..K the similarities to the queue.
    """
    s = F.normalize(student, dim=1)
    t = F.normalize(teacher.detach(), dim=1)
    q = queue.detach()
    logit_s = torch.cat([(s * t).sum(1, keepdim=True), s @ q.T], dim=1)
    logit_t = torch.cat([(t * t).sum(1, keepdim=True), t @ q.T], dim=1)
    return logit_s, logit_t


def soft_cross_entropy(student_logits: Tensor, teacher_probs: Tensor) -> Tensor:
    """-sum_k p_k log softmax(s)_k, averaged over the batch."""
    return -(teacher_probs * F.log_softmax(student_logits, dim=1)).sum(dim=1).mean()


def seed_loss(student: Tensor, teacher: Tensor, queue: Tensor, student_temperature: float = 0.2,
              teacher_temperature: float = 1e-4) -> Tensor:
    """SEED's distillation loss (Fang et al., ICLR 2021), fp32 whatever the autocast state.

    Args:
        student: N x D student embeddings (projection-head output, not normalised).
        teacher: N x D teacher embeddings (not normalised); no gradient flows into them.
        queue: K x D L2-normalised teacher embeddings of earlier batches.
        student_temperature: tau_S (0.2 in the paper).
        teacher_temperature: tau_T; the official default 1e-4 makes the target one-hot (SEED then is
            InfoNCE against teacher embeddings); an independent reproduction uses 0.01.
    """
    with no_autocast(student.device.type):
        student, teacher, queue = as_fp32(student, teacher, queue)
        logit_s, logit_t = seed_logits(student, teacher, queue)
        probs_t = F.softmax(logit_t / teacher_temperature, dim=1)
        return soft_cross_entropy(logit_s / student_temperature, probs_t)


def info_nce_loss(query: Tensor, key: Tensor, queue: Tensor, temperature: float = 0.2) -> Tensor:
    """MoCo's InfoNCE: the positive is the key of the same image (column 0), negatives the queue.

    `query`, `key`: N x D (not normalised); `queue`: K x D L2-normalised rows. fp32 as `seed_loss`.
    """
    with no_autocast(query.device.type):
        query, key, queue = as_fp32(query, key, queue)
        q = F.normalize(query, dim=1)
        k = F.normalize(key.detach(), dim=1)
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.detach().T], dim=1) / temperature
        target = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
        return F.cross_entropy(logits, target)
