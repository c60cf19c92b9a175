"""timm's view of the registry: `pretrained_cfg` fields from a preprocessing record, and each family's
pretrained tags (`timm.create_model("<architecture>.<tag>", pretrained=True)`) from the zoo's entries.

Each family module builds its `default_cfgs = generate_default_cfgs({...})` table from `tag_cfgs`, so
timm's `register_model` registers the tags as it does its own; the tag of an entry is
`ZooEntry.timm_name`. A tag's `file` is the entry's verified weights file, found the first time timm
asks for it by the locator that `seedzoo.weights.resolve` installs (the weights layer sits above this
one), so that timm and `seedzoo.create_model` load the same checked file.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from .errors import SeedzooError
from .zoo import DataConfig, ZooEntry, list_entries

__all__ = [
    "SEED_ARXIV", "EntryWeightsFile", "WeightsLocatorMissing", "pretrained_cfg", "set_weights_locator", "tag_cfgs",
    "with_zoo_tags",
]

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


_locate_weights: Callable[[str], str] | None = None


def set_weights_locator(locate: Callable[[str], str]) -> None:
    """Install the function that returns the path of an entry's verified weights file (by entry name)."""
    global _locate_weights
    _locate_weights = locate


class WeightsLocatorMissing(SeedzooError, RuntimeError):
    """timm asked for a tag's file before seedzoo's weights layer was imported."""


class EntryWeightsFile(os.PathLike):
    """An entry's verified weights file, located the first time timm asks for it (not at import)."""

    def __init__(self, entry_name: str) -> None:
        self.entry_name = entry_name
        self._path: str | None = None

    def __fspath__(self) -> str:
        if self._path is None:
            if _locate_weights is None:
                raise WeightsLocatorMissing(f"the weights of '{self.entry_name}' are found by seedzoo: "
                                            "`import seedzoo` before asking timm for them")
            self._path = _locate_weights(self.entry_name)
        return self._path

    __str__ = __fspath__

    def __repr__(self) -> str:
        return f"seedzoo weights of '{self.entry_name}'"

    def __bool__(self) -> bool:  # timm asks "is there a file?" before it asks for the path
        return True


def _pool_size(base: dict[str, Any], input_size: tuple[int, ...]) -> tuple[int, int]:
    """The final feature map at `input_size`, from the architecture's own `input_size`/`pool_size`."""
    reduction = base["input_size"][-1] // base["pool_size"][-1]
    return math.ceil(input_size[-2] / reduction), math.ceil(input_size[-1] / reduction)


def tag_cfgs(architecture: str, base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`{"<architecture>.<tag>": cfg}` for every zoo entry with weights on `architecture`: `base` (the
    architecture's own cfg) with the entry's preprocessing, its pool size and its weights file."""
    out = {}
    for entry in list_entries(pretrained=True):
        if entry.architecture != architecture:
            continue
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in pretrained_cfg(entry.data, entry).items()}
        fields.pop("tag")  # generate_default_cfgs takes the tag from the key
        cfg = {**base, **fields, "pool_size": _pool_size(base, entry.data.input_size),
               "file": EntryWeightsFile(entry.name)}
        out[entry.timm_name] = cfg
    return out



def with_zoo_tags(cfgs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A family's architecture cfgs, each followed by its pretrained tags (`tag_cfgs`): the argument of
    the family's `generate_default_cfgs` (the untagged cfg first, so it stays the default)."""
    out: dict[str, Any] = {}
    for architecture, cfg in cfgs.items():
        out[architecture] = cfg
        out.update(tag_cfgs(architecture, cfg))
    return out
