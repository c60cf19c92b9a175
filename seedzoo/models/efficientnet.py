"""EfficientNet-B0/B1 as SEED trains them: lukemelas' EfficientNet-PyTorch on timm's EfficientNet.

The official code builds its students with lukemelas/EfficientNet-PyTorch 0.7.0: TensorFlow's "SAME"
padding, BN eps 1e-3 and momentum 0.01, swish, dropout 0.2, drop-connect 0.2. That is timm's
`tf_efficientnet_b0/b1` network under other key names, with one difference: lukemelas fixes the padding of
every convolution when the network is built, from the image size that layer sees at the native resolution
(224 for B0, 240 for B1), and keeps it at every input size, where timm recomputes "SAME" padding from each
input. SEED trains and evaluates both at 224, so a B1 run at 224 pads its stride-2 convolutions for 240:
`SeedEfficientNet` freezes the padding the same way. `remap_official` maps lukemelas' key names to timm's.

Built fresh, it keeps timm's init, the TensorFlow reference's: convolutions N(0, 2/fan_out) with fan_out
= k*k*out/groups, BN 1/0, nothing zero-initialised. lukemelas sets no init (PyTorch's default uniform);
torchvision's EfficientNet counts a depthwise conv's fan_out as k*k*out, which divides its output variance
by the channel count at each of the 16 depthwise layers (measured at 32 px in eval mode: pooled features
of std 4e-15 against 1e-6). Every region of the input reaches the output under either.

`seed_efficientnet_b{0,1}_lowres` are the small-input variants (28-64 px): the stem conv at stride 1 and
"SAME" padding fixed for 32 px, so a 32 px input ends on 2x2 maps instead of 1x1; same key names.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import torch.nn.functional as F
from timm.layers import Conv2dSame
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._builder import pretrained_cfg_for_features
from timm.models._efficientnet_blocks import DepthwiseSeparableConv
from timm.models._efficientnet_builder import decode_arch_def, resolve_act_layer
from timm.models.efficientnet import EfficientNet, EfficientNetFeatures
from torch import Tensor, nn

from ..timm_cfg import with_zoo_tags
from ._helpers import filter_seedzoo_state_dict, imagenet_cfg, lowres_cfg

__all__ = [
    "Conv2dStaticSame", "SeedEfficientNet", "SeedEfficientNetFeatures", "checkpoint_filter_fn",
    "freeze_same_padding", "remap_official", "same_padding",
]

# EfficientNet-B0 stages (Tan & Le, 2019) in timm's block notation; B1 repeats each stage ceil(1.1 x) times.
_B0_STAGES = [
    ["ds_r1_k3_s1_e1_c16_se0.25"],
    ["ir_r2_k3_s2_e6_c24_se0.25"],
    ["ir_r2_k5_s2_e6_c40_se0.25"],
    ["ir_r3_k3_s2_e6_c80_se0.25"],
    ["ir_r3_k5_s1_e6_c112_se0.25"],
    ["ir_r4_k5_s2_e6_c192_se0.25"],
    ["ir_r1_k3_s1_e6_c320_se0.25"],
]


def same_padding(input_size: Sequence[int], kernel_size: Sequence[int], stride: Sequence[int],
                 dilation: Sequence[int] = (1, 1)) -> tuple[int, int, int, int]:
    """TensorFlow "SAME" padding (left, right, top, bottom) for one input size: the extra pixel goes last."""
    pads = []
    for size, k, s, d in zip(input_size, kernel_size, stride, dilation):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    return left, right, top, bottom


class Conv2dStaticSame(nn.Conv2d):
    """Conv2d with a fixed, possibly asymmetric zero padding (lukemelas' Conv2dStaticSamePadding)."""

    def __init__(self, *, pad: tuple[int, int, int, int], **kwargs: Any) -> None:
        super().__init__(padding=0, **kwargs)
        self.pad = list(pad)  # a list: what F.pad takes under TorchScript

    def forward(self, x: Tensor) -> Tensor:
        # `_conv_forward`, not `super().forward`: TorchScript compiles neither `super()` nor a second `forward`
        return self._conv_forward(F.pad(x, self.pad), self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pad={self.pad}"


def _static_same_conv(conv: nn.Conv2d, input_size: Sequence[int]) -> nn.Conv2d:
    """`conv` with "SAME" padding frozen for `input_size`, sharing its parameters."""
    left, right, top, bottom = same_padding(input_size, conv.kernel_size, conv.stride, conv.dilation)
    args: dict[str, Any] = dict(
        in_channels=conv.in_channels, out_channels=conv.out_channels, kernel_size=conv.kernel_size,
        stride=conv.stride, dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None,
        device="meta", dtype=conv.weight.dtype)
    if left == right and top == bottom:
        static = nn.Conv2d(padding=(top, left), **args)
    else:
        static = Conv2dStaticSame(pad=(left, right, top, bottom), **args)
    static.weight = conv.weight
    if conv.bias is not None:
        static.bias = conv.bias
    return static


def freeze_same_padding(model: EfficientNet | EfficientNetFeatures, native_size: int) -> None:
    """Replace the stem's and every depthwise conv's "SAME" padding by the padding lukemelas computes for
    a `native_size` input (the only convolutions wider than 1x1)."""
    size: tuple[int, ...] = (native_size, native_size)

    def freeze(conv: nn.Module) -> nn.Conv2d:
        nonlocal size
        if not isinstance(conv, nn.Conv2d):
            raise RuntimeError(f"expected a Conv2d, found {type(conv).__name__}: this timm version builds "
                               "EfficientNet blocks differently from what seedzoo expects")
        static = _static_same_conv(conv, size)
        size = tuple(math.ceil(n / s) for n, s in zip(size, conv.stride))
        return static

    model.conv_stem = freeze(model.conv_stem)
    for stage in model.blocks.children():
        for block in stage.children():
            block.conv_dw = freeze(block.get_submodule("conv_dw"))
    dynamic = [name for name, m in model.named_modules() if isinstance(m, Conv2dSame)]
    if dynamic:
        raise RuntimeError(f"convolutions left with dynamic SAME padding: {dynamic}; this timm version builds "
                           f"EfficientNet blocks differently from what seedzoo expects")


def _set_stem_stride(model: EfficientNet | EfficientNetFeatures, stride: int) -> None:
    """Run the stem conv at `stride` (timm fixes it at 2); the weights do not depend on it."""
    if stride == 2:
        return
    if stride != 1:
        raise ValueError(f"stem_stride={stride}: 2 (ImageNet) or 1 (28-64 px inputs)")
    model.conv_stem.stride = (1, 1)
    info = model.feature_info.info if hasattr(model.feature_info, "info") else model.feature_info
    for level in info:  # every feature map is twice as fine
        level["reduction"] //= 2


class SeedEfficientNet(EfficientNet):
    """timm's EfficientNet with "SAME" padding fixed for `native_size`, as lukemelas' implementation."""

    def __init__(self, *args: Any, native_size: int = 224, stem_stride: int = 2, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.native_size = native_size
        _set_stem_stride(self, stem_stride)
        freeze_same_padding(self, native_size)


class SeedEfficientNetFeatures(EfficientNetFeatures):
    """Feature-map variant of `SeedEfficientNet` (`features_only=True`)."""

    def __init__(self, *args: Any, native_size: int = 224, stem_stride: int = 2, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.native_size = native_size
        _set_stem_stride(self, stem_stride)
        freeze_same_padding(self, native_size)


# lukemelas' per-block names -> timm's, for blocks without expansion (DepthwiseSeparableConv) and with it.
_DS_NAMES = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_se_reduce": "se.conv_reduce",
             "_se_expand": "se.conv_expand", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR_NAMES = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_se_reduce": "se.conv_reduce", "_se_expand": "se.conv_expand", "_project_conv": "conv_pwl",
             "_bn2": "bn3"}
_TOP_NAMES = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2"}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)")
_TOP_KEY = re.compile(r"(_\w+)\.(\w+)")


def remap_official(state_dict: Mapping[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """lukemelas names (`_conv_stem`, `_blocks.N._depthwise_conv`, ...) -> timm names of `model`.

    lukemelas numbers its blocks from 0 across stages; timm nests them as `blocks.<stage>.<index>`.
    Keys that match no rule are returned unchanged, for the caller to report.
    """
    positions = [(i, j, isinstance(b, DepthwiseSeparableConv))
                 for i, stage in enumerate(model.get_submodule("blocks").children())
                 for j, b in enumerate(stage.children())]
    out = {}
    for key, value in state_dict.items():
        new = key
        if m := _BLOCK_KEY.fullmatch(key):
            n, module, param = int(m[1]), m[2], m[3]
            if n < len(positions):
                i, j, is_ds = positions[n]
                names = _DS_NAMES if is_ds else _IR_NAMES
                if module in names:
                    new = f"blocks.{i}.{j}.{names[module]}.{param}"
        elif (m := _TOP_KEY.fullmatch(key)) and m[1] in _TOP_NAMES:
            new = f"{_TOP_NAMES[m[1]]}.{m[2]}"
        out[new] = value
    return out


def checkpoint_filter_fn(state_dict: Mapping[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """seedzoo's format, a plain timm state dict, or a lukemelas backbone (`_conv_stem.weight`, ...)."""
    state_dict = filter_seedzoo_state_dict(state_dict, model)
    if "_conv_stem.weight" in state_dict:
        state_dict = remap_official(state_dict, model)
    return state_dict


def _create_effnet(variant: str, pretrained: bool = False, **kwargs: Any) -> SeedEfficientNet:
    # timm's convention: `features_only` alone builds the features class; with a `feature_cls` (e.g.
    # 'getter', which calls `forward_intermediates`) or a `feature_cfg`, timm wraps the full model.
    features_class = features_wrapped = False
    if kwargs.pop("features_only", False):
        features_wrapped = bool({"feature_cls", "feature_cfg"} & set(kwargs))
        features_class = not features_wrapped
    model: Any = build_model_with_cfg(
        SeedEfficientNetFeatures if features_class else SeedEfficientNet,
        variant,
        pretrained,
        features_only=features_wrapped,
        pretrained_strict=not features_class,
        pretrained_filter_fn=checkpoint_filter_fn,
        # timm annotates kwargs_filter as a 1-tuple; it takes any tuple of names
        kwargs_filter=("num_classes", "num_features", "head_conv", "global_pool")  # type: ignore[arg-type]
        if features_class else None,
        **kwargs,
    )
    if features_class:
        model.pretrained_cfg = model.default_cfg = pretrained_cfg_for_features(model.pretrained_cfg)
    return model


def _gen_seed_efficientnet(variant: str, depth_multiplier: float, native_size: int, pretrained: bool = False,
                           stem_stride: int = 2, **kwargs: Any) -> SeedEfficientNet:
    # lukemelas' defaults, which the official SEED students were trained with
    kwargs.setdefault("drop_rate", 0.2)
    kwargs.setdefault("drop_path_rate", 0.2)
    model_kwargs = dict(
        block_args=decode_arch_def(_B0_STAGES, depth_multiplier, depth_trunc="ceil"),
        num_features=1280,
        stem_size=32,
        pad_type="same",
        act_layer=resolve_act_layer(kwargs, "swish"),
        norm_layer=partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01),
        native_size=native_size,
        stem_stride=stem_stride,
        **kwargs,
    )
    return _create_effnet(variant, pretrained, **model_kwargs)


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return imagenet_cfg("conv_stem", "classifier", **kwargs)


default_cfgs = generate_default_cfgs(with_zoo_tags({
    "seed_efficientnet_b0": _cfg(),
    "seed_efficientnet_b1": _cfg(),  # SEED trains and evaluates B1 at 224 too (padding still fixed for 240)
    "seed_efficientnet_b0_lowres": lowres_cfg("conv_stem", "classifier", (2, 2)),
    "seed_efficientnet_b1_lowres": lowres_cfg("conv_stem", "classifier", (2, 2)),
}))


@register_model
def seed_efficientnet_b0(pretrained: bool = False, **kwargs: Any) -> SeedEfficientNet:
    """EfficientNet-B0 as lukemelas builds it: "SAME" padding fixed for 224, BN eps 1e-3."""
    return _gen_seed_efficientnet("seed_efficientnet_b0", 1.0, 224, pretrained, **kwargs)


@register_model
def seed_efficientnet_b1(pretrained: bool = False, **kwargs: Any) -> SeedEfficientNet:
    """EfficientNet-B1 as lukemelas builds it: "SAME" padding fixed for 240, BN eps 1e-3."""
    return _gen_seed_efficientnet("seed_efficientnet_b1", 1.1, 240, pretrained, **kwargs)


@register_model
def seed_efficientnet_b0_lowres(pretrained: bool = False, **kwargs: Any) -> SeedEfficientNet:
    """EfficientNet-B0 for 28-64 px inputs: stem conv at stride 1, "SAME" padding fixed for 32 px."""
    return _gen_seed_efficientnet("seed_efficientnet_b0_lowres", 1.0, 32, pretrained, stem_stride=1, **kwargs)


@register_model
def seed_efficientnet_b1_lowres(pretrained: bool = False, **kwargs: Any) -> SeedEfficientNet:
    """EfficientNet-B1 for 28-64 px inputs: stem conv at stride 1, "SAME" padding fixed for 32 px."""
    return _gen_seed_efficientnet("seed_efficientnet_b1_lowres", 1.1, 32, pretrained, stem_stride=1, **kwargs)
