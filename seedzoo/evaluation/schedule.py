"""The optimiser recipe shared by the linear probe and fine-tuning: SGD, linear warm-up per step,
then either step decay at milestones (SEED's linear protocol) or a cosine decay."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def lr_at(progress: float, base_lr: float, epochs: int, warmup_epochs: float = 0.0,
          milestones: Sequence[int] = (), gamma: float = 0.1, cosine: bool = False) -> float:
    """Learning rate after `progress` epochs (fractional, counted at the end of the step: > 0)."""
    if progress < warmup_epochs:
        return base_lr * progress / warmup_epochs
    if cosine:
        span = max(epochs - warmup_epochs, 1e-12)
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, (progress - warmup_epochs) / span)))
    return base_lr * gamma ** sum(progress > m for m in milestones)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's lr to `lr` times the group's own `lr_scale` (1 unless given)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
