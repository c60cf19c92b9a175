"""MobileNetV3-Large as SEED trains it: the d-li14 layout behind timm's model interface.

SEED's student is neither timm's nor torchvision's MobileNetV3. It follows d-li14/mobilenetv3.pytorch:
squeeze-excite is built from `nn.Linear` layers, in expansion blocks it acts on the depthwise BN output
*before* the activation, and the head is global pooling + `classifier` = Linear(960, 1280) + h-swish
(+ dropout), whose 1280-d output is the representation SEED evaluates. Parameter names are those of that
code (`features.N.conv.K.*`, `conv.0/1`, `classifier.0`), so official checkpoints load without a key map;
the task classifier that timm expects is a separate `fc`.

Without a global pool (`global_pool=''`), `classifier` runs at every position of the 960-channel map, as
timm's own MobileNetV3 runs its 1x1 `conv_head`: the model then returns 1280-channel maps.

`seed_mobilenetv3_large_lowres` is the small-input variant (28-64 px): the stem conv at stride 1, so a
32 px input ends on 2x2 maps instead of 1x1; same parameters and key names.
"""
# No `from __future__ import annotations`: torch.fx writes `forward`'s annotations into the code it
# generates, and TorchScript cannot read them back as strings.
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from timm.layers import DropPath, SelectAdaptivePool2d, make_divisible
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint, checkpoint_seq
from torch import Tensor, nn

from ..timm_cfg import with_zoo_tags
from ._helpers import filter_seedzoo_state_dict, imagenet_cfg, lowres_cfg

__all__ = ["MobileNetV3", "checkpoint_filter_fn", "remap_official"]

# kernel, expansion, out channels, squeeze-excite, h-swish, stride (MobileNetV3-Large, Howard et al. 2019)
BlockCfg = tuple[int, float, int, bool, bool, int]
LARGE_BLOCKS: tuple[BlockCfg, ...] = (
    (3, 1, 16, False, False, 1),
    (3, 4, 24, False, False, 2),
    (3, 3, 24, False, False, 1),
    (5, 3, 40, True, False, 2),
    (5, 3, 40, True, False, 1),
    (5, 3, 40, True, False, 1),
    (3, 6, 80, False, True, 2),
    (3, 2.5, 80, False, True, 1),
    (3, 2.3, 80, False, True, 1),
    (3, 2.3, 80, False, True, 1),
    (3, 6, 112, True, True, 1),
    (3, 6, 112, True, True, 1),
    (5, 6, 160, True, True, 2),
    (5, 6, 160, True, True, 1),
    (5, 6, 160, True, True, 1),
)


class SqueezeExcite(nn.Module):
    """Channel gate: mean pool, Linear(c, c/4 rounded to 8), ReLU, Linear, hard sigmoid (keys `fc.0`, `fc.2`)."""

    def __init__(self, channels: int, reduction: int = 4, device=None, dtype=None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        reduced = make_divisible(channels // reduction, 8)
        self.fc = nn.Sequential(
            nn.Linear(channels, reduced, **dd),
            nn.ReLU(inplace=True),
            nn.Linear(reduced, channels, **dd),
            nn.Hardsigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.fc(x.mean((2, 3)))[:, :, None, None]


class InvertedResidual(nn.Module):
    """[1x1 expand, BN, act], depthwise kxk, BN, [SE], act, 1x1 project, BN; all under `conv.K`."""

    def __init__(self, in_chs: int, mid_chs: int, out_chs: int, kernel_size: int, stride: int, use_se: bool,
                 use_hs: bool, drop_path_rate: float = 0.0, device=None, dtype=None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        act_layer = nn.Hardswish if use_hs else nn.ReLU
        depthwise = [
            nn.Conv2d(mid_chs, mid_chs, kernel_size, stride, (kernel_size - 1) // 2, groups=mid_chs, bias=False,
                      **dd),
            nn.BatchNorm2d(mid_chs, **dd),
        ]
        se = SqueezeExcite(mid_chs, **dd) if use_se else nn.Identity()
        if in_chs == mid_chs:
            # No expansion (the first block only): d-li14 applies the activation before the gate here.
            layers = [*depthwise, act_layer(inplace=True), se]
        else:
            # The gate sees the depthwise BN output, before the activation: this is the official SEED student
            # (timm and torchvision gate after the activation, which moves features by ~3e-2).
            layers = [
                nn.Conv2d(in_chs, mid_chs, 1, bias=False, **dd),
                nn.BatchNorm2d(mid_chs, **dd),
                act_layer(inplace=True),
                *depthwise,
                se,
                act_layer(inplace=True),
            ]
        layers += [nn.Conv2d(mid_chs, out_chs, 1, bias=False, **dd), nn.BatchNorm2d(out_chs, **dd)]
        self.conv = nn.Sequential(*layers)
        self.has_skip = stride == 1 and in_chs == out_chs
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        if self.has_skip:
            return x + self.drop_path(self.conv(x))
        return self.conv(x)


def _conv_bn_act(in_chs: int, out_chs: int, kernel_size: int, stride: int, **dd: Any) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_chs, out_chs, kernel_size, stride, (kernel_size - 1) // 2, bias=False, **dd),
        nn.BatchNorm2d(out_chs, **dd),
        nn.Hardswish(inplace=True),
    )


class MobileNetV3(nn.Module):
    """MobileNetV3 in the d-li14 layout with timm's interface.

    `forward_features` returns the 960-channel map after `conv`; `forward_head(x, pre_logits=True)` the
    1280-d output of `classifier`; `num_classes=0` makes `fc` an identity, so the model returns that
    representation. The feature levels (`feature_info`, `forward_intermediates`) end where the next
    stride-2 block starts, the last after `conv`.
    """

    def __init__(
            self,
            block_cfgs: Sequence[BlockCfg] = LARGE_BLOCKS,
            num_classes: int = 1000,
            in_chans: int = 3,
            stem_size: int = 16,
            stem_stride: int = 2,
            head_hidden_size: int = 1280,
            global_pool: str = "avg",
            drop_rate: float = 0.2,
            drop_path_rate: float = 0.0,
            device=None,
            dtype=None,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.grad_checkpointing = False

        layers: list[nn.Module] = [_conv_bn_act(in_chans, stem_size, 3, stem_stride, **dd)]
        self.feature_info: list[dict[str, Any]] = []
        self.level_ends: list[int] = []  # the `features` index each level ends at; len(features): after `conv`
        in_chs, reduction, mid_chs = stem_size, stem_stride, stem_size
        for i, (k, t, c, use_se, use_hs, s) in enumerate(block_cfgs):
            if s > 1 and i > 0:  # a feature level ends where the next stride-2 block starts (features.i+1)
                self.feature_info.append(dict(num_chs=in_chs, reduction=reduction, module=f"features.{i}"))
                self.level_ends.append(i)
            out_chs, mid_chs = make_divisible(c, 8), make_divisible(in_chs * t, 8)
            dpr = drop_path_rate * i / len(block_cfgs)
            layers.append(InvertedResidual(in_chs, mid_chs, out_chs, k, s, use_se, use_hs, dpr, **dd))
            in_chs, reduction = out_chs, reduction * s
        self.features = nn.Sequential(*layers)
        self.num_features = mid_chs  # the last expansion width (960 for Large)
        self.conv: nn.Module = _conv_bn_act(in_chs, self.num_features, 1, 1, **dd)
        self.feature_info.append(dict(num_chs=self.num_features, reduction=reduction, module="conv.2"))
        self.level_ends.append(len(self.features))

        self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=bool(global_pool))
        self.head_hidden_size = head_hidden_size
        self.classifier: nn.Module = nn.Sequential(
            nn.Linear(self.num_features * self.global_pool.feat_mult(), head_hidden_size, **dd),
            nn.Hardswish(inplace=True),
            nn.Dropout(drop_rate),
        )
        self.fc = nn.Linear(head_hidden_size, num_classes, **dd) if num_classes > 0 else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        # d-li14's init, which is also torchvision's MobileNetV3 init: Kaiming normal (fan_out, counted as
        # torch does, k*k*out for a depthwise conv too), BN 1/0, Linear N(0, 0.01); nothing starts at zero.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(stem=r"^features\.0\.", blocks=[(r"^features\.(\d+)", None), (r"^conv\.", (99999,))])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self, name_only: bool = False) -> str | nn.Module:
        return "fc" if name_only else self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        if global_pool is not None:
            pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=bool(global_pool))
            if isinstance(self.classifier, nn.Sequential) and pool.feat_mult() != self.global_pool.feat_mult():
                raise ValueError(f"global_pool='{global_pool}' does not fit `classifier.0`, which takes "
                                 f"{self.num_features * self.global_pool.feat_mult()} features; keep "
                                 f"'{self.global_pool.pool_type}' or a pool of the same width ('' for none).")
            self.global_pool = pool
        self.num_classes = num_classes
        weight = next(self.parameters())
        self.fc = (nn.Linear(self.head_hidden_size, num_classes, device=weight.device, dtype=weight.dtype)
                   if num_classes > 0 else nn.Identity())

    def forward_intermediates(
            self,
            x: Tensor,
            indices: int | list[int] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """The feature maps of the levels `indices` (the last n if an int, all if None), and unless
        `intermediates_only` the final features; `stop_early` runs no further than the last one asked.
        `norm` has nothing to act on (every level already ends in batch norm)."""
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt='{output_fmt}': this model gives NCHW maps only")
        take_indices, max_index = feature_take_indices(len(self.level_ends), indices)
        take = [self.level_ends[i] for i in take_indices]
        last = self.level_ends[max_index] if stop_early else len(self.features)
        intermediates = []
        for i, block in enumerate(self.features[:last + 1]):
            x = checkpoint(block, x) if self.grad_checkpointing and not torch.jit.is_scripting() else block(x)
            if i in take:
                intermediates.append(x)
        if last == len(self.features):
            x = self.conv(x)
            if last in take:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(self, indices: int | list[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        """Drop the blocks after the last level of `indices` (and, with `prune_head`, the head); returns
        the levels kept."""
        take_indices, max_index = feature_take_indices(len(self.level_ends), indices)
        end = self.level_ends[max_index]
        if end < len(self.features):
            self.features = self.features[:end + 1]
            self.conv = nn.Identity()
            self.num_features = self.feature_info[max_index]["num_chs"]
        if prune_head:
            self.classifier = nn.Identity()
            self.head_hidden_size = self.num_features
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: Tensor) -> Tensor:
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint_seq(self.features, x)
        else:
            x = self.features(x)
        return self.conv(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.global_pool(x)
        if self.global_pool.is_identity():  # no global pool: the head runs at every position (a 1x1 conv)
            x = self.classifier(x.permute(0, 2, 3, 1))
            return (x if pre_logits else self.fc(x)).permute(0, 3, 1, 2)
        x = self.classifier(x)
        return x if pre_logits else self.fc(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def checkpoint_filter_fn(state_dict: Mapping[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """seedzoo's format (`backbone.*`, `head.*`) or a plain state dict of this class."""
    return filter_seedzoo_state_dict(state_dict, model)


def remap_official(state_dict: Mapping[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """The d-li14 names of the official student are this class's names."""
    return dict(state_dict)


def _create_mobilenetv3(variant: str, pretrained: bool = False, **kwargs: Any) -> MobileNetV3:
    return build_model_with_cfg(
        MobileNetV3,
        variant,
        pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(flatten_sequential=True),
        **kwargs,
    )


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return imagenet_cfg("features.0.0", "fc", **kwargs)


default_cfgs = generate_default_cfgs(with_zoo_tags({
    "seed_mobilenetv3_large": _cfg(),
    "seed_mobilenetv3_large_lowres": lowres_cfg("features.0.0", "fc", (2, 2)),
}))


@register_model
def seed_mobilenetv3_large(pretrained: bool = False, **kwargs: Any) -> MobileNetV3:
    """MobileNetV3-Large, d-li14 layout (SEED's student); 1280-d representation."""
    model_args = dict(block_cfgs=LARGE_BLOCKS, head_hidden_size=1280)
    return _create_mobilenetv3("seed_mobilenetv3_large", pretrained, **dict(model_args, **kwargs))


@register_model
def seed_mobilenetv3_large_lowres(pretrained: bool = False, **kwargs: Any) -> MobileNetV3:
    """MobileNetV3-Large (d-li14 layout) for 28-64 px inputs: stem conv at stride 1; 1280-d representation."""
    model_args = dict(block_cfgs=LARGE_BLOCKS, head_hidden_size=1280, stem_stride=1)
    return _create_mobilenetv3("seed_mobilenetv3_large_lowres", pretrained, **dict(model_args, **kwargs))
