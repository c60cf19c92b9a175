"""The contract between the training engine and an objective (the methods of `training.methods`).

The engine knows nothing of teachers, keys or views. For every step it hands the objective the batch's
views (the union of what the run's methods declared, `views.ViewSet`) and the teacher's embeddings of
the views the method asked for (`targets`, from the run's one teacher pass; empty without a teacher),
asks for a loss, back-propagates it through `model`, and once the optimiser has stepped hands back what
`compute` left pending (the embeddings to enqueue), so that a queue never holds keys of the batch that is
being trained on. Whatever the objective must keep across a resume beyond `model`'s parameters (queues,
a momentum encoder) goes through `state` / `load_state`. `methods/__init__.py` says what a method
declares around its objective.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

from .networks import Encoder


@runtime_checkable
class Objective(Protocol):
    """What `Trainer` calls on an objective, and nothing else."""

    @property
    def model(self) -> Encoder:
        """The trainable network (backbone + projection head): the engine optimises it, wraps it in DDP,
        saves it as "student" and exports its backbone and head."""
        ...

    def compute(self, net: nn.Module, views: Mapping[str, Tensor], step: int, targets: Mapping[str, Tensor],
                epoch: int = 0) -> tuple[Tensor, Any]:
        """The loss of one batch and what `update` needs later. `net` is `model`, possibly DDP-wrapped or
        compiled; `views` every view of the batch by name; `targets` the teacher's fp32 embeddings of the
        views the method's `teacher_views` named; `epoch` the 0-based epoch `step` belongs to. Neither
        mapping may be changed in place: the other students of the step read the same tensors."""
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
