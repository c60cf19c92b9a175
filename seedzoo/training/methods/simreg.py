"""SimReg (Navaneet et al., BMVC 2021; UCDvision/simreg): the student regresses the teacher's
L2-normalised features through a deep prediction head, which is dropped after training.

As the authors' code (`simreg.py`, `mlp_arch.get_mlp` with `--n_mlp_layers 4`, `run.sh`): the head is
Linear(d, 2d) - BN - ReLU - Linear(2d, d) - Linear(d, 2d) - BN - ReLU - Linear(2d, D) on the student's
pooled features (no BN or ReLU after the second layer: the authors read it as a projection head followed
by a prediction head), D the teacher's width; the loss is the mean squared distance of the normalised
prediction and the normalised teacher output, 2 - 2 cos; teacher and student see the same view
(`--single_aug`). The teacher target is what `teacher.target` selects (the authors regress the
teacher's backbone features, `teacher.target=features`). The head's widths are the authors' (2d), so
`student.head_hidden`, the width of the projection head it replaces, is not read: a cohort that trains one
student recipe by every objective gives SimReg the same backbone and the authors' head.
"""
from __future__ import annotations

from torch import Tensor, nn

from ..config import TrainConfig
from ..networks import Encoder, backbone_width
from . import Method, register_method, same_width_problems
from .l2 import L2Objective, normalised_l2_loss, teacher_views, views


def prediction_head(width: int, out_dim: int) -> nn.Sequential:
    """SimReg's 4-layer head on features of `width`, predicting `out_dim` (state-dict keys as the authors')."""
    return nn.Sequential(
        nn.Linear(width, 2 * width), nn.BatchNorm1d(2 * width), nn.ReLU(inplace=True),
        nn.Linear(2 * width, width),
        nn.Linear(width, 2 * width), nn.BatchNorm1d(2 * width), nn.ReLU(inplace=True),
        nn.Linear(2 * width, out_dim),
    )


def simreg_loss(prediction: Tensor, teacher: Tensor) -> Tensor:
    """mean_n (2 - 2 cos(prediction_n, teacher_n)), fp32; the regression loss of SimReg."""
    return normalised_l2_loss(prediction, teacher)


class SimregObjective(L2Objective):
    """The student's backbone with SimReg's prediction head in place of its projection head, regressing the
    teacher's embedding of the same view (L2's loss and step, on the head's output). An `Objective`; the
    head is not exported."""

    def __init__(self, student: Encoder, cfg: TrainConfig) -> None:
        super().__init__(student, cfg)
        head = prediction_head(backbone_width(student.backbone), cfg.student.embed_dim)
        self.model = Encoder(student.backbone, head)


def config_problems(cfg: TrainConfig, world_size: int) -> list[str]:
    out = same_width_problems(cfg, world_size)
    if cfg.global_batch // max(world_size, 1) < 2:
        out.append(f"global_batch={cfg.global_batch}: SimReg's head normalises over the batch (BatchNorm1d), "
                   "which needs at least 2 images per process")
    return out


SIMREG = register_method(Method(
    name="simreg", trained_by="SimReg", objective=SimregObjective, views=views, needs_teacher=True,
    teacher_views=teacher_views, config_problems=config_problems, export_head=False,
    summary="SimReg: regression of the teacher's normalised embedding through a deep head dropped after training"))
