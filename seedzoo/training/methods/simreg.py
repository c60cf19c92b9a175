"""SimReg (Navaneet et al., BMVC 2021; UCDvision/simreg): the student regresses the teacher's
L2-normalised features through a deep prediction head, which is dropped after training.

As the authors' code (`simreg.py`, `mlp_arch.get_mlp` with `--n_mlp_layers 4`, `run.sh`): the head is
Linear(d, 2d) - BN - ReLU - Linear(2d, d) - Linear(d, 2d) - BN - ReLU - Linear(2d, D) on the student's
pooled features (no BN or ReLU after the second layer: the authors read it as a projection head followed
by a prediction head), D the teacher's width; the loss is the mean squared distance of the normalised
prediction and the normalised teacher output, 2 - 2 cos; teacher and student see the same view
(`--single_aug`). The teacher target is what `teacher.target` selects (the authors regress the
teacher's backbone features, `teacher.target=features`).
"""
from __future__ import annotations

from torch import Tensor, nn

from .l2 import normalised_l2_loss


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

