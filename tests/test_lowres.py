"""The small-input (`_lowres`) variants round-trip through a saved model folder under their own names."""
from __future__ import annotations

import json

import pytest
import timm
import torch
from torch import nn

import seedzoo
from seedzoo.models import list_architectures
from seedzoo.weights.publish import write_model_folder

pytestmark = pytest.mark.usefixtures("single_thread")

LOWRES = [a for a in list_architectures() if a.endswith("_lowres")]


def trained_looking(arch: str) -> nn.Module:
    """A fresh network with non-trivial BN statistics, so that a wrong stem or padding shows."""
    torch.manual_seed(0)
    model = timm.create_model(arch, num_classes=0).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model


def test_every_family_has_a_lowres_variant():
    assert set(LOWRES) == {"seed_resnet18_lowres", "seed_resnet34_lowres", "seed_resnet50_lowres",
                           "seed_mobilenetv3_large_lowres", "seed_efficientnet_b0_lowres",
                           "seed_efficientnet_b1_lowres"}


@pytest.mark.parametrize("arch", ["seed_resnet18_lowres", "seed_mobilenetv3_large_lowres",
                                  "seed_efficientnet_b0_lowres"])
def test_saved_folder_rebuilds_the_same_network_in_every_loader(arch, tmp_path):
    model = trained_looking(arch)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    folder = write_model_folder(tmp_path / "export", architecture=arch, backbone=state, head=None)
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == arch
    assert config["pretrained_cfg"]["input_size"] == [3, 32, 32]

    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x)
        via_timm = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
        via_seedzoo = seedzoo.create_model(arch, pretrained=folder, num_classes=0).eval()
        for loaded in (via_timm, via_seedzoo):
            assert type(loaded) is type(model)
            assert torch.equal(loaded(x), expected)
    # an ImageNet-stem network cannot read the folder silently: the stem's shape or the output differ
    imagenet = timm.create_model(arch.removesuffix("_lowres"), num_classes=0).eval()
    try:
        imagenet.load_state_dict(state)
    except RuntimeError:
        return
    with torch.no_grad():
        assert not torch.allclose(imagenet(x), expected)
