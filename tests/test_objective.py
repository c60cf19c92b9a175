"""The objective contract: SEED and MoCo-v2 both satisfy `Objective`, the only interface the engine uses."""
from __future__ import annotations

import pytest
import torch

from seedzoo.training.config import load_config
from seedzoo.training.moco import MocoObjective
from seedzoo.training.networks import build_student, build_teacher
from seedzoo.training.objective import Objective
from seedzoo.training.seed import SeedObjective

pytestmark = pytest.mark.usefixtures("single_thread")


def _objective(method: str) -> Objective:
    torch.manual_seed(0)
    if method == "moco":
        return MocoObjective(build_student("seed_resnet18"), load_config("smoke_moco"))
    cfg = load_config("smoke")
    return SeedObjective(build_student("seed_resnet18"), build_teacher("seed_resnet18", head_hidden=512), cfg)


@pytest.mark.parametrize("method", ["seed", "moco"])
def test_both_objectives_satisfy_the_contract(method):
    objective = _objective(method)
    assert isinstance(objective, Objective)
    assert isinstance(objective.model, torch.nn.Module) and callable(objective.views)


@pytest.mark.parametrize("method", ["seed", "moco"])
def test_state_round_trips_through_load_state(method):
    a, b = _objective(method), _objective(method)
    a.queue.queue.normal_()  # what a run would have filled in
    b.load_state(a.state())
    assert torch.equal(a.queue.queue, b.queue.queue)


def test_a_class_without_the_methods_is_not_an_objective():
    class LossOnly(torch.nn.Module):
        def compute(self, net, batch, step, targets=None):
            return torch.zeros(()), None

    assert not isinstance(LossOnly(), Objective)
