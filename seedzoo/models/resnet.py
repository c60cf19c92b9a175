"""ResNets of SEED's students and teachers, registered under seedzoo's names.

ResNet-18/34/50/101/152 are timm's `ResNet` (torchvision's network and key names, which the MoCo, SwAV,
SimCLR and SEED releases all use). SwAV's and SimCLR's ResNet-50x2/x4/x5 multiply *every* width by the
factor, stem included (ResNet-50x2: a 128-channel conv1, 4096-d output). That is not `wide_resnet50_2`
(which widens only the bottleneck's inner convs), and timm's `ResNet` fixes a single-conv stem at 64
channels, so `WidenedResNet` builds its stem and stages itself and inherits the rest of `ResNet`.

Built fresh, every one initialises as torchvision's ResNet (and so the MoCo, SwAV and SEED code): Kaiming
normal (fan_out) convolutions, every BN at weight 1 / bias 0. timm's default `zero_init_last=True` zeroes
the last BN of each residual branch instead; at 32 px, where layer4 is 1x1 and each stride-2 1x1 shortcut
keeps only the top-left cell, that leaves a fresh network blind to all but the top-left 6x6 pixels.
`zero_init_last=True` can still be asked for; loaded weights replace the init either way.

`seed_resnet{18,34,50}_lowres` are the small-input variants (28-64 px): a 3x3 stride-1 stem conv and no
max-pool, the "CIFAR stem" of the MoCo CIFAR demo, solo-learn and lightly. At 32 px layer4 then works
on 4x4 maps instead of 1x1; the key names are the same, `conv1.weight` is 3x3.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast

from timm.layers import create_classifier
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.resnet import BasicBlock, Bottleneck, ResNet, make_blocks
from torch import Tensor, nn

from ..timm_cfg import with_zoo_tags
from ._helpers import filter_seedzoo_state_dict, imagenet_cfg, lowres_cfg

ResNetT = TypeVar("ResNetT", bound=ResNet)

__all__ = ["LowResResNet", "WidenedResNet", "checkpoint_filter_fn", "remap_official"]


class WidenedResNet(ResNet):
    """ResNet with every width (stem, bottleneck inner and outer) multiplied by `widen`; torchvision names."""

    def __init__(
            self,
            block: type[BasicBlock] | type[Bottleneck],
            layers: Sequence[int],
            widen: int = 1,
            num_classes: int = 1000,
            in_chans: int = 3,
            global_pool: str = "avg",
            drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
            zero_init_last: bool = False,
            device=None,
            dtype=None,
    ) -> None:
        nn.Module.__init__(self)  # ResNet.__init__ would build a 64-channel stem
        dd = {"device": device, "dtype": dtype}
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.grad_checkpointing = False

        stem_width = 64 * widen
        # timm's ResNet types `conv1` and `maxpool` by its deep-stem branch (a Sequential)
        self.conv1 = nn.Conv2d(  # type: ignore[assignment]
            in_chans, stem_width, kernel_size=7, stride=2, padding=3, bias=False, **dd)
        self.bn1 = nn.BatchNorm2d(stem_width, **dd)
        self.act1 = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)  # type: ignore[assignment]
        self.feature_info = [dict(num_chs=stem_width, reduction=2, module="act1")]

        channels = tuple(c * widen for c in (64, 128, 256, 512))
        stages, stage_info = make_blocks(
            (block,) * len(channels), channels, tuple(layers), stem_width,
            drop_path_rate=drop_path_rate, act_layer=nn.ReLU, norm_layer=nn.BatchNorm2d, **dd,
        )
        for stage in stages:
            self.add_module(*stage)  # layer1 .. layer4
        self.feature_info.extend(stage_info)

        self.num_features = channels[-1] * block.expansion
        self.global_pool, self.fc = create_classifier(self.num_features, num_classes, pool_type=global_pool, **dd)
        self.head_hidden_size = self.num_features * self.global_pool.feat_mult()
        self.init_weights(zero_init_last=zero_init_last)


class LowResResNet(ResNet):
    """timm's ResNet with the small-input stem: conv1 3x3 at stride 1, no max-pool (output stride 8)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.conv1, nn.Conv2d):
            raise ValueError("the small-input stem replaces a single-conv stem: leave stem_type at ''")
        wide = self.conv1
        stem = nn.Conv2d(wide.in_channels, wide.out_channels, kernel_size=3, stride=1, padding=1, bias=False,
                         device=wide.weight.device, dtype=wide.weight.dtype)
        nn.init.kaiming_normal_(stem.weight, mode="fan_out", nonlinearity="relu")
        # timm's ResNet types `conv1` and `maxpool` by its deep-stem branch (a Sequential)
        self.conv1 = stem  # type: ignore[assignment]
        self.maxpool = nn.Identity()  # type: ignore[assignment]
        # the stem no longer halves (2 -> 1) and neither does the pool: every stage is 4x finer
        for info in self.feature_info:
            info["reduction"] = max(cast(int, info["reduction"]) // 4, 1)


def checkpoint_filter_fn(state_dict: Mapping[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """seedzoo's format (`backbone.*`, `head.*`) or a plain torchvision/timm state dict."""
    return filter_seedzoo_state_dict(state_dict, model)


def remap_official(state_dict: Mapping[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """torchvision names, as every official ResNet release uses, are timm's names."""
    return dict(state_dict)


def _create_resnet(variant: str, pretrained: bool, cls: type[ResNetT], **kwargs: Any) -> ResNetT:
    kwargs.setdefault("zero_init_last", False)  # torchvision's init (see the module docstring)
    return build_model_with_cfg(cls, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn, **kwargs)


def _create_widened_resnet(variant: str, pretrained: bool = False, **kwargs: Any) -> WidenedResNet:
    return build_model_with_cfg(
        WidenedResNet, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn, **kwargs)


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return imagenet_cfg("conv1", "fc", **kwargs)


default_cfgs = generate_default_cfgs(with_zoo_tags({
    "seed_resnet18": _cfg(),
    "seed_resnet34": _cfg(),
    "seed_resnet50": _cfg(),
    "seed_resnet101": _cfg(),
    "seed_resnet152": _cfg(),
    "seed_resnet50w2": _cfg(),
    "seed_resnet50w4": _cfg(),
    "seed_resnet50w5": _cfg(),
    "seed_resnet18_lowres": lowres_cfg("conv1", "fc", (4, 4)),
    "seed_resnet34_lowres": lowres_cfg("conv1", "fc", (4, 4)),
    "seed_resnet50_lowres": lowres_cfg("conv1", "fc", (4, 4)),
}))


@register_model
def seed_resnet18(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """ResNet-18 (torchvision layout); 512-d representation."""
    return _create_resnet("seed_resnet18", pretrained, ResNet,
                          **dict(dict(block=BasicBlock, layers=(2, 2, 2, 2)), **kwargs))


@register_model
def seed_resnet34(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """ResNet-34 (torchvision layout); 512-d representation."""
    return _create_resnet("seed_resnet34", pretrained, ResNet,
                          **dict(dict(block=BasicBlock, layers=(3, 4, 6, 3)), **kwargs))


@register_model
def seed_resnet50(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """ResNet-50 (torchvision layout, stride in the 3x3 conv); 2048-d representation."""
    return _create_resnet("seed_resnet50", pretrained, ResNet,
                          **dict(dict(block=Bottleneck, layers=(3, 4, 6, 3)), **kwargs))


@register_model
def seed_resnet101(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """ResNet-101 (torchvision layout); 2048-d representation."""
    return _create_resnet("seed_resnet101", pretrained, ResNet,
                          **dict(dict(block=Bottleneck, layers=(3, 4, 23, 3)), **kwargs))


@register_model
def seed_resnet152(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """ResNet-152 (torchvision layout); 2048-d representation."""
    return _create_resnet("seed_resnet152", pretrained, ResNet,
                          **dict(dict(block=Bottleneck, layers=(3, 8, 36, 3)), **kwargs))


@register_model
def seed_resnet50w2(pretrained: bool = False, **kwargs: Any) -> WidenedResNet:
    """ResNet-50x2 (SwAV / SimCLR): every width doubled, 128-channel stem; 4096-d representation."""
    return _create_widened_resnet("seed_resnet50w2", pretrained,
                                  **dict(dict(block=Bottleneck, layers=(3, 4, 6, 3), widen=2), **kwargs))


@register_model
def seed_resnet50w4(pretrained: bool = False, **kwargs: Any) -> WidenedResNet:
    """ResNet-50x4 (SwAV / SimCLR): every width x4, 256-channel stem; 8192-d representation."""
    return _create_widened_resnet("seed_resnet50w4", pretrained,
                                  **dict(dict(block=Bottleneck, layers=(3, 4, 6, 3), widen=4), **kwargs))


@register_model
def seed_resnet50w5(pretrained: bool = False, **kwargs: Any) -> WidenedResNet:
    """ResNet-50x5 (SwAV): every width x5, 320-channel stem; 10240-d representation."""
    return _create_widened_resnet("seed_resnet50w5", pretrained,
                                  **dict(dict(block=Bottleneck, layers=(3, 4, 6, 3), widen=5), **kwargs))


@register_model
def seed_resnet18_lowres(pretrained: bool = False, **kwargs: Any) -> LowResResNet:
    """ResNet-18 for 28-64 px inputs: 3x3 stride-1 stem, no max-pool; 512-d representation."""
    return _create_resnet("seed_resnet18_lowres", pretrained, LowResResNet,
                          **dict(dict(block=BasicBlock, layers=(2, 2, 2, 2)), **kwargs))


@register_model
def seed_resnet34_lowres(pretrained: bool = False, **kwargs: Any) -> LowResResNet:
    """ResNet-34 for 28-64 px inputs: 3x3 stride-1 stem, no max-pool; 512-d representation."""
    return _create_resnet("seed_resnet34_lowres", pretrained, LowResResNet,
                          **dict(dict(block=BasicBlock, layers=(3, 4, 6, 3)), **kwargs))


@register_model
def seed_resnet50_lowres(pretrained: bool = False, **kwargs: Any) -> LowResResNet:
    """ResNet-50 for 28-64 px inputs: 3x3 stride-1 stem, no max-pool; 2048-d representation."""
    return _create_resnet("seed_resnet50_lowres", pretrained, LowResResNet,
                          **dict(dict(block=Bottleneck, layers=(3, 4, 6, 3)), **kwargs))
