"""Building the backbone an evaluation runs on: a zoo entry, a seedzoo architecture or any timm model,
with no classifier (`num_classes=0`: the model returns its pre-logits representation)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import timm
from torch import nn

from ..zoo import UnknownModelError, get_entry

Pretrained = bool | str | Path | None


def architecture_of(name: str) -> str:
    """The timm architecture of a zoo entry or alias; other names are taken as timm names."""
    try:
        return get_entry(name).architecture
    except UnknownModelError:
        if name in timm.list_models() or timm.is_model(name):
            return name
        raise


def load_backbone(name: str, pretrained: Pretrained = True, **kwargs) -> nn.Module:
    """A backbone without classifier. `pretrained`: True (the entry's weights), False/None (random
    init), or a path to a checkpoint (official layouts or seedzoo safetensors, via `seedzoo.create_model`)."""
    if not kwargs.get("features_only"):
        kwargs.setdefault("num_classes", 0)
    if importlib.util.find_spec("seedzoo.factory") is not None:
        import seedzoo

        try:
            get_entry(name)
        except UnknownModelError:
            if not pretrained:  # a plain timm name: the factory only knows the zoo
                return timm.create_model(name, pretrained=False, **kwargs)
        return seedzoo.create_model(name, pretrained=pretrained or False, **kwargs)
    if pretrained:
        raise RuntimeError(f"loading pretrained weights for '{name}' needs seedzoo.factory, which this "
                           "installation lacks; use random init (pretrained=False) or update seedzoo")
    return timm.create_model(architecture_of(name), pretrained=False, **kwargs)


def weights_id(pretrained: Pretrained) -> str | None:
    """A cheap, stable model id for the feature cache when the weights come from a file."""
    if isinstance(pretrained, (str, Path)) and Path(pretrained).is_file():
        from .features import file_sha256

        return "file-sha256:" + file_sha256(pretrained)
    return None
