"""The objective contract: every registered method's objective satisfies `Objective`, the only interface
the engine uses; the registry finds methods by name and suggests close ones."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from seedzoo.training.config import ConfigError, apply_overrides, config_problems, load_config
from seedzoo.training.methods import UnknownMethodError, get_method, list_methods
from seedzoo.training.networks import build_student
from seedzoo.training.objective import Objective

pytestmark = pytest.mark.usefixtures("single_thread")

PRESETS = {"seed": "smoke", "moco": "smoke_moco"}


def _objective(method: str) -> Objective:
    torch.manual_seed(0)
    return get_method(method).objective(build_student("seed_resnet18"), load_config(PRESETS[method]))


@pytest.mark.parametrize("method", sorted(PRESETS))
def test_each_objective_satisfies_the_contract(method):
    objective = _objective(method)
    assert isinstance(objective, Objective)
    assert isinstance(objective.model, torch.nn.Module)


@pytest.mark.parametrize("method", sorted(PRESETS))
def test_state_round_trips_through_load_state(method):
    a, b = _objective(method), _objective(method)
    a.queue.queue.normal_()  # what a run would have filled in
    b.load_state(a.state())
    assert torch.equal(a.queue.queue, b.queue.queue)


def test_a_class_without_the_methods_is_not_an_objective():
    class LossOnly(torch.nn.Module):
        def compute(self, net, batch, step, targets):
            return torch.zeros(()), None

    assert not isinstance(LossOnly(), Objective)


def test_every_method_declares_its_main_view_and_the_teacher_views_it_reads():
    for name in list_methods():
        method = get_method(name)
        cfg = apply_overrides(load_config("smoke"), [f"method={name}"])
        views = [v.name for v in method.views(cfg)]
        assert views[0] == "image" and len(set(views)) == len(views), name
        assert set(method.teacher_views(cfg)) <= set(views), name
        assert bool(method.teacher_views(cfg)) == method.needs_teacher, name


def test_an_unknown_method_is_refused_suggesting_the_close_one():
    with pytest.raises(UnknownMethodError, match="method='sed'.*Did you mean 'seed'"):
        get_method("sed")
    with pytest.raises(ConfigError, match="Did you mean 'moco'"):
        load_config("smoke", ["method=mocco"])
    built_in_python = dataclasses.replace(load_config("smoke"), method="sed")  # not parsed: checked before a run
    assert any("Did you mean 'seed'" in p for p in config_problems(built_in_python))
