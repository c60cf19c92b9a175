"""CompRess-2q (Abbasi Koohpayegani et al., NeurIPS 2020; UMBCvision/CompRess): the student matches the
teacher's similarity distribution over anchors, each network against its own anchor queue.

As the authors' code (`nn/compress_loss.py` `CompReSSMomentum`, `train_student.py`): teacher, student and
the student's momentum copy see the same view; with L2-normalised embeddings t, s and anchor queues
A_t (the teacher's earlier embeddings) and A_s (the momentum student's earlier embeddings),
p_t = softmax(A_t t / T), p_s = softmax(A_s s / T), and the loss is KL(p_t || p_s) averaged over the
batch, T = 0.04 for both. The current batch is not among the anchors (the queues are read before the
batch is enqueued). The student's queue holds embeddings of a momentum copy of the student (m = 0.999,
its BN in training mode), as in `train_student.py`, the script the authors' README trains with. The
anchor queues start as random unit vectors (the authors': uniform in +-sqrt(3 / D), of norm about 1);
both are replaced by embeddings after `compress.queue_size / global_batch` steps.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..loss import as_fp32, no_autocast


def compress_loss(student: Tensor, teacher: Tensor, student_anchors: Tensor, teacher_anchors: Tensor,
                  temperature: float = 0.04) -> Tensor:
    """KL(softmax(A_t t / T) || softmax(A_s s / T)), batch mean, fp32; no gradient into the teacher.

    `student` N x Ds and `teacher` N x Dt embeddings before normalisation; `student_anchors` K x Ds and
    `teacher_anchors` K x Dt, the anchor queues (row i of both from the same earlier image).
    """
    with no_autocast(student.device.type):
        student, teacher, a_s, a_t = as_fp32(student, teacher, student_anchors, teacher_anchors)
        s = F.normalize(student, dim=1)
        t = F.normalize(teacher.detach(), dim=1)
        log_p_s = F.log_softmax(s @ a_s.detach().T / temperature, dim=1)
        p_t = F.softmax(t @ a_t.detach().T / temperature, dim=1)
        return F.kl_div(log_p_s, p_t, reduction="batchmean")

