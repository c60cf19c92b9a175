"""Faster R-CNN + FPN on seedzoo backbones: a forward pass and a training step on synthetic images."""
from __future__ import annotations

import pytest
import torch

import seedzoo  # noqa: F401  (registers seedzoo's architectures with timm)
from seedzoo.evaluation.detection import fpn_backbone, seed_faster_rcnn


def synthetic_targets(n: int, size: int):
    gen = torch.Generator().manual_seed(0)
    images = [torch.rand(3, size, size, generator=gen) for _ in range(n)]
    targets = [{"boxes": torch.tensor([[4.0, 6.0, 40.0, 44.0], [20.0, 10.0, 60.0, 58.0]]),
                "labels": torch.tensor([1, 2])} for _ in range(n)]
    return images, targets


@pytest.mark.parametrize("name", ["seed_resnet18", "seed_mobilenetv3_large"])
def test_faster_rcnn_forward_and_training_step(name):
    torch.manual_seed(0)
    model = seed_faster_rcnn(name, num_classes=3, fpn_channels=32, box_representation_size=64, min_size=64,
                             max_size=64, rpn_batch_size_per_image=32, box_batch_size_per_image=32)
    images, targets = synthetic_targets(2, 64)
    model.train()
    losses = model(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    params = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    optimizer.zero_grad()
    total.backward()
    optimizer.step()
    backbone_params = [p for p in model.backbone.body.parameters() if p.requires_grad]
    assert backbone_params and all(p.grad is not None for p in backbone_params[-2:])
    assert any(not torch.equal(b, p) for b, p in zip(before, params))
    model.eval()
    with torch.no_grad():
        detections = model(images)
    assert len(detections) == 2 and set(detections[0]) == {"boxes", "labels", "scores"}
    assert model.roi_heads.box_predictor.cls_score.out_features == 3


def test_fpn_backbone_levels_and_frozen_stages():
    backbone = fpn_backbone("seed_resnet18", trainable_stages=2)
    out = backbone(torch.randn(1, 3, 64, 64))
    assert list(out) == ["0", "1", "2", "3", "pool"]
    assert all(v.shape[1] == backbone.out_channels for v in out.values())
    trainable = {n.split(".")[0] for n, p in backbone.body.named_parameters() if p.requires_grad}
    assert trainable == {"layer3", "layer4"}
    # BN is frozen (torchvision/detectron2 practice): no BatchNorm2d left to update statistics
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.body.modules())
