"""From a model name and `pretrained` to verified, key-checked weights: the one path every loader takes.

`seedzoo.create_model`, `load_projection_head` and `get_transform` call `resolve` once; it answers with
a `Resolved`: the architecture, the zoo entry (if any), the checked weights ready for timm, and the
preprocessing that belongs to them. The factory then only builds the model.

Names: a zoo entry (`seed_mbv3_large.mocov2_r50_200ep`), an alias (`seed_mbv3_large`), a timm
architecture (`seed_mobilenetv3_large`, `resnet18`), `hf-hub:ORG/REPO[@REV]`, or the path of a model
folder (a run's `export/<name>/`, or the run folder itself). A hub name or a folder names its own weights.

`pretrained` has one meaning everywhere:

- `True`: the weights the name stands for (an entry's published weights, a folder's own file);
- `False`: random initialisation;
- a path: that file or folder (seedzoo safetensors, a model folder, a run folder, an official release),
  or a plain state dict of the architecture (a `.pth`/`.pt` read with `weights_only=True`, or a plain
  safetensors file: timm's key names, a classifier allowed), checked key by key and shape by shape;
- an `hf-hub:ORG/REPO[@REV]` id where a path may stand (the folder it names).

Weights that hold a trained classifier declare its class count (`CheckedWeights.num_classes`, and so
`num_classes` in the model's `pretrained_cfg`): a model built with that many classes gets it.

`None` is refused: it has meant "random" in some libraries and "the default weights" in others.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import SeedzooError
from ..timm_cfg import pretrained_cfg, set_weights_locator
from ..zoo import (
    DataConfig,
    UnknownModelError,
    ZooEntry,
    aliases,
    get_entry,
    list_entries,
)
from .io import (
    BACKBONE_PREFIX,
    CONFIG_NAME,
    FORMAT,
    HEAD_NAME,
    HEAD_PREFIX,
    LAYOUT_KEY,
    TIMM_LAYOUT,
    WEIGHTS_NAME,
    BackboneMismatchError,
    WeightsFormatError,
    check_backbone,
    check_finite,
    check_finite_file,
    find_weights,
    load_weights,
    looks_like_safetensors,
    read_config,
    read_header,
    read_verified_header,
)
from .preprocessing import architecture_data_config, data_config_from_cfg

__all__ = [
    "HF_PREFIX",
    "RUN_EXPORT",
    "CheckedWeights",
    "Pretrained",
    "PretrainedError",
    "Resolved",
    "WeightsSource",
    "classifier_classes",
    "classifier_names",
    "is_model_path",
    "locate",
    "reads_seedzoo_layout",
    "resolve",
    "resolve_target",
    "split_classifier",
]

HF_PREFIX = "hf-hub:"
RUN_EXPORT = "export"  # a training run folder keeps each student's exported model in export/<name>/
Pretrained = bool | str | os.PathLike


class PretrainedError(SeedzooError, ValueError):
    """A `pretrained` value that cannot be honoured for this name (no weights, wrong type, ...)."""


@dataclass(frozen=True)
class WeightsSource:
    """Where a model's weights came from: attached to models as `model.seedzoo_weights`."""

    path: Path
    sha256: str
    format: str  # "seedzoo", "plain" (a state dict of the architecture) or the official layout it was read in
    entry: str = ""  # the zoo entry the file names, if any


@dataclass
class CheckedWeights:
    """Weights verified and checked against an architecture: a seedzoo file timm's loader reads as is,
    or (official layouts, plain timm architectures) the backbone and head tensors themselves."""

    source: WeightsSource
    file: Path | None = None
    backbone: dict[str, torch.Tensor] | None = None
    head: dict[str, torch.Tensor] | None = None
    entry: ZooEntry | None = None  # the zoo entry the weights belong to, when known
    recorded: DataConfig | None = None  # the preprocessing the weights record themselves
    num_classes: int = 0  # the classes of the trained classifier the weights hold (0: none)

    def head_tensors(self) -> dict[str, torch.Tensor]:
        """The projection head's tensors (`0.weight`, ...); empty when the file holds none."""
        if self.head is not None:
            return self.head
        from safetensors import safe_open

        assert self.file is not None
        with safe_open(str(self.file), framework="pt") as f:
            return {k[len(HEAD_PREFIX):]: f.get_tensor(k) for k in f.keys() if k.startswith(HEAD_PREFIX)}  # noqa: SIM118


@dataclass
class Resolved:
    """What `resolve` found: the model to build, its weights (None: random init) and their preprocessing."""

    name: str
    architecture: str
    entry: ZooEntry | None
    weights: CheckedWeights | None
    data: DataConfig  # the preprocessing of these weights: the one transform source
    folder_cfg: dict[str, Any] = field(default_factory=dict)  # the named folder's own pretrained_cfg

    def pretrained_cfg(self) -> dict[str, Any]:
        """timm `pretrained_cfg` fields for the model: the weights' preprocessing and the entry's tag."""
        cfg = pretrained_cfg(self.data, self.entry)
        if self.weights is not None and self.weights.num_classes:
            cfg["num_classes"] = self.weights.num_classes  # timm keeps the classifier for this many classes
        return {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}


# --- names -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Target:
    name: str
    architecture: str
    entry: ZooEntry | None
    folder: Path | None = None  # a hub snapshot or a model folder: the name's own weights
    config: dict[str, Any] = field(default_factory=dict)


def is_model_path(name: str | os.PathLike) -> bool:
    """Whether `name` is the path of a model folder (or run folder, or seedzoo file) rather than a name."""
    path = Path(name).expanduser()
    if isinstance(name, str) and not (os.sep in name or name.startswith((".", "~")) or path.exists()):
        return False
    return path.exists()


def locate(path: str | os.PathLike) -> Path:
    """A weights file or model folder; a training run folder resolves to its student's export
    (`export/<name>/`; a run of several students names one of them)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"pretrained={str(path)!r}: no such file or folder")
    if path.is_dir() and not (path / WEIGHTS_NAME).is_file() and (path / RUN_EXPORT).is_dir():
        exports = sorted(p for p in (path / RUN_EXPORT).iterdir() if (p / WEIGHTS_NAME).is_file())
        if len(exports) == 1:
            return exports[0]
        if exports:
            raise PretrainedError(f"pretrained={str(path)!r} is a run of {len(exports)} students "
                                  f"({', '.join(p.name for p in exports)}): pass one export, e.g. {exports[0]}")
    return path


def _registered_entry(name: str | None) -> ZooEntry | None:
    if not name:
        return None
    try:
        return get_entry(name)
    except UnknownModelError:
        return None


def _folder_target(name: str, folder: Path) -> _Target:
    config = read_config(folder)
    entry = _registered_entry((config.get("seedzoo") or {}).get("entry"))
    if entry is not None and entry.architecture != config["architecture"]:
        entry = None  # a run of another architecture under the entry's name: its own record speaks
    return _Target(name, config["architecture"], entry, folder, config)


def _file_target(name: str, file: Path) -> _Target:
    header = read_header(file)  # which model it is; the weights are verified when they are loaded
    architecture = header.metadata.get("architecture", "")
    if header.metadata.get("format") != FORMAT or not architecture:
        raise WeightsFormatError(f"{file} is not a seedzoo weights file (no 'format: seedzoo' and architecture in "
                                 f"its metadata), so it does not say what model it is: pass a model name and "
                                 f"pretrained='{file}'")
    return _Target(name, architecture, _registered_entry(header.metadata.get("entry")), file, {})


def resolve_target(name: str | os.PathLike) -> _Target:
    """What a name designates: (entry or None, timm architecture, the folder it names, if any)."""
    if isinstance(name, str) and name.startswith(HF_PREFIX):
        from .hub import resolve_hf_hub

        return _folder_target(name, Path(resolve_hf_hub(name)))
    if is_model_path(name):
        path = locate(name)
        if path.is_dir():
            return _folder_target(str(name), path)
        return _file_target(str(name), path)
    name = str(name)
    try:
        entry = get_entry(name)
    except UnknownModelError:
        import timm

        from .. import models  # noqa: F401  (seedzoo's architectures are timm names too)

        if timm.is_model(name):
            return _Target(name, name, None)
        names = [e.name for e in list_entries()] + list(aliases()) + timm.list_models("seed_*")
        raise UnknownModelError(name, sorted(set(names))) from None
    return _Target(name, entry.architecture, entry)


# --- weights -----------------------------------------------------------------------------------

def reads_seedzoo_layout(architecture: str) -> bool:
    """Whether the architecture's timm loader reads seedzoo's `backbone.`/`head.` layout: seedzoo's own
    architectures strip `backbone.` and drop `head.` in their checkpoint_filter_fn; timm's do not."""
    import timm

    return timm.models.model_entrypoint(architecture).__module__.split(".")[0] == "seedzoo"


def classifier_names(architecture: str) -> tuple[str, ...]:
    """The module names of the architecture's classifier (`fc`, `classifier`, ...), from its timm cfg."""
    from ..models import meta_model

    cfg: dict[str, Any] = getattr(meta_model(architecture), "pretrained_cfg", None) or {}
    names = cfg.get("classifier") or ()
    return (names,) if isinstance(names, str) else tuple(names)


def _classifier_prefixes(architecture: str) -> tuple[str, ...]:
    return tuple(f"{n}." for n in classifier_names(architecture))


def split_classifier(architecture: str, state: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the headless network's entries, the classifier's) of a state dict of `architecture`, by the
    classifier names of its timm pretrained cfg (`fc`, `classifier`, ...)."""
    prefixes = _classifier_prefixes(architecture)
    classifier = {k: v for k, v in state.items() if prefixes and k.startswith(prefixes)}
    return {k: v for k, v in state.items() if k not in classifier}, classifier


def classifier_classes(architecture: str, classifier: Mapping[str, Any], source: str) -> int:
    """The class count of a trained classifier's tensors (or header specs), checked key by key against
    the architecture built with that many classes; 0 for none."""
    if not classifier:
        return 0
    import timm

    weights = [v for k, v in sorted(classifier.items()) if k.endswith(".weight")]
    classes = int(weights[0].shape[0]) if weights else 0
    with torch.device("meta"):
        model = timm.create_model(architecture, pretrained=False, num_classes=max(classes, 1))
    prefixes = _classifier_prefixes(architecture)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith(prefixes)}
    got = {k: tuple(v.shape) for k, v in classifier.items()}
    if not classes or got != expected:
        raise BackboneMismatchError(f"the classifier in {source} ({got}) does not fit '{architecture}' with "
                                    f"{classes} classes ({expected}); save the model's own state_dict()")
    return classes


def check_weights(path: str | os.PathLike, architecture: str, entry: ZooEntry | None,
                  trusted_sha256: str | None = None) -> CheckedWeights:
    """Verify and key-check the weights at `path` for `architecture`, reading as little as possible.

    A model folder's file is checked against the sha256 its `config.json` pins, a seedzoo file against
    the content hash in its own header; `trusted_sha256` is the hash a resolver already verified.
    """
    file, pinned = find_weights(locate(path))
    if looks_like_safetensors(file):
        return _check_safetensors(file, pinned or trusted_sha256, architecture, entry)
    from .io import verify_sha256

    sha = verify_sha256(file, pinned or trusted_sha256)  # before a byte of it is unpickled
    return _check_pickled_file(file, sha, architecture, entry)


def _check_safetensors(file: Path, pinned: str | None, architecture: str, entry: ZooEntry | None) -> CheckedWeights:
    header = read_verified_header(file, expected_sha256=pinned)
    meta = header.metadata
    if meta.get("format") != FORMAT:
        from safetensors.torch import load_file

        return _check_plain(load_file(str(file)), WeightsSource(file, header.sha256, "plain"), architecture, entry)
    if meta.get("architecture") and meta["architecture"] != architecture:
        raise PretrainedError(f"{file} holds weights of '{meta['architecture']}', not '{architecture}': create "
                              f"the model by that name, or pass the matching file")
    named = _registered_entry(meta.get("entry"))
    if named is not None and named.architecture != meta.get("architecture", architecture):
        # Trusting it would give the model another entry's preprocessing and lineage.
        raise WeightsFormatError(f"{file} names entry '{named.name}', whose architecture is '{named.architecture}', "
                                 f"but holds '{meta.get('architecture')}' weights: its metadata contradicts itself, "
                                 f"so it is refused; write it again with the right entry (or none)")
    check_finite_file(file)
    source = WeightsSource(file, header.sha256, FORMAT, meta.get("entry", ""))
    entry = entry or named
    recorded_cfg = json.loads(meta["pretrained_cfg"]) if meta.get("pretrained_cfg") else None
    recorded = data_config_from_cfg(recorded_cfg, where=f"the pretrained_cfg of {file}") if recorded_cfg else None
    if meta.get(LAYOUT_KEY) == TIMM_LAYOUT:  # the network's own names: timm's loader reads the file as it is
        body, classifier = split_classifier(architecture, header.tensors)
        check_backbone(architecture, body, source=f"the weights in {file}", storage_dtype=meta.get("dtype"))
        classes = classifier_classes(architecture, classifier, str(file))
        return CheckedWeights(source, file=file, head=_head_beside(file), entry=entry, recorded=recorded,
                              num_classes=classes)
    check_backbone(architecture, header.backbone_specs, source=f"the weights in {file}",
                   storage_dtype=meta.get("dtype"))
    # A linear head with a declared class count is a trained classifier (seedzoo's layout keeps it there).
    classes = int((recorded_cfg or {}).get("num_classes") or 0)
    if reads_seedzoo_layout(architecture):
        return CheckedWeights(source, file=file, entry=entry, recorded=recorded, num_classes=classes)
    from safetensors.torch import load_file

    # A plain timm architecture in seedzoo's prefixed layout (an export written before the `timm` layout).
    tensors = load_file(str(file))
    backbone = {k[len(BACKBONE_PREFIX):]: v for k, v in tensors.items() if k.startswith(BACKBONE_PREFIX)}
    head = {k[len(HEAD_PREFIX):]: v for k, v in tensors.items() if k.startswith(HEAD_PREFIX)}
    return CheckedWeights(source, backbone=backbone, head=head, entry=entry, recorded=recorded)


def _head_beside(file: Path) -> dict[str, torch.Tensor]:
    """The projection head a `timm`-layout file keeps beside it (verified against the sha256 its folder's
    config.json pins, and its own content hash); empty when there is none."""
    beside = file.parent / HEAD_NAME
    if not beside.is_file():
        return {}
    config = file.parent / CONFIG_NAME
    pinned = (read_config(file.parent).get("seedzoo") or {}).get("head_file", {}).get("sha256") \
        if config.is_file() else None
    return load_weights(beside, expected_sha256=pinned).head or {}


def _check_plain(state: Mapping[str, torch.Tensor], source: WeightsSource, architecture: str,
                 entry: ZooEntry | None) -> CheckedWeights:
    """A plain state dict of `architecture` (timm's names; its classifier, if any, under the
    architecture's classifier names), checked key by key and shape by shape."""
    body, classifier = split_classifier(architecture, state)
    where = f"the plain state dict in {source.path}"
    check_backbone(architecture, body, source=where)
    check_finite(state, str(source.path))
    classes = classifier_classes(architecture, classifier, where)
    return CheckedWeights(source, backbone=dict(state), head={}, entry=entry, num_classes=classes)


def _is_plain(checkpoint: Mapping[str, Any], architecture: str) -> bool:
    """Whether a checkpoint is a bare state dict that names every key of the (headless) architecture."""
    from ..models import meta_model

    if not checkpoint or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        return False
    return set(meta_model(architecture).state_dict()) <= set(checkpoint)


def _check_pickled_file(file: Path, sha: str, architecture: str, entry: ZooEntry | None) -> CheckedWeights:
    from .official import OfficialLayoutError, read_checkpoint, split_official

    checkpoint = read_checkpoint(file)
    if _is_plain(checkpoint, architecture):
        return _check_plain(checkpoint, WeightsSource(file, sha, "plain"), architecture, entry)
    try:
        split = split_official(checkpoint, architecture, entry.head if entry else None)
    except OfficialLayoutError as err:
        if all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
            # Neither an official layout nor a complete state dict: say which keys stand in the way.
            _check_plain(checkpoint, WeightsSource(file, sha, "plain"), architecture, entry)
        raise err from None
    return CheckedWeights(WeightsSource(file, sha, split.layout, entry.name if entry else ""),
                          backbone=split.backbone, head=split.head, entry=entry)


def _no_weights_error(entry: ZooEntry) -> PretrainedError:
    why = " ".join(entry.notes) or "no weights are published for it yet."
    return PretrainedError(
        f"'{entry.name}' has no weights to download: {why.rstrip('.')}. Pass a file instead, e.g. "
        f"create_model('{entry.name}', pretrained='path/to/official.pth.tar') (an official release file) "
        f"or pretrained='path/to/model_folder' (a seedzoo export), or train it with `seedzoo train {entry.name}`.")


def _weights_of(target: _Target, pretrained: Pretrained) -> CheckedWeights | None:
    if pretrained is None or not isinstance(pretrained, (bool, str, os.PathLike)):
        raise PretrainedError(f"pretrained must be True (the weights '{target.name}' stands for), False (random "
                              f"init) or a path, not {pretrained!r}")
    if pretrained is False:
        return None
    if target.folder is not None:
        if pretrained is not True:
            raise PretrainedError(f"'{target.name}' names its own weights: pass pretrained=True (or False), "
                                  f"not a path")
        return check_weights(target.folder, target.architecture, target.entry)
    if pretrained is True:
        entry = target.entry
        if entry is None:
            raise PretrainedError(
                f"pretrained=True needs a zoo entry, and '{target.name}' is an architecture. Use an entry "
                f"(`seedzoo list` shows them) or pass a file: pretrained='path/to/weights'.")
        if not entry.has_file:
            raise _no_weights_error(entry)
        from .hub import resolve_weights

        # The resolver verified the file against its source's hash; the content hash is checked below.
        return check_weights(resolve_weights(entry), target.architecture, entry,
                             trusted_sha256=entry.weights.sha256 or None)
    if isinstance(pretrained, str) and pretrained.startswith(HF_PREFIX):  # a hub folder where a path may stand
        from .hub import resolve_hf_hub

        pretrained = resolve_hf_hub(pretrained)
    return check_weights(pretrained, target.architecture, target.entry)


def resolve(name: str | os.PathLike, pretrained: Pretrained = False) -> Resolved:
    """The architecture, entry, checked weights and preprocessing for `name` with `pretrained`."""
    target = resolve_target(name)
    weights = _weights_of(target, pretrained)
    entry = target.entry or (weights.entry if weights is not None else None)
    folder_cfg = dict(target.config.get("pretrained_cfg") or {})
    return Resolved(target.name, target.architecture, entry, weights,
                    _data_config(target, entry, weights, folder_cfg, pretrained is True), folder_cfg)


def _data_config(target: _Target, entry: ZooEntry | None, weights: CheckedWeights | None,
                 folder_cfg: dict[str, Any], entry_weights: bool) -> DataConfig:
    """The preprocessing that belongs to the weights: the entry's for its own published weights, else
    what the weights record (a folder's config.json, a file's header), else the entry's, else the
    architecture's default."""
    if entry is not None and entry_weights and target.folder is None:
        return entry.data
    if folder_cfg:
        return data_config_from_cfg(folder_cfg, where=f"{CONFIG_NAME} of {target.name}")
    if weights is not None and weights.recorded is not None:
        return weights.recorded
    if weights is not None and not weights.source.path.is_dir():
        beside = weights.source.path.parent / CONFIG_NAME
        if beside.is_file() and weights.source.path.name == WEIGHTS_NAME:
            cfg = read_config(beside.parent).get("pretrained_cfg")
            if cfg:
                return data_config_from_cfg(cfg, where=str(beside))
    if entry is not None:
        return entry.data
    return architecture_data_config(target.architecture)


def _entry_weights_file(entry_name: str) -> str:
    """The path of an entry's verified weights file: what its timm pretrained tag loads."""
    checked = resolve(entry_name, True).weights
    assert checked is not None  # an entry with a tag has weights, or resolve raised
    return str(checked.source.path)


set_weights_locator(_entry_weights_file)  # timm's pretrained tags find their files through seedzoo
