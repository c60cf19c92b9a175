"""SEED (Fang et al., ICLR 2021): a student against a frozen teacher and a queue of teacher embeddings,
optionally with SwAV-style small patches (a second queue of small-crop teacher embeddings)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..config import Problems, TrainConfig
from ..loss import seed_loss
from ..networks import Encoder
from ..queue import EmbeddingQueue
from ..views import MAIN, ViewSpec
from . import MemoryNeeds, Method, main_view, queue_problems, register_method, same_width_problems

SMALL = "small"  # the small crops, when distill.small_patches is on


class SeedObjective(nn.Module):
    """CE(student, teacher | queue) [+ CE over small crops with their own queue]. An `Objective`: the
    teacher's embeddings of the view (and of the small crops) arrive as `targets`."""

    def __init__(self, student: Encoder, cfg: TrainConfig) -> None:
        super().__init__()
        self.model = student
        self.cfg = cfg.distill
        dim = cfg.student.embed_dim
        self.queue = EmbeddingQueue(self.cfg.queue_size, dim, seed=cfg.seed)
        self.small_queue = (EmbeddingQueue(self.cfg.queue_size, dim, seed=cfg.seed + 1)
                            if self.cfg.small_patches else None)

    def compute(self, net: nn.Module, views: Mapping[str, Tensor], step: int, targets: Mapping[str, Tensor],
                epoch: int = 0) -> tuple[Tensor, Any]:
        c = self.cfg
        t = targets[MAIN]
        if self.small_queue is None:
            s = net(views[MAIN])
            return seed_loss(s, t, self.queue.queue, c.student_temperature, c.teacher_temperature), (t, None)
        small = views[SMALL].flatten(0, 1)  # N x S crops -> N*S, crops of one image adjacent
        s, s_small = net([views[MAIN], small])
        t_small = targets[SMALL]
        loss = (seed_loss(s, t, self.queue.queue, c.student_temperature, c.teacher_temperature)
                + seed_loss(s_small, t_small.flatten(0, 1), self.small_queue.queue, c.student_temperature,
                            c.teacher_temperature))
        return loss, (t, t_small[:, 0])  # one small crop per image is enqueued

    @torch.no_grad()
    def update(self, pending: Any) -> None:
        t, t_small = pending
        self.queue.enqueue(t)
        if self.small_queue is not None:
            self.small_queue.enqueue(t_small)

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {"queue": self.queue.state_dict()}
        if self.small_queue is not None:
            out["small_queue"] = self.small_queue.state_dict()
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        self.queue.load_state_dict(state["queue"])
        if self.small_queue is not None:
            self.small_queue.load_state_dict(state["small_queue"])


def views(cfg: TrainConfig) -> tuple[ViewSpec, ...]:
    """One view per image (the same tensor to teacher and student), plus the small crops when on."""
    d, s = cfg.data, cfg.distill
    if not s.small_patches:
        return (main_view(cfg),)
    kind = d.augmentation if d.augmentation != "none" else "swav"
    return main_view(cfg), ViewSpec(SMALL, kind, s.small_size, tuple(d.mean), tuple(d.std),
                                    scale=tuple(s.small_scale), crops=s.small_crops)  # type: ignore[arg-type]


def teacher_views(cfg: TrainConfig) -> tuple[str, ...]:
    return (MAIN, SMALL) if cfg.distill.small_patches else (MAIN,)


def config_problems(cfg: TrainConfig, world_size: int) -> list[str]:
    d = cfg.distill
    out = Problems()
    out += queue_problems("distill.queue_size", d.queue_size, cfg.global_batch)
    out.positive("distill.student_temperature", d.student_temperature)
    out.positive("distill.teacher_temperature", d.teacher_temperature)
    if d.small_patches:
        out.positive("distill.small_crops", d.small_crops, "must be > 0")
        out.positive("distill.small_size", d.small_size, "must be > 0 (pixels)")
        lo, hi = d.small_scale
        out.need(0 < lo <= hi <= 1, "distill.small_scale", d.small_scale, "must satisfy 0 < min <= max <= 1")
    out.positive("teacher.embed_dim", cfg.teacher.embed_dim, "must be > 0")
    out.at_least("teacher.head_hidden", cfg.teacher.head_hidden, 0, "must be >= 0")
    return out + same_width_problems(cfg, world_size)  # the student's logits are against teacher embeddings


def memory(cfg: TrainConfig) -> MemoryNeeds:
    queues = 2 if cfg.distill.small_patches else 1
    return MemoryNeeds(student_views=teacher_views(cfg),
                       state_bytes=queues * cfg.distill.queue_size * cfg.student.embed_dim * 4)


def lineage(cfg: TrainConfig) -> dict[str, Any]:
    return {"teacher_temperature": cfg.distill.teacher_temperature}


SEED = register_method(Method(
    name="seed", trained_by="SEED", objective=SeedObjective, views=views, needs_teacher=True,
    teacher_views=teacher_views, config_problems=config_problems, memory=memory, lineage=lineage,
    queues=("distill.queue_size",),
    summary="SEED: soft cross-entropy against the teacher's similarities to a queue of teacher embeddings"))
