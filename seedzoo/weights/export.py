"""Writing a seedzoo model folder: `model.safetensors`, `config.json` (timm's hub schema) and `README.md`.

The folder is what `hf-hub:` names resolve to and what `conversion/publish.py` uploads. `config.json`
follows timm's `save_config_for_hf` layout so that `timm.create_model("hf-hub:...")` reads it; seedzoo's
own fields live in a top-level `seedzoo` block because timm rejects unknown keys inside
`pretrained_cfg`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch

from ..zoo import DataConfig, ZooEntry

__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "CARD_NAME", "FORMAT_VERSION", "CONVERTER_VERSION", "write_model_folder",
           "convert_release", "lineage_record", "summarize_dropped",
           "timm_pretrained_cfg", "read_config"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
FORMAT_VERSION = 1
SEED_ARXIV = "arXiv:2101.04731"


def timm_pretrained_cfg(data: DataConfig, entry: ZooEntry | None = None) -> dict[str, Any]:
    """timm `pretrained_cfg` fields for an entry's evaluation preprocessing (only keys timm knows)."""
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
        cfg["tag"] = entry.tag
        cfg["license"] = entry.license
        cfg["description"] = entry.description
        if entry.source is not None:
            cfg["origin_url"] = entry.source.url.split("?", 1)[0]  # the signature is not part of the name
    return cfg


def _num_features(architecture: str, entry: ZooEntry | None, head: Mapping[str, torch.Tensor] | None) -> int:
    if entry is not None:
        return entry.head.in_dim
    if head is not None and "0.weight" in head:
        return int(head["0.weight"].shape[1])
    import timm  # build on the meta device: the width without allocating weights

    with torch.device("meta"):
        return int(timm.create_model(architecture, pretrained=False, num_classes=0).num_features)


def _default_data_config(architecture: str) -> DataConfig:
    import timm

    from ..zoo import Normalization

    pcfg = timm.models.get_pretrained_cfg(architecture)
    if pcfg is None:
        return DataConfig()
    return DataConfig(input_size=tuple(pcfg.input_size), crop_pct=pcfg.crop_pct,
                      interpolation=pcfg.interpolation,
                      normalization=Normalization(tuple(pcfg.mean), tuple(pcfg.std), note="timm default"))


def write_model_folder(out_dir: str | Path, *, architecture: str, backbone: Mapping[str, torch.Tensor],
                       head: Mapping[str, torch.Tensor] | None, entry: ZooEntry | None = None,
                       seedzoo: Mapping[str, Any] | None = None, card: str | None = None) -> Path:
    """Write `model.safetensors`, `config.json` and `README.md` into `out_dir`; returns `out_dir`.

    `backbone` holds the architecture's timm key names, `head` the projection head's keys (`0.weight`,
    ...). `seedzoo` adds fields to the config's `seedzoo` block (lineage, source, dropped keys, a
    fingerprint, ...); the result's sha256 is always filled in here. `card` defaults to the entry's
    generated model card.
    """
    from .io import save_weights

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if entry is not None and entry.architecture != architecture:
        raise ValueError(f"architecture '{architecture}' does not match entry '{entry.name}' "
                         f"({entry.architecture})")
    metadata = {"format": "seedzoo", "architecture": architecture}
    if entry is not None:
        metadata["entry"] = entry.name
    sha256 = save_weights(out / WEIGHTS_NAME, dict(backbone), None if head is None else dict(head), metadata)

    block: dict[str, Any] = {"format_version": FORMAT_VERSION}
    if entry is not None:
        block["entry"] = entry.name
        block["head"] = {"in_dim": entry.head.in_dim, "hidden_dim": entry.head.hidden_dim,
                         "out_dim": entry.head.out_dim, "batch_norm": entry.head.batch_norm}
    block.update(seedzoo or {})
    block["filename"] = WEIGHTS_NAME
    block["sha256"] = sha256

    data = entry.data if entry is not None else _default_data_config(architecture)
    config = {
        "architecture": architecture,
        "num_classes": 0,
        "num_features": _num_features(architecture, entry, head),
        "pretrained_cfg": timm_pretrained_cfg(data, entry),
        "seedzoo": block,
    }
    (out / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=False) + "\n", encoding="utf-8")

    if card is None and entry is not None:
        from ..cards import render_card

        card = render_card(entry)
    if card is not None:
        (out / CARD_NAME).write_text(card, encoding="utf-8")
    return out


def read_config(folder: str | Path) -> dict[str, Any]:
    """The parsed `config.json` of a model folder, with a clear error when it is missing or not seedzoo's."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: a seedzoo model folder holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    config = json.loads(path.read_text(encoding="utf-8"))
    if "architecture" not in config:
        raise ValueError(f"{path} has no 'architecture': not a timm/seedzoo model config")
    return config


CONVERTER_VERSION = "seedzoo-convert/1"


def lineage_record(entry: ZooEntry) -> dict[str, Any]:
    """The teacher lineage of an entry, for the `seedzoo` block (how a teacher was itself trained)."""
    def one(lineage) -> dict[str, Any]:
        return {"method": lineage.method, "arch": lineage.arch, "epochs": lineage.epochs,
                "entry": lineage.entry, "license": lineage.license,
                "normalization": {"mean": list(lineage.normalization.mean), "std": list(lineage.normalization.std),
                                  "note": lineage.normalization.note}}

    record = {"role": entry.role, "trained_by": one(entry.trained_by)}
    if entry.teacher is not None:
        record["teacher"] = one(entry.teacher)
    return record


def summarize_dropped(dropped: Mapping[str, str]) -> dict[str, Any]:
    """Dropped keys grouped by reason (rule -> count), plus the full sorted list."""
    rules: dict[str, int] = {}
    for reason in dropped.values():
        rules[reason] = rules.get(reason, 0) + 1
    return {"count": len(dropped), "rules": dict(sorted(rules.items())),
            "keys": {k: dropped[k] for k in sorted(dropped)}}


def convert_release(entry: ZooEntry, src: str | Path, out_dir: str | Path, *, source_url: str | None = None,
                    fingerprint: bool = True) -> Path:
    """Convert one official release file of `entry` into a seedzoo model folder.

    The file is read with `weights_only=True`; its layout must be the entry's (an unknown layout is
    refused, naming the keys that did not match). When the entry pins the source's sha256, the file
    must match it.
    """
    from .cache import file_sha256
    from .io import ChecksumError
    from .fingerprint import compute_fingerprint
    from .official import read_checkpoint, split_official

    if entry.source is None:
        raise ValueError(f"entry '{entry.name}' has no official release to convert (recipe only)")
    src = Path(src)
    source_sha256 = file_sha256(src)
    if entry.source.sha256 and source_sha256 != entry.source.sha256:
        raise ChecksumError(f"official release {src.name} of '{entry.name}'", entry.source.sha256, source_sha256)
    split = split_official(read_checkpoint(src), entry.architecture, entry.head, layout=entry.source.layout)
    block: dict[str, Any] = {
        "entry": entry.name,
        "lineage": lineage_record(entry),
        "source": {"url": (source_url or entry.source.url).split("?", 1)[0], "filename": entry.source.filename,
                   "layout": split.layout, "sha256": source_sha256},
        "converter_version": CONVERTER_VERSION,
        "dropped": summarize_dropped(split.dropped),
    }
    if fingerprint:
        block["fingerprint"] = compute_fingerprint(entry.architecture, split.backbone, split.head,
                                                   tuple(entry.data.input_size))
    return write_model_folder(out_dir, architecture=entry.architecture, backbone=split.backbone,
                              head=split.head, entry=entry, seedzoo=block)
