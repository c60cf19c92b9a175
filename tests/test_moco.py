"""MoCo-v2 as the reference implementations run it on one device: split BN in both encoders."""
from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

import seedzoo  # noqa: F401  (registers the architectures)
from seedzoo.training.config import TrainConfig, apply_overrides, config_problems, load_config
from seedzoo.training.methods.moco import MocoObjective, SplitBatchNorm2d, split_batch_norm, split_batch_norm_2d
from seedzoo.training.networks import Encoder

pytestmark = pytest.mark.usefixtures("single_thread")


def bn_with_stats(channels: int = 3) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels, momentum=0.1)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    return bn


def test_split_batch_norm_normalises_each_group_on_its_own():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 4, 4) * 3 + 1
    split, reference = bn_with_stats(), None
    reference = [bn_with_stats() for _ in range(2)]
    for r in reference:
        r.load_state_dict(split.state_dict())
    out = split_batch_norm_2d(split.train(), x, 2)
    groups = [x[0::2], x[1::2]]  # sample n is in group n mod 2
    expected = [r.train()(g) for r, g in zip(reference, groups)]
    assert torch.allclose(out[0::2], expected[0], atol=1e-6) and torch.allclose(out[1::2], expected[1], atol=1e-6)
    # the running statistics move by the mean of the two groups' updates
    assert torch.allclose(split.running_mean, (reference[0].running_mean + reference[1].running_mean) / 2)
    assert torch.allclose(split.running_var, (reference[0].running_var + reference[1].running_var) / 2)
    assert int(split.num_batches_tracked) == 1
    # eval mode: plain BN with the running statistics
    split.eval()
    assert torch.equal(split_batch_norm_2d(split, x, 2), nn.BatchNorm2d.forward(split, x))


def test_split_batch_norm_refuses_a_batch_it_cannot_split():
    with pytest.raises(ValueError, match="multiple of moco.bn_splits=4"):
        split_batch_norm_2d(nn.BatchNorm2d(3).train(), torch.randn(6, 3, 2, 2), 4)


def test_split_networks_keep_their_keys_and_eval_behaviour():
    torch.manual_seed(0)
    plain = timm.create_model("seed_efficientnet_b0", num_classes=0).eval()  # BatchNormAct2d
    split = split_batch_norm(timm.create_model("seed_efficientnet_b0", num_classes=0), 4).eval()
    split.load_state_dict(plain.state_dict())
    assert list(split.state_dict()) == list(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(split(x), plain(x))
    with pytest.raises(TypeError, match="BatchNorm1d"):
        split_batch_norm(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)), 2)


def tiny_moco(splits: int) -> MocoObjective:
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten())
    cfg = apply_overrides(TrainConfig(), ["method=moco", f"moco.bn_splits={splits}", "moco.queue_size=64",
                                          "student.embed_dim=4", "global_batch=8"])
    return MocoObjective(Encoder(backbone, nn.Linear(8, 4)), cfg).train()


def test_queries_and_keys_are_normalised_in_groups_in_both_encoders():
    objective = tiny_moco(splits=2)
    assert all(type(m) is SplitBatchNorm2d for m in objective.model.modules() if isinstance(m, nn.BatchNorm2d))
    assert all(type(m) is SplitBatchNorm2d for m in objective.key_encoder.modules()
               if isinstance(m, nn.BatchNorm2d))
    x = torch.randn(8, 3, 6, 6)
    with torch.no_grad():
        q = objective.model(x)
        other_group = x.clone()
        other_group[1::2] = torch.randn(4, 3, 6, 6)  # change only the images of group 1
        q2 = objective.model(other_group)
    # a query sees the statistics of its own group only (one BN over the batch would mix them)
    assert torch.allclose(q[0::2], q2[0::2], atol=1e-6) and not torch.allclose(q[1::2], q2[1::2])


def test_one_group_is_plain_batch_norm_over_the_batch():
    objective = tiny_moco(splits=1)
    x = torch.randn(8, 3, 6, 6)
    with torch.no_grad():
        q = objective.model(x)
        x[1::2] = torch.randn(4, 3, 6, 6)
        assert not torch.allclose(objective.model(x)[0::2], q[0::2])


@pytest.mark.parametrize("recipe", ["mocov2_r18.fmnist", "mocov2_mbv3_large.fmnist"])
def test_fashion_mnist_moco_recipes_follow_the_reference(recipe):
    cfg = load_config(recipe)
    assert cfg.optim.base_lr == 0.03  # main_moco.py: 0.03 at batch 256, scaled by B / 256
    assert cfg.optim.schedule == "epoch" and cfg.optim.warmup_epochs == 0  # --cos: per epoch, no warm-up
    assert cfg.optim.momentum == 0.9 and cfg.optim.weight_decay == 1e-4
    assert cfg.moco.temperature == 0.2  # MoCo v2
    # 8 GPUs x 32 images in main_moco.py, 8 splits in the CIFAR demo: 32 images per BN group here too
    assert cfg.global_batch // cfg.moco.bn_splits == 32


def test_bn_splits_that_leave_one_image_per_group_are_refused_before_work():
    cfg = apply_overrides(TrainConfig(), ["method=moco", "moco.bn_splits=8", "global_batch=8", "moco.queue_size=64"])
    problems = config_problems(cfg)
    assert any("1 image per BN group" in p and "use at most 4" in p for p in problems), problems
    cfg = apply_overrides(cfg, ["moco.bn_splits=4"])
    assert not any("bn_splits" in p for p in config_problems(cfg))
