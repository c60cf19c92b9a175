"""The frozen teacher's pass: once per step, for every student of a run that distils it.

The teacher stays outside DDP and runs in its own device plan (layout, autocast, compile): it is 78-96% of
the FLOPs for small students. Each step it embeds the views the run's objectives ask it for (the union of
their `Method.teacher_views`), one forward per view, and hands the embeddings to every student's
objective as `targets`: `{view name: embeddings}`, fp32 whatever precision the teacher ran in, N x D for
a single view and N x crops x D for a view of several crops.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from .device_plan import NetworkPlan
from .networks import freeze

Targets = Mapping[str, Tensor]


class TeacherPass:
    """`teacher` frozen (eval mode, no gradients) and prepared for `plan`. `save`: whether checkpoints
    hold its weights (a random-init teacher must be saved to be resumable; a pretrained one is reloaded
    from the path in the config)."""

    _forward: Callable[[Tensor], Tensor]

    def __init__(self, teacher: nn.Module, plan: NetworkPlan | None = None, save: bool = False) -> None:
        self.network = freeze(teacher)
        self.plan = plan or NetworkPlan()
        self._forward = self.plan.prepare(self.network)
        self.save = save

    def to(self, device: torch.device) -> TeacherPass:
        self.network.to(device)
        return self

    @torch.no_grad()
    def embed(self, x: Tensor) -> Tensor:
        """The teacher's embeddings of a batch of images, in fp32."""
        with self.plan.autocast(x.device.type):
            return self._forward(self.plan.input(x)).float()

    def targets(self, views: Mapping[str, Tensor], names: Iterable[str]) -> dict[str, Tensor]:
        """The embeddings of the views `names` (a view of several crops embedded as one batch of crops)."""
        out = {}
        for name in names:
            x = views[name]
            out[name] = self.embed(x) if x.ndim == 4 else self.embed(x.flatten(0, 1)).unflatten(0, x.shape[:2])
        return out

    def state(self) -> dict[str, Any]:
        return {"teacher": self.network.state_dict()} if self.save else {}

    def load_state(self, state: Mapping[str, Any]) -> None:
        if self.save:
            self.network.load_state_dict(state["teacher"])
