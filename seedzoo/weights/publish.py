"""Publishing: writing seedzoo model folders (`model.safetensors`, `config.json`, `README.md`).

Nothing here runs when weights are loaded: loading (`resolve`, `io`) only reads, and writes nothing
but the verified weights file into the cache. A folder is written by `seedzoo convert` (an official
release), by the trainer (a run's `export/`, through `write_run_export`) and by the release step of
an experiment; it is what `hf-hub:` names resolve to and what `conversion/publish.py` uploads.

`config.json` follows timm's `save_config_for_hf` layout so that `timm.create_model("hf-hub:...")`
and `timm.create_model("local-dir:...")` read it; seedzoo's own fields live in a top-level `seedzoo`
block because timm rejects unknown keys inside `pretrained_cfg`.

The weights file's layout follows the architecture (docs/ARCHITECTURE.md): seedzoo's architectures read
`backbone.`/`head.` (a trained classifier is the linear head `head.0.*`, its class count declared as
`num_classes`); a plain timm architecture gets its own key names (classifier included), the
projection head going to `head.safetensors`, because timm's loaders strip no prefix for it.
`save_model` writes any timm model, fine-tuned or not, this way.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import SeedzooError
from ..files import write_atomic
from ..timm_cfg import pretrained_cfg
from ..zoo import DataConfig, Normalization, ZooEntry
from .io import (
    CONFIG_NAME,
    FORMAT,
    HEAD_NAME,
    LAYOUT_KEY,
    TIMM_LAYOUT,
    WEIGHTS_NAME,
    check_backbone,
    save_tensors,
    save_weights,
    sha256_file,
)
from .preprocessing import architecture_data_config, data_config_from_cfg
from .resolve import classifier_names, reads_seedzoo_layout, split_classifier

__all__ = [
    "CARD_NAME",
    "CONFIG_NAME",
    "CONVERTER_VERSION",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "SaveModelError",
    "convert_release",
    "convert_release_weights",
    "lineage_record",
    "save_model",
    "summarize_dropped",
    "write_model_folder",
    "write_run_export",
]

CARD_NAME = "README.md"
FORMAT_VERSION = 1
CONVERTER_VERSION = "seedzoo-convert/1"


class SaveModelError(SeedzooError, ValueError):
    """A model `save_model` cannot write as a model folder (not a timm network, an unknown classifier)."""


def _num_features(architecture: str, entry: ZooEntry | None, head: Mapping[str, torch.Tensor] | None) -> int:
    if entry is not None:
        return entry.head.in_dim
    if head is not None and "0.weight" in head:
        return int(head["0.weight"].shape[1])
    from ..models import meta_model

    return int(getattr(meta_model(architecture), "num_features"))  # noqa: B009 (timm's attribute)


def _weights_metadata(architecture: str, entry: ZooEntry | None, data: DataConfig,
                      extra: Mapping[str, str] | None = None, num_classes: int = 0) -> dict[str, str]:
    # The preprocessing travels inside the file too, so that a bare file knows how it is fed.
    cfg = {**pretrained_cfg(data), **({"num_classes": num_classes} if num_classes else {})}
    metadata = {"format": FORMAT, "architecture": architecture,
                "pretrained_cfg": json.dumps(cfg, sort_keys=True, separators=(",", ":"))}
    if entry is not None:
        metadata["entry"] = entry.name
    metadata.update(extra or {})
    return metadata


def _write_weights(out: Path, architecture: str, backbone: Mapping[str, torch.Tensor],
                   head: Mapping[str, torch.Tensor] | None, classifier: Mapping[str, torch.Tensor] | None,
                   metadata: dict[str, str]) -> dict[str, Any]:
    """Write the folder's weights in the layout the architecture's loader reads; returns the config
    block's fields that pin them."""
    if reads_seedzoo_layout(architecture):
        if classifier:  # seedzoo's layout keeps a trained classifier as the linear head `head.0.*`
            if head:
                raise SaveModelError(f"'{architecture}' weights keep one head: a projection head or a trained "
                                     f"classifier, not both; save the classifier alone")
            head = {f"0.{k}": v for k, v in classifier.items()}
        (out / HEAD_NAME).unlink(missing_ok=True)
        return {"sha256": save_weights(out / WEIGHTS_NAME, dict(backbone), None if head is None else dict(head),
                                       metadata)}
    if classifier and not classifier_names(architecture):
        raise SaveModelError(f"'{architecture}' names no classifier in its timm cfg, so its weights cannot keep one")
    name = classifier_names(architecture)[0] if classifier else ""
    tensors = {**backbone, **{f"{name}.{k}": v for k, v in (classifier or {}).items()}}
    fields: dict[str, Any] = {"sha256": save_tensors(out / WEIGHTS_NAME, tensors,
                                                     {**metadata, LAYOUT_KEY: TIMM_LAYOUT})}
    if head:
        fields["head_file"] = {"filename": HEAD_NAME, "sha256": save_weights(out / HEAD_NAME, {}, dict(head), metadata)}
    else:
        (out / HEAD_NAME).unlink(missing_ok=True)
    return fields


def write_model_folder(out_dir: str | Path, *, architecture: str, backbone: Mapping[str, torch.Tensor],
                       head: Mapping[str, torch.Tensor] | None, entry: ZooEntry | None = None,
                       seedzoo: Mapping[str, Any] | None = None, card: str | None = None,
                       data: DataConfig | None = None,
                       classifier: Mapping[str, torch.Tensor] | None = None) -> Path:
    """Write `model.safetensors`, `config.json` and `README.md` into `out_dir`; returns `out_dir`.

    `backbone` holds the architecture's timm key names (no classifier), `head` the projection head's
    keys (`0.weight`, ...), `classifier` a trained classifier's `weight` and `bias` (its class count
    becomes `num_classes`). `seedzoo` adds fields to the config's `seedzoo` block (lineage, source,
    dropped keys, a fingerprint, ...); the result's sha256 is always filled in here. `data` is the
    preprocessing the weights expect (default: the entry's, else the architecture's). `card` defaults to
    the card of the training run (when `seedzoo` holds its `recipe`), else to the entry's generated card.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if entry is not None and entry.architecture != architecture:
        raise ValueError(f"architecture '{architecture}' does not match entry '{entry.name}' "
                         f"({entry.architecture})")
    if data is None:
        data = entry.data if entry is not None else architecture_data_config(architecture)
    classes = int(classifier["weight"].shape[0]) if classifier else 0
    pinned = _write_weights(out, architecture, backbone, head, classifier,
                            _weights_metadata(architecture, entry, data, num_classes=classes))

    block: dict[str, Any] = {"format_version": FORMAT_VERSION}
    if entry is not None:
        block["entry"] = entry.name
        block["head"] = {"in_dim": entry.head.in_dim, "hidden_dim": entry.head.hidden_dim,
                         "out_dim": entry.head.out_dim, "batch_norm": entry.head.batch_norm}
    block.update(seedzoo or {})
    block["filename"] = WEIGHTS_NAME
    block.update(pinned)

    timm_cfg = pretrained_cfg(data, entry)
    if classes:
        timm_cfg["num_classes"] = classes
    config = {
        "architecture": architecture,
        "num_classes": timm_cfg["num_classes"],  # timm's hf-hub loading lets this top-level value win
        "num_features": _num_features(architecture, entry, None if classifier else head),
        "pretrained_cfg": timm_cfg,
        "seedzoo": block,
    }
    write_atomic(out / CONFIG_NAME, json.dumps(config, indent=2, sort_keys=False) + "\n")

    if card is None and "recipe" in block:  # a training run's export: its own card, so publish.py accepts it
        from ..cards import render_run_card

        card = render_run_card(config)
    elif card is None and entry is not None:
        from ..cards import render_card

        card = render_card(entry)
    if card is not None:
        write_atomic(out / CARD_NAME, card)
    return out


def write_run_export(out_dir: str | Path, *, architecture: str, backbone: Mapping[str, torch.Tensor],
                     head: Mapping[str, torch.Tensor] | None, entry: ZooEntry | None, seedzoo: Mapping[str, Any],
                     image_size: int, mean: tuple[float, ...], std: tuple[float, ...],
                     interpolation: str = "bilinear", crop_pct: float = 1.0) -> Path:
    """The export of a training run: a model folder whose `pretrained_cfg` records the preprocessing
    the run trained with (its image size and mean/std), not the entry's published one. timm's
    `resolve_data_config`, `seedzoo.get_transform` and `seedzoo eval` read it from there.

    `crop_pct` 1.0: the run's images were resized to `image_size` whole (no crop margin to undo).
    """
    data = DataConfig(input_size=(3, image_size, image_size), crop_pct=crop_pct, interpolation=interpolation,
                      normalization=Normalization(tuple(mean), tuple(std), note="the training run's mean/std"))
    return write_model_folder(out_dir, architecture=architecture, backbone=backbone, head=head, entry=entry,
                              seedzoo=seedzoo, data=data)


def save_model(model: nn.Module, out_dir: str | Path, *, head: nn.Module | None = None,
               seedzoo: Mapping[str, Any] | None = None) -> Path:
    """Write a timm model (any seedzoo or timm architecture, fine-tuned or not) as a seedzoo model folder.

    The folder holds the network, its trained classifier when it has one (`num_classes` > 0), the
    preprocessing of its `pretrained_cfg`, and `head` (a projection head) when given. It loads back
    with `seedzoo.create_model(out_dir, pretrained=True, num_classes=N)` (N: the classifier's classes;
    without it, the representation), `seedzoo eval`, `seedzoo export` and
    `timm.create_model("local-dir:<out_dir>", pretrained=True)`. The weights the model was built from
    (`model.seedzoo_weights`) are recorded as `derived_from`; the folder claims no zoo entry, since
    its weights are no longer the entry's. Returns `out_dir`.

        >>> model = seedzoo.create_model("seed_r18", pretrained=True, num_classes=10)
        >>> ...  # fine-tune it
        >>> seedzoo.save_model(model, "my_model")
    """
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    architecture = cfg.get("architecture")
    if not isinstance(architecture, str) or not callable(getattr(model, "get_classifier", None)):
        raise SaveModelError(f"save_model writes timm models (built by seedzoo.create_model or "
                             f"timm.create_model), and this {type(model).__name__} is not one: it has no "
                             f"pretrained_cfg['architecture'] or get_classifier()")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    backbone, found = split_classifier(architecture, state)
    classifier = None
    if int(getattr(model, "num_classes", 0) or 0) > 0:
        timm_model: Any = model  # timm's classifier interface, which nn.Module does not declare
        layer = timm_model.get_classifier()
        if not isinstance(layer, nn.Linear) or layer.bias is None or len(found) != 2:
            raise SaveModelError(f"the classifier of this '{architecture}' is a {type(layer).__name__}; "
                                 f"save_model keeps a Linear classifier with a bias (timm's default)")
        classifier = {"weight": layer.weight.detach().cpu().contiguous(),
                      "bias": layer.bias.detach().cpu().contiguous()}
    check_backbone(architecture, backbone, source=f"the state of this '{architecture}' model")
    block: dict[str, Any] = {"saved_by": "seedzoo.save_model"}
    weights = getattr(model, "seedzoo_weights", None)
    if weights is not None:
        block["derived_from"] = {"path": str(weights.path), "sha256": weights.sha256, "format": weights.format,
                                 **({"entry": weights.entry} if weights.entry else {})}
    block.update(seedzoo or {})
    head_state = None
    if head is not None:
        head_state = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    return write_model_folder(out_dir, architecture=architecture, backbone=backbone, head=head_state,
                              seedzoo=block, data=data_config_from_cfg(cfg, where=f"the pretrained_cfg of the "
                                                                               f"'{architecture}' model"),
                              classifier=classifier)


def lineage_record(entry: ZooEntry) -> dict[str, Any]:
    """The teacher lineage of an entry, for the `seedzoo` block (how a teacher was itself trained)."""
    return entry.lineage_record()


def summarize_dropped(dropped: Mapping[str, str]) -> dict[str, Any]:
    """Dropped keys grouped by reason (rule -> count), plus the full sorted list."""
    rules: dict[str, int] = {}
    for reason in dropped.values():
        rules[reason] = rules.get(reason, 0) + 1
    return {"count": len(dropped), "rules": dict(sorted(rules.items())),
            "keys": {k: dropped[k] for k in sorted(dropped)}}


def _split_release(entry: ZooEntry, src: Path):
    from .io import ChecksumError
    from .official import read_checkpoint, split_official

    if entry.source is None:
        raise ValueError(f"entry '{entry.name}' has no official release to convert (recipe only)")
    source_sha256 = sha256_file(src)
    if entry.source.sha256 and source_sha256 != entry.source.sha256:
        raise ChecksumError(f"official release {src.name} of '{entry.name}'", entry.source.sha256, source_sha256)
    split = split_official(read_checkpoint(src), entry.architecture, entry.head, layout=entry.source.layout)
    return split, source_sha256


def convert_release_weights(entry: ZooEntry, src: str | Path, out_file: str | Path) -> str:
    """Convert an official release file of `entry` into `out_file` (seedzoo safetensors) only: what an
    on-the-fly load writes into the cache. Returns the result's sha256."""
    split, _ = _split_release(entry, Path(src))
    return save_weights(out_file, split.backbone, split.head, _weights_metadata(entry.architecture, entry, entry.data))


def convert_release(entry: ZooEntry, src: str | Path, out_dir: str | Path, *, source_url: str | None = None,
                    fingerprint: bool = True) -> Path:
    """Convert one official release file of `entry` into a seedzoo model folder (to publish).

    The file is read with `weights_only=True`; its layout must be the entry's (an unknown layout is
    refused, naming the keys that did not match). When the entry pins the source's sha256, the file
    must match it. The weights file is byte-identical to what `convert_release_weights` writes.
    """
    from .fingerprint import compute_fingerprint

    split, source_sha256 = _split_release(entry, Path(src))
    assert entry.source is not None
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
                                                   entry.data.input_size)
    return write_model_folder(out_dir, architecture=entry.architecture, backbone=split.backbone,
                              head=split.head, entry=entry, seedzoo=block)
