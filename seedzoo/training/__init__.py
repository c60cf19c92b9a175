"""seedzoo's trainer: SEED distillation, MoCo-v2 pre-training and the other methods of `training.methods`,
one engine from one CPU to torchrun.

The heavy parts (engine, data) are imported on use; `seed_loss` and the queue are light.
"""
from .loss import info_nce_loss, seed_loss
from .queue import EmbeddingQueue, QueueSizeError

__all__ = ["EmbeddingQueue", "QueueSizeError", "info_nce_loss", "seed_loss"]
