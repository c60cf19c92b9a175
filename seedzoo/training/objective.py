"""The contract between the training engine and an objective (SEED's distillation, MoCo-v2).

The engine knows nothing of teachers or keys. For every step it asks the objective for a loss on a
batch of the views the objective made, back-propagates it through `model`, and once the optimiser has
stepped hands back what `compute` left pending (the embeddings to enqueue), so that a queue never holds
keys of the batch that is being trained on. When several students train together, the first one's
`targets` (the teacher's pass) is computed once and given to every student's `compute`. Whatever the
objective must keep across a resume beyond `model`'s parameters (queues, a key encoder, a random
teacher) goes through `state` / `load_state`.
`SeedObjective` and `MocoObjective` are `nn.Module`s that satisfy it.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

from ..data.datasets import Views
from .networks import Encoder


@runtime_checkable
class Objective(Protocol):
    """What `Trainer` calls on an objective, and nothing else."""

    @property
    def model(self) -> Encoder:
        """The trainable network (backbone + projection head): the engine optimises it, wraps it in DDP,
        saves it as "student" and exports its backbone and head."""
        ...

    @property
    def views(self) -> Views:
        """The views of one image, made in data-loader workers (so it must pickle)."""
        ...

    def targets(self, batch: dict[str, Tensor]) -> Any:
        """What several objectives of one cohort can share for a batch (SEED: the teacher's embeddings,
        computed once for every student), or None."""
        ...

    def compute(self, net: nn.Module, batch: dict[str, Tensor], step: int, targets: Any = None) -> tuple[Tensor, Any]:
        """The loss of one batch (`net` is `model`, possibly DDP-wrapped or compiled; `targets` what
        `targets` returned, None to compute them here) and what `update` needs later."""
        ...

    def update(self, pending: Any) -> None:
        """After the optimiser step: enqueue what `compute` returned as pending."""
        ...

    def state(self) -> dict[str, Any]:
        """What a checkpoint must hold to resume, besides `model` and the optimiser."""
        ...

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what `state` returned."""
        ...

    # The nn.Module methods the engine uses: device placement and train mode.
    def to(self, *args: Any, **kwargs: Any) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...
