"""A seedzoo (or any timm) backbone under torchvision's Faster R-CNN with a feature pyramid.

The backbone is built with timm's `features_only=True` (its stride-4/8/16/32 stages by default); a
`FeaturePyramidNetwork` with a max-pooled extra level turns them into five maps, which match
torchvision's default anchors (32..512 px, one size per level). BN layers are frozen by default, as in
torchvision's and detectron2's detection backbones: detection batches are too small for batch statistics.

MoCo/SEED's own detection numbers use detectron2 (R-C4 and FPN configs); see `export.py` for writing a
ResNet student in detectron2's checkpoint format.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import cast

import torch
from timm.layers import freeze_batch_norm_2d
from timm.models import FeatureInfo
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

from .backbones import Pretrained, load_backbone
from .transforms import preprocessing_for

DEFAULT_OUT_INDICES = (1, 2, 3, 4)  # strides 4, 8, 16, 32 for ResNets and MobileNetV3


def _feature_info(body: nn.Module) -> FeatureInfo:
    """What a timm `features_only` model says about the maps it returns."""
    return cast(FeatureInfo, body.feature_info)


class TimmFPNBackbone(nn.Module):
    """timm feature extractor + FPN, with torchvision's detection-backbone interface (`out_channels`,
    forward returning an ordered dict of maps named "0", "1", ... and "pool")."""

    def __init__(self, body: nn.Module, out_channels: int = 256, extra_blocks: nn.Module | None = None):
        super().__init__()
        if not hasattr(body, "feature_info"):
            raise TypeError("body must be a timm features_only model (it has no `feature_info`)")
        self.body = body
        self.in_channels = list(_feature_info(body).channels())
        self.fpn = FeaturePyramidNetwork(self.in_channels, out_channels,
                                         extra_blocks=extra_blocks if extra_blocks is not None else LastLevelMaxPool())
        self.out_channels = out_channels

    @property
    def num_levels(self) -> int:
        """Maps the FPN returns: one per backbone stage plus the pooled extra level."""
        return len(self.in_channels) + 1

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(self.body(x))))


def fpn_backbone(name: str, pretrained: Pretrained = False, out_indices: Sequence[int] = DEFAULT_OUT_INDICES,
                 out_channels: int = 256, freeze_bn: bool = True, trainable_stages: int | None = None,
                 ) -> TimmFPNBackbone:
    """A zoo entry or timm name as an FPN backbone. `trainable_stages` keeps only the last N feature
    stages trainable (None: all), like torchvision's `trainable_layers`."""
    body = load_backbone(name, pretrained, features_only=True, out_indices=tuple(out_indices))
    if freeze_bn:
        body = freeze_batch_norm_2d(body)
    if trainable_stages is not None:
        _freeze_early_stages(body, trainable_stages)
    return TimmFPNBackbone(body, out_channels)


def _freeze_early_stages(body: nn.Module, trainable_stages: int) -> None:
    """Freeze every parameter before the last `trainable_stages` returned stages (timm's feature
    wrappers register modules in forward order, so "before" is parameter order)."""
    modules = [info["module"] for info in _feature_info(body).get_dicts()]
    if trainable_stages >= len(modules):
        return
    # feature wrappers flatten module paths with "_" (blocks.4 -> blocks_4); compare both spellings
    first = modules[len(modules) - trainable_stages].replace(".", "_") if trainable_stages > 0 else None
    trainable = False
    for pname, param in body.named_parameters():
        trainable = trainable or (first is not None and pname.replace(".", "_").startswith(first + "_"))
        param.requires_grad_(trainable)


def seed_faster_rcnn(name: str, num_classes: int, pretrained: Pretrained = False,
                     out_indices: Sequence[int] = DEFAULT_OUT_INDICES, fpn_channels: int = 256,
                     freeze_bn: bool = True, trainable_stages: int | None = None,
                     box_representation_size: int = 1024, **kwargs) -> FasterRCNN:
    """Faster R-CNN + FPN on a seedzoo backbone. `num_classes` includes the background class.
    Extra keyword arguments go to torchvision's `FasterRCNN` (e.g. `min_size`, `max_size`). The
    image normalisation is the backbone's own (its entry's data config). The box head is torchvision's
    two-layer MLP of width `box_representation_size`."""
    backbone = fpn_backbone(name, pretrained, out_indices, fpn_channels, freeze_bn, trainable_stages)
    levels = backbone.num_levels
    sizes = tuple((32 * 2 ** i,) for i in range(levels))
    anchors = AnchorGenerator(sizes=sizes, aspect_ratios=((0.5, 1.0, 2.0),) * levels)
    roi_pool = MultiScaleRoIAlign(featmap_names=[str(i) for i in range(levels - 1)], output_size=7,
                                  sampling_ratio=2)
    prep = preprocessing_for(name)
    kwargs.setdefault("image_mean", list(prep.mean))
    kwargs.setdefault("image_std", list(prep.std))
    box_head = TwoMLPHead(fpn_channels * roi_pool.output_size[0] * roi_pool.output_size[1],
                          box_representation_size)
    return FasterRCNN(backbone, rpn_anchor_generator=anchors, box_roi_pool=roi_pool, box_head=box_head,
                      box_predictor=FastRCNNPredictor(box_representation_size, num_classes), **kwargs)
