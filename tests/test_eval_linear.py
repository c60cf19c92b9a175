"""Linear probe (full and fast) and fine-tuning on a separable synthetic image set."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from seedzoo.evaluation.finetune import FinetuneConfig, finetune
from seedzoo.evaluation.linear import LinearProbeConfig, linear_probe, linear_probe_features
from seedzoo.evaluation.schedule import lr_at


def color_images(n: int, seed: int) -> TensorDataset:
    """16x16 images whose class (0..3) is the channel mix they are tinted with: separable."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 4
    tints = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1.0, 0]])
    images = tints[labels][:, :, None, None] + 0.3 * torch.randn(n, 3, 16, 16, generator=gen)
    return TensorDataset(images, labels)


def tiny_backbone() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten())
    bn = net[1]
    bn.running_mean.uniform_(-0.1, 0.1)  # non-trivial statistics, so that a change would show
    bn.running_var.uniform_(0.5, 1.5)
    return net


def test_linear_probe_learns_and_leaves_backbone_and_bn_stats_untouched():
    backbone = tiny_backbone()
    before = copy.deepcopy(backbone.state_dict())
    backbone.train()  # the probe must switch to eval itself and restore the mode afterwards
    config = LinearProbeConfig(epochs=12, batch_size=32, milestones=(8, 10), warmup_epochs=1, base_lr=30.0)
    result = linear_probe(backbone, color_images(128, 0), color_images(64, 1), 4, config, device="cpu",
                          progress=False)
    assert result.protocol == "linear"
    assert result.metrics["top1"] >= 90.0
    after = backbone.state_dict()
    for key, value in before.items():
        assert torch.equal(value, after[key]), f"{key} changed during the linear probe"
    assert backbone.training and all(p.requires_grad for p in backbone.parameters())
    assert result.settings["lr"] == pytest.approx(30.0 * 32 / 256)
    assert result.settings["milestones"] == (8, 10) and result.settings["init_std"] == 0.01


def test_fast_linear_probe_on_features_records_its_variant():
    gen = torch.Generator().manual_seed(0)
    centers = torch.randn(5, 32, generator=gen) * 3
    train_labels, test_labels = torch.arange(200) % 5, torch.arange(100) % 5
    train = centers[train_labels] + torch.randn(200, 32, generator=gen)
    test = centers[test_labels] + torch.randn(100, 32, generator=gen)
    config = LinearProbeConfig(epochs=10, batch_size=64, milestones=(6, 8), warmup_epochs=1)
    result = linear_probe_features(train, train_labels, test, test_labels, config, device="cpu")
    assert result.protocol == "linear_fast"
    assert "no augmentation" in result.settings["variant"]
    assert result.metrics["top1"] >= 95.0


def test_finetune_reaches_high_accuracy_and_updates_backbone():
    backbone = tiny_backbone()
    before = copy.deepcopy(backbone.state_dict())
    config = FinetuneConfig(epochs=10, batch_size=32, base_lr=0.5, backbone_lr_scale=0.1)
    result, classifier = finetune(backbone, color_images(128, 0), color_images(64, 1), 4, config, device="cpu",
                                  progress=False)
    assert result.metrics["top1"] >= 90.0
    assert result.settings["backbone_lr_scale"] == 0.1
    assert not torch.equal(before["0.weight"], backbone.state_dict()["0.weight"])
    assert classifier(torch.zeros(2, 3, 16, 16)).shape == (2, 4)


def test_probe_schedule_warms_up_then_steps_at_milestones():
    kw = dict(base_lr=1.0, epochs=100, warmup_epochs=5, milestones=(60, 80))
    assert lr_at(2.5, **kw) == pytest.approx(0.5)
    assert lr_at(30, **kw) == 1.0
    assert lr_at(70, **kw) == pytest.approx(0.1)
    assert lr_at(90, **kw) == pytest.approx(0.01)


def test_shortened_probe_keeps_the_shape_of_the_schedule():
    short = LinearProbeConfig().with_epochs(10)
    assert short.epochs == 10 and short.milestones == (6, 8) and short.warmup_epochs == pytest.approx(0.5)
    assert short.lr == LinearProbeConfig().lr
