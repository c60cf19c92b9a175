"""The public API: models, projection heads and transforms by name, with weights from anywhere.

A name is a zoo entry (`seed_mbv3_large.mocov2_r50_200ep`), an alias (`seed_mbv3_large`), a timm
architecture (`seed_mobilenetv3_large`, `resnet18`), `hf-hub:ORG/REPO[@REV]`, or the path of a model
folder (a training run's `export/`). `pretrained` is True (the weights the name stands for, verified),
False (random init) or a path: a seedzoo `.safetensors` file, a model folder, a training run folder, or
an official release file in any layout seedzoo knows. `seedzoo.weights.resolve` turns both into checked
weights and their preprocessing; this module only builds.

Weights go through timm's own loader, so every timm option (`num_classes`, `global_pool`,
`features_only`, `out_indices`, ...) works with them. Before timm loads anything, the backbone has been
checked key by key (and dtype by dtype) against the architecture: a missing, unexpected or misshapen
key is an error, whatever timm's loader would have tolerated.
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import timm
from torch import nn

from . import models  # noqa: F401  (registers seedzoo's architectures with timm)
from .weights.resolve import (
    CheckedWeights,
    Pretrained,
    PretrainedError,
    Resolved,
    WeightsSource,
    resolve,
)
from .zoo import ZooEntry, get_entry, list_entries

__all__ = ["WeightsSource", "create_model", "get_transform", "list_models", "load_projection_head", "model_info"]

PathLike = str | Path


@contextmanager
def _timm_file(checked: CheckedWeights) -> Iterator[Path]:
    """A safetensors file timm's loader reads: the checked file itself, or a temporary one."""
    if checked.file is not None:
        yield checked.file
        return
    from safetensors.torch import save_file

    # timm deep-copies an in-memory state dict held in its pretrained_cfg; a temporary file avoids that.
    with tempfile.TemporaryDirectory(prefix="seedzoo-") as tmp:
        out = Path(tmp) / "backbone.safetensors"
        save_file({k: v.contiguous().clone() for k, v in (checked.backbone or {}).items()}, str(out))
        yield out


class _KeyReportFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(("Missing keys", "Unexpected keys"))


@contextmanager
def _without_timm_key_report() -> Iterator[None]:
    """Silence timm's missing/unexpected-key report: seedzoo has checked every key already, and for a
    features-only or re-headed model timm lists the layers it left out on purpose."""
    logger, quiet = logging.getLogger("timm.models._builder"), _KeyReportFilter()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def _build(resolved: Resolved, kwargs: dict[str, Any]) -> nn.Module:
    overlay = resolved.pretrained_cfg()
    # A representation unless asked for classes, also where the weights declare a classifier's.
    kwargs.setdefault("num_classes", 0)
    overlay.update(kwargs.pop("pretrained_cfg_overlay", None) or {})
    checked = resolved.weights
    if checked is None:
        model = timm.create_model(resolved.architecture, pretrained=False, pretrained_cfg_overlay=overlay, **kwargs)
    else:
        with _timm_file(checked) as file, _without_timm_key_report():
            model = timm.create_model(resolved.architecture, pretrained=True,
                                      pretrained_cfg_overlay={**overlay, "file": str(file)}, **kwargs)
    cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
    cfg.pop("file", None)  # may name a temporary file; the real source is `seedzoo_weights`
    # timm's attributes and seedzoo's own, which nn.Module's type does not declare.
    for attr, value in (("pretrained_cfg", cfg), ("default_cfg", cfg), ("seedzoo_entry", resolved.entry),
                        ("seedzoo_weights", checked.source if checked is not None else None)):
        setattr(model, attr, value)
    return model


# --- public API --------------------------------------------------------------------------------

def create_model(name: str | os.PathLike, pretrained: Pretrained = False, **kwargs: Any) -> nn.Module:
    """Build a model by name, optionally with pretrained weights; `kwargs` go to `timm.create_model`.

    Without `num_classes` the model has no classifier (`num_classes=0`): seedzoo's weights are
    self-supervised backbones. An entry whose weights hold a trained classifier (a labelled reference)
    loads it when `num_classes` equals its class count. The weights' preprocessing is
    `model.pretrained_cfg` (timm's fields), the record itself `model.seedzoo_entry`, and the weights'
    origin `model.seedzoo_weights`.

        >>> model = create_model("seed_mbv3_large", pretrained="mobilenetv3_large_distill.pth.tar")
        >>> features = create_model("seed_r18", pretrained=True, features_only=True, out_indices=(3, 4))
        >>> run = create_model("runs/smoke/export", pretrained=True)  # architecture from its config.json

    For `hf-hub:` names and model folders the name carries its weights; `pretrained` then says whether
    they are loaded.
    """
    return _build(resolve(name, pretrained), kwargs)


def load_projection_head(name: str | os.PathLike, pretrained: Pretrained = False) -> nn.Module:
    """The projection head of an entry (`ProjectionHead`), with the weights that trained it.

    `pretrained` takes the same values as in `create_model`; the head's shape comes from the entry,
    or, for an architecture name with a file, from the file's tensors.
    """
    from .models.heads import ProjectionHead
    from .weights.official import check_head

    resolved = resolve(name, pretrained)
    entry, checked = resolved.entry, resolved.weights
    if checked is None:
        if entry is None:
            raise PretrainedError(f"'{name}' is an architecture: a projection head needs an entry (its shape) or "
                                  f"a file")
        return ProjectionHead.from_spec(entry.head)
    head = checked.head_tensors()
    if not head:
        fix = (f"`seedzoo train {entry.name}` trains its recipe into a file that keeps the head"
               if entry is not None and entry.recipe is not None else "pass a file that holds one")
        raise PretrainedError(f"{checked.source.path} holds no projection head (no 'head.*' keys): it ships the "
                              f"backbone only; {fix}.")
    spec = entry.head if entry is not None else None
    if spec is not None:
        check_head(spec, head, source=f"the head in {checked.source.path}")
    return ProjectionHead.from_state_dict(head, spec)


def list_models(pattern: str = "*", pretrained: bool | None = None, teacher: str | None = None) -> list[str]:
    """Entry names matching `pattern` (fnmatch); `pretrained=True` keeps those with weights available,
    `teacher` filters on the teacher's entry name or alias (fnmatch)."""
    return [e.name for e in list_entries(pattern, pretrained=pretrained, teacher=teacher)]


def model_info(name: str) -> ZooEntry:
    """The zoo record of an entry or alias."""
    return get_entry(name)


def get_transform(name: str | os.PathLike, train: bool = False, pretrained: Pretrained = False) -> Any:
    """The preprocessing of a model's weights (torchvision transforms on PIL images, gray or colour).

    The transform comes from the weights' own record, as in `create_model`: an entry's published
    preprocessing, or what a model folder (a run's export) recorded. `pretrained` names other weights
    (a path) whose record to read; an architecture name alone gets its timm default.

    Eval: Resize(int(size / crop_pct)) (256 for 224), CenterCrop(size), ToTensor, Normalize with the
    weights' normalisation. Train: the linear-evaluation protocol's augmentation, RandomResizedCrop(size)
    + horizontal flip (SEED's linear and fine-tuning recipes); the distillation augmentation lives in
    `seedzoo.data`. Grayscale images are repeated to three channels first.
    """
    from .weights.preprocessing import Preprocessing

    # The record of the weights `True` stands for is known without fetching them (the entry's, or the
    # named folder's config.json).
    data = resolve(name, False if pretrained is True else pretrained).data
    return Preprocessing.from_data_config(data).transform(train)
