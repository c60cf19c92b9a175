"""The SEED objective: a trainable student against a frozen teacher and a queue of teacher embeddings,
optionally with SwAV-style small patches (a second queue of small-crop teacher embeddings)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ..data.augment import view_augment
from .config import TrainConfig
from .device_plan import NetworkPlan
from .loss import seed_loss
from .networks import Encoder, freeze
from .queue import EmbeddingQueue


class SeedViews:
    """One augmented view per image (the same tensor to teacher and student), plus `small_crops` small
    crops when small patches are on. Picklable, for data-loader workers."""

    def __init__(self, cfg: TrainConfig) -> None:
        d = cfg.data
        self.view = view_augment(d.augmentation, d.image_size, d.mean, d.std, blur_sigma=d.blur_sigma)
        self.small = None
        if cfg.distill.small_patches:
            kind = d.augmentation if d.augmentation != "none" else "swav"
            self.small = view_augment(kind, cfg.distill.small_size, d.mean, d.std, scale=cfg.distill.small_scale)
            self.small_crops = cfg.distill.small_crops

    def __call__(self, image: Tensor, g: torch.Generator) -> dict[str, Tensor]:
        return {k: v[0] for k, v in self.batch([image], [g]).items()}

    def batch(self, images: list[Tensor], gens: list[torch.Generator]) -> dict[str, Tensor]:
        """The views of a batch at once; each generator gives its view, then its small crops, in turn."""
        out = {"image": self.view.batch(images, gens)}
        if self.small is not None:
            crops = [self.small.batch(images, gens) for _ in range(self.small_crops)]
            out["small"] = torch.stack(crops, dim=1)  # N x crops x C x h x w
        return out


class SeedObjective(nn.Module):
    """CE(student, teacher | queue) [+ CE over small crops with their own queue]. An `Objective`."""

    _teacher_fn: Callable[[Tensor], Tensor]  # the teacher as its plan runs it (see __init__)

    def __init__(self, student: Encoder, teacher: nn.Module, cfg: TrainConfig,
                 teacher_plan: NetworkPlan | None = None) -> None:
        super().__init__()
        self.model = student
        self.views = SeedViews(cfg)
        self.teacher = freeze(teacher)
        self.cfg = cfg.distill
        dim = cfg.student.embed_dim
        self.queue = EmbeddingQueue(self.cfg.queue_size, dim, seed=cfg.seed)
        self.small_queue = (EmbeddingQueue(self.cfg.queue_size, dim, seed=cfg.seed + 1)
                            if self.cfg.small_patches else None)
        # The teacher stays outside DDP and runs in its own plan (layout, autocast, compile): it is
        # 78-96% of the FLOPs for small students. `_teacher_fn` is kept out of the module tree: it is
        # the same network as `self.teacher`, not a second one.
        self.teacher_plan = teacher_plan = teacher_plan or NetworkPlan()
        self.__dict__["_teacher_fn"] = teacher_plan.prepare(self.teacher)
        self.save_teacher = not cfg.teacher.pretrained  # a random teacher must be saved to be resumable

    def train(self, mode: bool = True) -> SeedObjective:
        super().train(mode)
        self.teacher.eval()  # BN statistics of the teacher are never updated
        return self

    @torch.no_grad()
    def embed_teacher(self, x: Tensor) -> Tensor:
        """The teacher's embeddings of `x`, in fp32 whatever precision the teacher ran in."""
        with self.teacher_plan.autocast(x.device.type):
            return self._teacher_fn(self.teacher_plan.input(x)).float()

    def targets(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor | None]:
        """The teacher's embeddings of the view (and of the small crops): one pass that several students
        of the same teacher and data can share (`compute(..., targets=)`)."""
        t = self.embed_teacher(batch["image"])
        t_small = self.embed_teacher(batch["small"].flatten(0, 1)) if self.small_queue is not None else None
        return t, t_small

    def compute(self, net: nn.Module, batch: dict[str, Tensor], step: int,
                targets: tuple[Tensor, Tensor | None] | None = None) -> tuple[Tensor, Any]:
        c = self.cfg
        image = batch["image"]
        if self.small_queue is None:
            s = net(image)
            t = (targets or self.targets(batch))[0]
            return seed_loss(s, t, self.queue.queue, c.student_temperature, c.teacher_temperature), (t, None)
        small = batch["small"].flatten(0, 1)  # N x S crops -> N*S, crops of one image adjacent
        s, s_small = net([image, small])
        t, t_small = targets or self.targets(batch)
        assert t_small is not None  # small patches are on: `targets` embedded the small crops
        loss = (seed_loss(s, t, self.queue.queue, c.student_temperature, c.teacher_temperature)
                + seed_loss(s_small, t_small, self.small_queue.queue, c.student_temperature, c.teacher_temperature))
        first_crop = t_small.unflatten(0, (len(image), -1))[:, 0]  # one small crop per image is enqueued
        return loss, (t, first_crop)

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
        if self.save_teacher:
            out["teacher"] = self.teacher.state_dict()
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        self.queue.load_state_dict(state["queue"])
        if self.small_queue is not None:
            self.small_queue.load_state_dict(state["small_queue"])
        if "teacher" in state:
            self.teacher.load_state_dict(state["teacher"])
