"""Pieces shared by the architecture families: seedzoo's weight format and the key-map error."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import Tensor, nn

from ..errors import SeedzooError

BACKBONE_PREFIX = "backbone."
HEAD_PREFIX = "head."


def imagenet_cfg(first_conv: str, classifier: str, **kwargs: Any) -> dict[str, Any]:
    """timm pretrained cfg of a SEED ImageNet model: Resize 256 / CenterCrop 224, bilinear, ImageNet
    mean/std (SEED's evaluation protocol); no classifier in the weights (`num_classes` 0)."""
    return {
        "url": "", "num_classes": 0, "input_size": (3, 224, 224), "pool_size": (7, 7),
        "crop_pct": 0.875, "interpolation": "bilinear",
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": first_conv, "classifier": classifier,
        **kwargs,
    }


def lowres_cfg(first_conv: str, classifier: str, pool_size: tuple[int, int], **kwargs: Any) -> dict[str, Any]:
    """timm pretrained cfg of a small-input (`_lowres`) variant: 32 px, no resize or crop, bilinear,
    ImageNet mean/std until weights say otherwise; `pool_size` is the final map at 32 px."""
    return imagenet_cfg(first_conv, classifier, input_size=(3, 32, 32), pool_size=pool_size, crop_pct=1.0,
                        **kwargs)


def filter_seedzoo_state_dict(state_dict: Mapping[str, Tensor], model: nn.Module | None = None) -> dict[str, Tensor]:
    """The model's own weights, from seedzoo's format or a plain timm state dict.

    seedzoo's `model.safetensors` holds `backbone.<timm name>` and `head.*` (the projection head, which is
    not part of the timm model); a plain timm state dict passes through unchanged. A linear head
    (`head.0.*` alone) is the trained classifier of a labelled reference: it becomes the model's
    classifier when the model has the classes its pretrained cfg declares (`num_classes`) and the shapes
    match, so timm's loader and seedzoo's factory give the same classifier.
    """
    if not any(k.startswith(BACKBONE_PREFIX) for k in state_dict):
        return {k: v for k, v in state_dict.items() if not k.startswith(HEAD_PREFIX)}
    out = {k[len(BACKBONE_PREFIX):]: v for k, v in state_dict.items() if k.startswith(BACKBONE_PREFIX)}
    head = {k[len(HEAD_PREFIX):]: v for k, v in state_dict.items() if k.startswith(HEAD_PREFIX)}
    if model is not None and set(head) == {"0.weight", "0.bias"}:
        out.update(_classifier_tensors(model, head["0.weight"], head["0.bias"]))
    return out


def _classifier_tensors(model: nn.Module, weight: Tensor, bias: Tensor) -> dict[str, Tensor]:
    """`weight`/`bias` under the model's classifier names, or nothing when the model does not have the
    classes its weights declare (timm then keeps the fresh classifier it built)."""
    declared = (getattr(model, "pretrained_cfg", None) or {}).get("num_classes", 0)
    get_classifier = getattr(model, "get_classifier", None)  # timm's interface, untyped on nn.Module
    if not declared or getattr(model, "num_classes", 0) != declared or get_classifier is None:
        return {}
    classifier = get_classifier()
    if not isinstance(classifier, nn.Linear) or classifier.weight.shape != weight.shape \
            or classifier.bias is None or classifier.bias.shape != bias.shape:
        return {}
    name = next(n for n, m in model.named_modules() if m is classifier)
    return {f"{name}.weight": weight, f"{name}.bias": bias}


class UnmappedKeysError(SeedzooError, KeyError):
    """Keys of an official checkpoint that have no counterpart in a seedzoo architecture."""

    def __init__(self, architecture: str, keys: Iterable[str], hint: str = "") -> None:
        self.architecture = architecture
        self.keys = sorted(keys)
        shown = ", ".join(self.keys[:8]) + (f", ... ({len(self.keys)} in all)" if len(self.keys) > 8 else "")
        message = f"{len(self.keys)} key(s) cannot be mapped onto '{architecture}': {shown}."
        super().__init__(f"{message} {hint}".strip())

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]
