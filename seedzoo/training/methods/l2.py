"""L2: the student's embedding pulled onto the teacher's, both L2-normalised (the simplest distillation
strategy SEED's paper compares against, Fang et al., ICLR 2021, section 4)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..loss import as_fp32, no_autocast


def normalised_l2_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """mean_n || s_n/|s_n| - t_n/|t_n| ||^2 (= 2 - 2 cos(s_n, t_n)), fp32; no gradient flows into `teacher`.

    `student`, `teacher`: N x D embeddings before normalisation.
    """
    with no_autocast(student.device.type):
        student, teacher = as_fp32(student, teacher)
        s = F.normalize(student, dim=1)
        t = F.normalize(teacher.detach(), dim=1)
        return (s - t).pow(2).sum(dim=1).mean()

