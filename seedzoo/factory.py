"""The public API: models, projection heads and transforms by name, with weights from anywhere.

A name is a zoo entry (`seed_mbv3_large.mocov2_r50_200ep`), an alias (`seed_mbv3_large`), a timm
architecture (`seed_mobilenetv3_large`, `resnet18`) or `hf-hub:ORG/REPO[@REV]`. `pretrained` is False,
True (the entry's published weights, verified), or a path: a seedzoo `.safetensors` file, a model
folder (`config.json` + `model.safetensors`), a training run folder (`export/` inside), or an
official release file in any layout seedzoo knows.

Weights go through timm's own loader, so every timm option (`num_classes`, `global_pool`,
`features_only`, `out_indices`, ...) works with them. Before timm loads anything, the backbone is
checked key by key against the architecture: a missing, unexpected or misshapen key is an error,
whatever timm's loader would have tolerated.
"""
from __future__ import annotations

import logging
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import timm
import torch
from torch import nn

from . import models  # noqa: F401  (registers seedzoo's architectures with timm)
from .zoo import DataConfig, UnknownModelError, ZooEntry, aliases, get_entry, list_entries

__all__ = ["WeightsSource", "create_model", "load_projection_head", "get_transform", "list_models", "model_info"]

PathLike = str | Path
_HF_PREFIX = "hf-hub:"
_RUN_EXPORT = "export"  # a training run folder keeps its exported model here


@dataclass(frozen=True)
class WeightsSource:
    """Where a model's weights came from: attached to models as `model.seedzoo_weights`."""

    path: Path
    sha256: str
    format: str  # "seedzoo" or the official layout it was read in
    entry: str = ""  # the zoo entry the file names, if any


# --- names -------------------------------------------------------------------------------------

def _architectures() -> list[str]:
    return timm.list_models("seed_*")


def _resolve_name(name: str) -> tuple[ZooEntry | None, str]:
    """(entry or None, timm architecture) for an entry, an alias or an architecture name."""
    try:
        entry = get_entry(name)
    except UnknownModelError:
        if timm.is_model(name):
            return None, name
        names = [e.name for e in list_entries()] + list(aliases()) + _architectures()
        raise UnknownModelError(name, sorted(set(names))) from None
    return entry, entry.architecture


def _registered_entry(name: str | None) -> ZooEntry | None:
    if not name:
        return None
    try:
        return get_entry(name)
    except UnknownModelError:
        return None


# --- weights -----------------------------------------------------------------------------------

def _locate(path: PathLike) -> Path:
    """A weights file or model folder; a training run folder resolves to its `export/`."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"pretrained={str(path)!r}: no such file or folder")
    if path.is_dir() and not (path / "model.safetensors").is_file() and (path / _RUN_EXPORT).is_dir():
        return path / _RUN_EXPORT
    return path


def _reads_seedzoo_format(architecture: str) -> bool:
    # seedzoo's architectures strip `backbone.` / drop `head.` in their checkpoint_filter_fn.
    return timm.models.model_entrypoint(architecture).__module__.split(".")[0] == "seedzoo"


def _is_safetensors(file: Path) -> bool:
    from .weights.io import is_safetensors

    # By name too, so that a truncated safetensors file is reported as one, not as a foreign checkpoint.
    return file.suffix == ".safetensors" or is_safetensors(file)


@dataclass
class _Checked:
    """Weights checked against an architecture, ready for timm: a file, or a backbone to write."""

    source: WeightsSource
    file: Path | None = None
    backbone: dict[str, torch.Tensor] | None = None
    entry: ZooEntry | None = None  # the zoo entry the weights belong to, when known


def _check_weights(path: PathLike, architecture: str, entry: ZooEntry | None) -> _Checked:
    """Verify (the sha256 a folder's config.json pins) and key-check the weights at `path` for
    `architecture`, reading as little as possible."""
    from .weights.io import find_weights, verify_sha256

    file, pinned = find_weights(_locate(path))
    sha = verify_sha256(file, pinned)  # before a byte of it is parsed
    if _is_safetensors(file):
        return _check_seedzoo_file(file, sha, architecture, entry)
    return _check_official_file(file, sha, architecture, entry)


def _check_seedzoo_file(file: Path, sha: str, architecture: str, entry: ZooEntry | None) -> _Checked:
    from .weights.io import BACKBONE_PREFIX, FORMAT, WeightsFormatError, check_backbone, read_header

    header = read_header(file)
    meta = header.metadata
    if meta.get("format") != FORMAT:
        raise WeightsFormatError(f"{file} is a safetensors file but not seedzoo's format (no 'format: seedzoo' "
                                 f"in its metadata)")
    if meta.get("architecture") and meta["architecture"] != architecture:
        raise ValueError(f"{file} holds weights of '{meta['architecture']}', not '{architecture}': create the "
                         f"model by that name, or pass the matching file")
    check_backbone(architecture, header.backbone_shapes, source=f"the weights in {file}")
    source = WeightsSource(file, sha, FORMAT, meta.get("entry", ""))
    entry = entry or _registered_entry(meta.get("entry"))
    if _reads_seedzoo_format(architecture):
        return _Checked(source, file=file, entry=entry)
    from safetensors.torch import load_file

    # A plain timm architecture (e.g. a user's own student) knows only its own key names.
    tensors = load_file(str(file))
    backbone = {k[len(BACKBONE_PREFIX):]: v for k, v in tensors.items() if k.startswith(BACKBONE_PREFIX)}
    return _Checked(source, backbone=backbone, entry=entry)


def _check_official_file(file: Path, sha: str, architecture: str, entry: ZooEntry | None) -> _Checked:
    from .weights.official import read_checkpoint, split_official

    split = split_official(read_checkpoint(file), architecture, entry.head if entry else None)
    return _Checked(WeightsSource(file, sha, split.layout, entry.name if entry else ""),
                    backbone=split.backbone, entry=entry)


@contextmanager
def _timm_file(checked: _Checked) -> Iterator[Path]:
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


def _pretrained_cfg(entry: ZooEntry | None) -> dict[str, Any]:
    from .weights.export import timm_pretrained_cfg

    cfg = timm_pretrained_cfg(entry.data if entry else DataConfig(), entry)
    return {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}


def _finish(model: nn.Module, entry: ZooEntry | None, source: WeightsSource | None) -> nn.Module:
    cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
    cfg.pop("file", None)  # may name a temporary file; the real source is `seedzoo_weights`
    model.pretrained_cfg = model.default_cfg = cfg
    model.seedzoo_entry = entry
    model.seedzoo_weights = source
    return model


def _build(architecture: str, entry: ZooEntry | None, checked: _Checked | None,
           kwargs: dict[str, Any]) -> nn.Module:
    if entry is None and checked is not None:
        entry = checked.entry
    overlay = _pretrained_cfg(entry)
    overlay.update(kwargs.pop("pretrained_cfg_overlay", None) or {})
    if checked is None:
        model = timm.create_model(architecture, pretrained=False, pretrained_cfg_overlay=overlay, **kwargs)
        return _finish(model, entry, None)
    with _timm_file(checked) as file, _without_timm_key_report():
        model = timm.create_model(architecture, pretrained=True,
                                  pretrained_cfg_overlay={**overlay, "file": str(file)}, **kwargs)
    return _finish(model, entry, checked.source)


def _no_weights_error(entry: ZooEntry) -> ValueError:
    why = " ".join(entry.notes) or "no weights are published for it yet."
    return ValueError(
        f"'{entry.name}' has no weights to download: {why.rstrip('.')}. Pass a file instead, e.g. "
        f"create_model('{entry.name}', pretrained='path/to/official.pth.tar') (an official release file) "
        f"or pretrained='path/to/model_folder' (a seedzoo export), or train it with `seedzoo train {entry.name}`.")


def _resolve_pretrained(pretrained: bool | PathLike, entry: ZooEntry | None, architecture: str,
                        name: str) -> _Checked | None:
    if pretrained is False or pretrained is None:
        return None
    if pretrained is True:
        if entry is None:
            raise ValueError(
                f"pretrained=True needs a zoo entry, and '{name}' is an architecture. Use an entry "
                f"(`seedzoo list` shows them) or pass a file: pretrained='path/to/weights'.")
        if not entry.has_file:
            raise _no_weights_error(entry)
        from .weights.hub import resolve_weights

        # The resolver verifies what it returns against the hash of its source (the published
        # sha256, or the one recorded when it converted an official release); it is not pinned again.
        return _check_weights(resolve_weights(entry), architecture, entry)
    if isinstance(pretrained, (str, os.PathLike)):
        return _check_weights(pretrained, architecture, entry)
    raise TypeError(f"pretrained must be False, True or a path, not {type(pretrained).__name__}")


def _hub_model(spec: str) -> tuple[ZooEntry | None, str, Path, dict[str, Any]]:
    from .weights.export import read_config
    from .weights.hub import resolve_hf_hub

    folder = Path(resolve_hf_hub(spec))
    config = read_config(folder)
    entry = _registered_entry((config.get("seedzoo") or {}).get("entry"))
    return entry, config["architecture"], folder, config


# --- public API --------------------------------------------------------------------------------

def create_model(name: str, pretrained: bool | PathLike = False, **kwargs: Any) -> nn.Module:
    """Build a model by name, optionally with pretrained weights; `kwargs` go to `timm.create_model`.

    Without `num_classes` the model has no classifier (`num_classes=0`): seedzoo's weights are
    self-supervised backbones. The entry's preprocessing is `model.pretrained_cfg` (timm's fields),
    the record itself `model.seedzoo_entry`, and the weights' origin `model.seedzoo_weights`.

        >>> model = create_model("seed_mbv3_large", pretrained="mobilenetv3_large_distill.pth.tar")
        >>> features = create_model("seed_r18", pretrained=True, features_only=True, out_indices=(3, 4))

    For `hf-hub:` names the folder is fetched (and verified) first; `pretrained` then says whether
    its weights are loaded.
    """
    if name.startswith(_HF_PREFIX):
        if not isinstance(pretrained, bool):
            raise ValueError(f"'{name}' names its own weights: pass pretrained=True (or False), not a path")
        entry, architecture, folder, config = _hub_model(name)
        checked = _check_weights(folder, architecture, entry) if pretrained else None
        if entry is None:  # not a zoo entry: the folder's own config holds the preprocessing
            overlay = {k: tuple(v) if isinstance(v, list) else v
                       for k, v in (config.get("pretrained_cfg") or {}).items()}
            kwargs["pretrained_cfg_overlay"] = {**overlay, **(kwargs.get("pretrained_cfg_overlay") or {})}
        return _build(architecture, entry, checked, kwargs)
    entry, architecture = _resolve_name(name)
    return _build(architecture, entry, _resolve_pretrained(pretrained, entry, architecture, name), kwargs)


def load_projection_head(name: str, pretrained: bool | PathLike = False) -> nn.Module:
    """The projection head of an entry (`ProjectionHead`), with the weights that trained it.

    `pretrained` takes the same values as in `create_model`; the head's shape comes from the entry,
    or, for an architecture name with a file, from the file's tensors.
    """
    from .models.heads import ProjectionHead
    from .weights.io import find_weights, load_weights
    from .weights.official import check_head, infer_head_spec, read_checkpoint, split_official

    if name.startswith(_HF_PREFIX):
        entry, architecture, folder, _ = _hub_model(name)
        path: PathLike | None = folder if pretrained else None
    else:
        entry, architecture = _resolve_name(name)
        if pretrained is True:
            if entry is None:
                raise ValueError(f"pretrained=True needs a zoo entry, and '{name}' is an architecture")
            if not entry.has_file:
                raise _no_weights_error(entry)
            from .weights.hub import resolve_weights

            path = resolve_weights(entry)
        elif pretrained is False or pretrained is None:
            path = None
        else:
            path = _locate(pretrained)

    if path is None:
        if entry is None:
            raise ValueError(f"'{name}' is an architecture: a projection head needs an entry (its shape) or a file")
        return ProjectionHead.from_spec(entry.head)

    file, _ = find_weights(path)
    if _is_safetensors(file):
        weights = load_weights(path)
        head = weights.head
        if not head:
            fix = (f"`seedzoo train {entry.name}` trains its recipe into a file that keeps the head"
                   if entry is not None and entry.recipe is not None else "pass a file that holds one")
            raise ValueError(f"{file} holds no projection head (no 'head.*' keys): it ships the backbone only; "
                             f"{fix}.")
    else:
        head = split_official(read_checkpoint(file), architecture, entry.head if entry else None).head
    spec = entry.head if entry else infer_head_spec(head)
    check_head(spec, head, source=f"the head in {file}")
    module = ProjectionHead.from_spec(spec)
    module.load_state_dict(head, strict=True)
    return module.eval()


def list_models(pattern: str = "*", pretrained: bool | None = None, teacher: str | None = None) -> list[str]:
    """Entry names matching `pattern` (fnmatch); `pretrained=True` keeps those with weights available,
    `teacher` filters on the teacher's entry name or alias (fnmatch)."""
    return [e.name for e in list_entries(pattern, pretrained=pretrained, teacher=teacher)]


def model_info(name: str) -> ZooEntry:
    """The zoo record of an entry or alias."""
    return get_entry(name)


def get_transform(name: str, train: bool = False):
    """The preprocessing of an entry (torchvision transforms on PIL images).

    Eval: Resize(int(size / crop_pct)) (256 for 224), CenterCrop(size), bilinear, ToTensor, Normalize
    with the entry's own normalisation. Train: the linear-evaluation protocol's augmentation,
    RandomResizedCrop(size) + horizontal flip (SEED's linear and fine-tuning recipes); the
    distillation augmentation lives in `seedzoo.data`. Architecture names get ImageNet defaults.
    """
    from torchvision import transforms as T

    if name.startswith(_HF_PREFIX):
        entry = _hub_model(name)[0]
    else:
        entry = _resolve_name(name)[0]
    data = entry.data if entry else DataConfig()
    size = data.input_size[-1]
    interp = T.InterpolationMode(data.interpolation)
    norm = T.Normalize(mean=list(data.normalization.mean), std=list(data.normalization.std))
    if train:
        return T.Compose([T.RandomResizedCrop(size, interpolation=interp), T.RandomHorizontalFlip(),
                          T.ToTensor(), norm])
    return T.Compose([T.Resize(int(size / data.crop_pct), interpolation=interp), T.CenterCrop(size),
                      T.ToTensor(), norm])

