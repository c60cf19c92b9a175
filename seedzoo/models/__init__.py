"""seedzoo's architectures, registered with timm on import, and the key map from the official releases.

    >>> import timm, seedzoo
    >>> model = timm.create_model("seed_mobilenetv3_large", num_classes=0)  # 1280-d representation
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache

import timm
import torch
from timm.models import model_entrypoint
from torch import Tensor, nn

from . import efficientnet, mobilenetv3, resnet
from ._helpers import UnmappedKeysError, filter_seedzoo_state_dict
from .heads import ProjectionHead, mocov1_head, mocov2_head, seed_student_head, simclr_head, swav_head

__all__ = [
    "ProjectionHead", "UnmappedKeysError", "filter_seedzoo_state_dict", "list_architectures", "meta_model",
    "mocov1_head", "mocov2_head", "remap_official_backbone", "seed_student_head", "simclr_head", "swav_head",
]

_FAMILIES = (mobilenetv3, efficientnet, resnet)


def list_architectures() -> list[str]:
    """Every architecture name seedzoo registers with timm."""
    prefixes = tuple(f.__name__ for f in _FAMILIES)
    return sorted(n for n in timm.list_models("seed_*") if model_entrypoint(n).__module__.startswith(prefixes))


def _official_remapper(architecture: str) -> Callable[[Mapping[str, Tensor], nn.Module], dict[str, Tensor]]:
    if architecture not in list_architectures():
        raise ValueError(f"'{architecture}' is not a seedzoo architecture; choose one of: "
                         f"{', '.join(list_architectures())}")
    module = model_entrypoint(architecture).__module__
    return next(f.remap_official for f in _FAMILIES if f.__name__ == module)


@cache
def meta_model(architecture: str) -> nn.Module:
    """The headless network (`num_classes=0`) on the meta device: every key, shape and dtype, no memory.
    seedzoo's one meta-device builder (key maps here, weight checks and cards above); shared and cached,
    so never run or modify the result."""
    with torch.device("meta"):
        return timm.create_model(architecture, pretrained=False, num_classes=0)


def remap_official_backbone(architecture: str, state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """An official backbone state dict, renamed to the timm names of `architecture`.

    Official naming: torchvision's for every ResNet (wide ones included), d-li14's for MobileNetV3,
    lukemelas' for EfficientNet; container prefixes (`module.student.`, `module.encoder_q.`, `module.`) and
    projection heads (`fc.*`, `projection_head.*`) already removed. Raises `UnmappedKeysError` (a
    `KeyError`) naming every key that has no place in the architecture.
    """
    model = meta_model(architecture)
    remapped = _official_remapper(architecture)(state_dict, model)
    unknown = set(remapped) - set(model.state_dict())
    if unknown:
        renamed = {new: old for old, new in zip(state_dict, remapped)}
        raise UnmappedKeysError(
            architecture, (renamed.get(k, k) for k in unknown),
            "Strip the container prefix and the projection head first (`module.student.`, `fc.*`, ...), "
            "and check that the checkpoint is of this architecture.",
        )
    return remapped
