"""A network built from scratch initialises as torchvision's does and sees its whole input.

timm's ResNet zero-initialises the last BN of each residual branch by default; at 32 px that left a fresh
seedzoo ResNet a function of the top-left 6x6 pixels only. These tests hold every architecture to the
authors' init: BN at weight 1 / bias 0 everywhere, Kaiming-normal (fan_out) convolutions, and an output
that moves when any region of a 32 px image changes.
"""
from __future__ import annotations

import math

import pytest
import timm
import torch
import torchvision
from torch import nn

import seedzoo  # noqa: F401  (registers the architectures)
from seedzoo.models import list_architectures
from seedzoo.training.networks import create_backbone

pytestmark = pytest.mark.usefixtures("single_thread")

WIDE = {"seed_resnet50w4", "seed_resnet50w5"}  # 375M and 586M parameters: 7-13 s to build each
ARCHS = [pytest.param(a, marks=pytest.mark.slow) if a in WIDE else a for a in list_architectures()]
SIZE, GRID = 32, 4  # a 32 px image in 4 x 4 regions of 8 x 8 pixels


@pytest.fixture(scope="module", params=ARCHS)
def fresh(request) -> tuple[str, nn.Module]:
    """(architecture, its fresh network): built once, for the tests of this architecture, then dropped."""
    torch.manual_seed(0)
    return request.param, timm.create_model(request.param, num_classes=0).eval()


def region_changes(model: nn.Module) -> torch.Tensor:
    """|f(x') - f(x)| / |f(x)| for x' = x with one region redrawn, one entry per region (eval mode: the
    images of the batch do not interact)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, SIZE, SIZE, generator=gen)
    cell = SIZE // GRID
    batch = x.repeat(1 + GRID * GRID, 1, 1, 1)
    for r in range(GRID * GRID):
        i, j = divmod(r, GRID)
        batch[1 + r, :, i * cell:(i + 1) * cell, j * cell:(j + 1) * cell] = torch.randn(3, cell, cell, generator=gen)
    with torch.no_grad():
        y = model(batch)
    return ((y[1:] - y[:1]).norm(dim=1) / y[0].norm()).view(GRID, GRID)


def torch_fan_out(weight: torch.Tensor) -> int:
    """What `nn.init.kaiming_normal_(mode="fan_out")` counts: out channels x kernel area."""
    return weight.shape[0] * math.prod(weight.shape[2:])


def assert_normal_with_std(weight: torch.Tensor, std: float, name: str) -> None:
    n = weight.numel()
    # the sample std of n normal draws is within 6 standard errors (std / sqrt(2n)) of the true one
    assert abs(float(weight.std()) / std - 1) < 6 / math.sqrt(2 * n), (name, float(weight.std()), std)
    assert abs(float(weight.mean())) < 6 * std / math.sqrt(n), name


def test_fresh_network_responds_to_every_region_of_a_32px_input(fresh):
    changes = region_changes(fresh[1])
    # a zero-initialised residual branch gives exactly 0 outside the top-left corner
    assert (changes > 1e-3).all(), f"regions the output ignores:\n{changes}"


def test_every_batch_norm_starts_as_identity(fresh):
    norms = [(n, m) for n, m in fresh[1].named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms
    for name, m in norms:
        assert torch.equal(m.weight, torch.ones_like(m.weight)), f"{name}.weight is not 1 (zero-init residual?)"
        assert torch.equal(m.bias, torch.zeros_like(m.bias)), name


def test_convolutions_are_kaiming_normal_fan_out(fresh):
    arch, model = fresh
    # torchvision's ResNet and MobileNetV3 (and d-li14's): N(0, 2 / fan_out), fan_out = out x k x k.
    # EfficientNet keeps TF's reference init (timm's): fan_out counts the outputs of one group, k x k for
    # a depthwise conv.
    per_group = "efficientnet" in arch
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            fan_out = torch_fan_out(m.weight) // (m.groups if per_group else 1)
            assert_normal_with_std(m.weight.detach(), math.sqrt(2 / fan_out), name)


@pytest.mark.parametrize(("arch", "reference"), [("seed_resnet18", torchvision.models.resnet18),
                                                 ("seed_resnet50", torchvision.models.resnet50)])
def test_resnet_init_matches_torchvision_parameter_by_parameter(arch, reference):
    torch.manual_seed(0)
    ours = timm.create_model(arch, num_classes=0).state_dict()
    theirs = reference().state_dict()  # torchvision's default: zero_init_residual=False
    assert set(ours) == set(theirs) - {"fc.weight", "fc.bias"}
    for name, value in ours.items():
        if name.endswith("num_batches_tracked"):
            continue
        if value.ndim == 4:  # convolutions: the same distribution (two samples: sqrt(2) x the error)
            ratio = float(value.std() / theirs[name].std())
            assert abs(ratio - 1) < 6 / math.sqrt(value.numel()), (name, ratio)
        else:  # BN weights, biases, running statistics: the same constants
            assert torch.equal(value, theirs[name]), name


def test_zero_init_last_can_still_be_asked_for():
    model = timm.create_model("seed_resnet18", num_classes=0, zero_init_last=True)
    assert not model.layer1[0].bn2.weight.any()


@pytest.mark.parametrize("arch", ["resnet10t", "test_resnet"])
def test_trainer_builds_timm_residual_networks_without_zeroed_branches(arch):
    torch.manual_seed(0)
    model = create_backbone(arch).eval()
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            assert m.weight.all(), f"{name}.weight has zeros"
    assert (region_changes(model) > 1e-3).all()
