"""timm's view of the registry: `pretrained_cfg` fields from a preprocessing record, and every zoo entry
with weights as a timm pretrained tag (`timm.create_model("<architecture>.<tag>", pretrained=True)`).

This module sits just above `zoo` and imports nothing of `weights` until timm asks for a file, so that
`import seedzoo` (which registers the tags) stays light.

timm keeps its pretrained cfgs in a registry filled from each model module's `default_cfgs`; seedzoo's
entries are added to it on `import seedzoo`, one cfg per entry, built from the same records as
`seedzoo.create_model`'s: the entry's preprocessing (`pretrained_cfg`) and, as `file`, a path that
resolves on first use through seedzoo's resolver (verified download, cached or converted release), so
both libraries load the same file. timm does not re-check the keys; seedzoo does before handing the file
over.

The tag is the entry's tag (`seed_mobilenetv3_large.fmnist_mocov2_r18`) for students, whose short name
is their architecture's; other entries prefix it with their short name (`seed_resnet50.mocov2_r50_in1k_200ep`)
because several teachers share one architecture and one tag.
"""
from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from .zoo import DataConfig, ZooEntry, get_entry, list_entries

__all__ = ["SEED_ARXIV", "pretrained_cfg", "register_pretrained_tags", "timm_name"]

SEED_ARXIV = "arXiv:2101.04731"


def pretrained_cfg(data: DataConfig, entry: ZooEntry | None = None) -> dict[str, Any]:
    """timm `pretrained_cfg` fields of a preprocessing record (only keys timm knows), plus the entry's
    tag and licence: what `model.pretrained_cfg`, a folder's `config.json` and the pretrained tags hold.

    `num_classes` is 0 (a representation) unless the entry's weights hold a trained classifier: then its
    class count, so that timm's loader keeps that classifier for a model built with those classes."""
    cfg: dict[str, Any] = {
        "input_size": list(data.input_size),
        "interpolation": data.interpolation,
        "crop_pct": data.crop_pct,
        "crop_mode": "center",
        "mean": list(data.normalization.mean),
        "std": list(data.normalization.std),
        "num_classes": 0,
        "paper_ids": SEED_ARXIV,
    }
    if entry is not None:
        if entry.ships_classifier:
            cfg["num_classes"] = entry.head.out_dim
        cfg["tag"] = entry.tag
        cfg["license"] = entry.license
        cfg["description"] = entry.description
        if entry.source is not None:
            cfg["origin_url"] = entry.source.url.split("?", 1)[0]  # the signature is not part of the name
    return cfg


def timm_name(entry: ZooEntry) -> str:
    """The timm name (`architecture.tag`) under which `entry`'s weights are registered."""
    tag = entry.tag if entry.arch_name.startswith("seed_") else f"{entry.arch_name}_{entry.tag}"
    return f"{entry.architecture}.{tag.replace('.', '_')}"


class _EntryWeightsPath(os.PathLike):
    """The entry's verified weights file, resolved the first time timm asks for it (not at import)."""

    def __init__(self, entry_name: str) -> None:
        self.entry_name = entry_name
        self._path: str | None = None

    def __fspath__(self) -> str:
        if self._path is None:
            from .weights.resolve import resolve

            entry = get_entry(self.entry_name)
            checked = resolve(entry.name, True).weights
            assert checked is not None
            self._path = str(checked.source.path)
        return self._path

    __str__ = __fspath__

    def __repr__(self) -> str:
        return f"seedzoo weights of '{self.entry_name}'"

    def __bool__(self) -> bool:  # timm asks "is there a file?" before it asks for the path
        return True


def _cfg(entry: ZooEntry) -> dict[str, Any]:
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in pretrained_cfg(entry.data, entry).items()}
    cfg["file"] = _EntryWeightsPath(entry.name)
    return cfg


def register_pretrained_tags() -> list[str]:
    """Add every entry with weights to timm's registry of pretrained cfgs; returns the names added."""
    from timm.models import _registry as registry
    from timm.models._pretrained import DefaultCfg, PretrainedCfg

    from . import models  # noqa: F401  (the architectures must be registered first)

    added = []
    for entry in list_entries(pretrained=True):
        name = timm_name(entry)
        arch, tag = name.split(".", 1)
        if arch not in registry._model_entrypoints:
            continue
        base = registry._model_pretrained_cfgs.get(arch)
        fields = {k: v for k, v in (base.to_dict() if base is not None else {}).items()
                  if k not in ("file", "url", "hf_hub_id", "state_dict")}
        cfg = replace(PretrainedCfg(**{**fields, **_cfg(entry)}), architecture=arch, tag=tag)
        existing = registry._model_pretrained_cfgs.get(name)
        if name in added or (existing is not None and not isinstance(existing.file, _EntryWeightsPath)):
            raise RuntimeError(f"'{name}' is already a timm pretrained tag; entry '{entry.name}' needs another one")
        registry._model_pretrained_cfgs[name] = cfg
        registry._model_has_pretrained.add(name)
        if name not in registry._model_with_tags[arch]:
            registry._model_with_tags[arch].append(name)
        default: Any = registry._model_default_cfgs.setdefault(arch, DefaultCfg())  # type: ignore[arg-type]
        if tag not in default.cfgs:
            default.tags.append(tag)
        default.cfgs[tag] = cfg
        added.append(name)
    return added
