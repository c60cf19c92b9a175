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

import copy
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import TrainConfig
from ..loss import as_fp32, no_autocast
from ..networks import Encoder, freeze, momentum_update, unwrap
from ..queue import EmbeddingQueue
from ..views import MAIN
from . import MemoryNeeds, Method, momentum_queue_problems, register_method
from .l2 import teacher_views, views


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


class CompressObjective(nn.Module):
    """CompRess-2q: the student's similarities to its own anchors matched to the teacher's similarities
    to the teacher's anchors. An `Objective`; the student's anchors come from its momentum copy."""

    def __init__(self, student: Encoder, cfg: TrainConfig) -> None:
        super().__init__()
        self.model = student
        self.key_encoder = freeze(copy.deepcopy(student)).train()  # BN in train mode, as the authors'
        self.cfg = c = cfg.compress
        self.student_anchors = EmbeddingQueue(c.queue_size, cfg.student.embed_dim, seed=cfg.seed)
        self.teacher_anchors = EmbeddingQueue(c.queue_size, cfg.teacher.embed_dim, seed=cfg.seed + 1)

    def compute(self, net: nn.Module, views: Mapping[str, Tensor], step: int, targets: Mapping[str, Tensor],
                epoch: int = 0) -> tuple[Tensor, Any]:
        x, t = views[MAIN], targets[MAIN]
        s = net(x)
        with torch.no_grad():  # the momentum copy embeds the same view (no shuffle: it is the student's)
            momentum_update(self.key_encoder, unwrap(net), self.cfg.momentum)
            k = self.key_encoder(x)
        loss = compress_loss(s, t, self.student_anchors.queue, self.teacher_anchors.queue, self.cfg.temperature)
        return loss, (k, t)

    @torch.no_grad()
    def update(self, pending: Any) -> None:
        k, t = pending
        self.student_anchors.enqueue(k)
        self.teacher_anchors.enqueue(t)

    def state(self) -> dict[str, Any]:
        return {"student_anchors": self.student_anchors.state_dict(),
                "teacher_anchors": self.teacher_anchors.state_dict(), "key_encoder": self.key_encoder.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.student_anchors.load_state_dict(state["student_anchors"])
        self.teacher_anchors.load_state_dict(state["teacher_anchors"])
        self.key_encoder.load_state_dict(state["key_encoder"])


def config_problems(cfg: TrainConfig, world_size: int) -> list[str]:
    c = cfg.compress
    return momentum_queue_problems("compress", c.queue_size, c.temperature, c.momentum, cfg.global_batch)


def memory(cfg: TrainConfig) -> MemoryNeeds:
    # the momentum copy is a fourth copy of the weights; it embeds the view without gradients
    anchors = cfg.compress.queue_size * (cfg.student.embed_dim + cfg.teacher.embed_dim) * 4
    return MemoryNeeds(student_views=(MAIN,), weight_copies=4, state_bytes=anchors)


def lineage(cfg: TrainConfig) -> dict[str, Any]:
    return {"temperature": cfg.compress.temperature}


COMPRESS = register_method(Method(
    name="compress", trained_by="CompRess-2q", objective=CompressObjective, views=views, needs_teacher=True,
    teacher_views=teacher_views, config_problems=config_problems, memory=memory, lineage=lineage,
    summary="CompRess-2q: KL between the teacher's and the student's similarities to their own anchor queues"))
