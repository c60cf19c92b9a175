"""SEED's learning-rate schedule: linear warm-up, then cosine.

As the official `adjust_learning_rate`: the warm-up rises linearly from `base_lr` to the scaled peak
`base_lr * global_batch / 256` over `warmup_epochs`, and after it the rate is
`peak * 0.5 * (1 + cos(pi * epoch / epochs))` (the cosine is not shifted by the warm-up). With `per_step`
the same curve is evaluated at fractional epochs (step / steps_per_epoch) instead of once per epoch.
"""
from __future__ import annotations

import math


def scaled_lr(base_lr: float, global_batch: int) -> float:
    """The linear scaling rule: lr = base_lr x global_batch / 256."""
    return base_lr * global_batch / 256


def learning_rate(step: int, steps_per_epoch: int, epochs: int, base_lr: float, global_batch: int,
                  warmup_epochs: int = 5, per_step: bool = False) -> float:
    epoch = step / steps_per_epoch if per_step else step // steps_per_epoch
    peak = scaled_lr(base_lr, global_batch)
    if epoch < warmup_epochs:
        return base_lr + (peak - base_lr) * epoch / warmup_epochs
    return peak * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
