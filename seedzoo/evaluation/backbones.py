"""Building the backbone an evaluation runs on: a zoo entry, a seedzoo architecture or any timm model,
without classifier (`num_classes=0`: the model returns its pre-logits representation)."""
from __future__ import annotations

from pathlib import Path

from torch import nn

Pretrained = bool | str | Path | None


def load_backbone(name: str, pretrained: Pretrained = True, **kwargs) -> nn.Module:
    """`pretrained`: True (the entry's own weights), False/None (random init), or a path to a checkpoint
    (official layouts or seedzoo safetensors). Keyword arguments go to `seedzoo.create_model`."""
    from .. import create_model

    if not kwargs.get("features_only"):
        kwargs.setdefault("num_classes", 0)
    return create_model(name, pretrained=pretrained or False, **kwargs)


def weights_id(pretrained: Pretrained) -> str | None:
    """A cheap, stable id of weights that come from a file (its sha256), for the feature cache."""
    if isinstance(pretrained, (str, Path)) and Path(pretrained).is_file():
        from ..weights.io import sha256_file

        return "file-sha256:" + sha256_file(pretrained)
    return None
