"""L2: the student's embedding pulled onto the teacher's, both L2-normalised (the simplest distillation
strategy SEED's paper compares against, Fang et al., ICLR 2021, section 4)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ..config import TrainConfig
from ..loss import as_fp32, no_autocast
from ..networks import Encoder
from ..views import MAIN, ViewSpec
from . import Method, main_view, register_method, same_width_problems


def normalised_l2_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """mean_n || s_n/|s_n| - t_n/|t_n| ||^2 (= 2 - 2 cos(s_n, t_n)), fp32; no gradient flows into `teacher`.

    `student`, `teacher`: N x D embeddings before normalisation.
    """
    with no_autocast(student.device.type):
        student, teacher = as_fp32(student, teacher)
        s = F.normalize(student, dim=1)
        t = F.normalize(teacher.detach(), dim=1)
        return (s - t).pow(2).sum(dim=1).mean()


class L2Objective(nn.Module):
    """The normalised L2 distance to the teacher's embedding of the same view. An `Objective`."""

    def __init__(self, student: Encoder, cfg: TrainConfig) -> None:
        super().__init__()
        self.model = student

    def compute(self, net: nn.Module, views: Mapping[str, Tensor], step: int, targets: Mapping[str, Tensor],
                epoch: int = 0) -> tuple[Tensor, Any]:
        return normalised_l2_loss(net(views[MAIN]), targets[MAIN]), None

    def update(self, pending: Any) -> None:
        """Nothing is kept between steps."""

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""


def views(cfg: TrainConfig) -> tuple[ViewSpec, ...]:
    """One view per image, the same tensor to teacher and student (SEED's view)."""
    return (main_view(cfg),)


def teacher_views(cfg: TrainConfig) -> tuple[str, ...]:
    return (MAIN,)


L2 = register_method(Method(
    name="l2", trained_by="L2", objective=L2Objective, views=views, needs_teacher=True,
    teacher_views=teacher_views, config_problems=same_width_problems,
    summary="L2: squared distance between the student's and the teacher's normalised embeddings"))
