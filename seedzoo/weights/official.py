"""Reading the SEED authors' checkpoint layouts and splitting them into backbone and projection head.

Four layouts were released (DESIGN.md section 4, `shared/golden/official_layouts.json`):

- `seed_student`: `{epoch, arch, state_dict, optimizer}`; `state_dict` holds `module.student.*` (backbone,
  head under `fc.`), the frozen teacher under `module.teacher.*` and the queue(s);
- `moco_v2`: the same container; `module.encoder_q.*` (head under `fc.`), `module.encoder_k.*`, queue;
- `swav`: a flat dict of `module.*` with `projection_head.*` and `prototypes.*`;
- `simclr_seed`: `{model: ...}` with `module.module.module.*` (head under `fc.`).

Every key is accounted for: it is used, or dropped by a named rule, or the split fails naming it.
Pickles are read with `weights_only=True` only: a file that needs arbitrary code is refused.
"""
from __future__ import annotations

import io
import pickle
import pickletools
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import SeedzooError
from ..models.heads import HeadStateError, head_shapes, infer_head_spec
from ..zoo import HeadSpec
from .io import check_backbone, check_finite, is_safetensors

__all__ = [
    "LAYOUTS",
    "OfficialLayoutError",
    "OfficialSplit",
    "UnsafeCheckpointError",
    "check_head",
    "detect_layout",
    "infer_head_spec",
    "read_checkpoint",
    "split_official",
]

LAYOUTS = ("seed_student", "moco_v2", "swav", "simclr_seed")

# Training state saved beside the weights (the official trainers save epoch, arch and optimizer).
_CONTAINER_FIELDS = {
    "epoch": "container field: training epoch",
    "arch": "container field: architecture name",
    "optimizer": "container field: optimizer state",
    "amp": "container field: mixed-precision state",
    "scaler": "container field: gradient scaler state",
    "best_acc1": "container field: best accuracy",
}
_TEACHER = "the frozen SEED teacher (not part of the student)"
_SEED_QUEUE = "SEED's queue of teacher embeddings"
_MOCO_KEY_ENCODER = "MoCo's momentum (key) encoder: a lagging copy of encoder_q"
_MOCO_QUEUE = "MoCo's queue of keys"
_SWAV_PROTOTYPES = "SwAV's prototypes (the clustering layer, not part of the embedding)"


class OfficialLayoutError(SeedzooError, ValueError):
    """A checkpoint whose keys do not follow the official layout they are read with."""


class UnsafeCheckpointError(SeedzooError, RuntimeError):
    """A pickle that `weights_only=True` refuses: it would need code to be imported or run."""


@dataclass
class OfficialSplit:
    """An official checkpoint split: backbone with timm names, head with ProjectionHead names, and
    every other key with the reason it was dropped."""

    layout: str
    backbone: dict[str, torch.Tensor]
    head: dict[str, torch.Tensor]
    dropped: dict[str, str] = field(default_factory=dict)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """`torch.load(path, map_location="cpu", weights_only=True)`, with clear errors for refused or
    foreign files. Nothing is ever unpickled with code execution allowed."""
    path = Path(path)
    if is_safetensors(path):
        raise OfficialLayoutError(f"{path} is a safetensors file, not an official PyTorch checkpoint; "
                                  f"read it with seedzoo.weights.load_weights")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        calls = [g for g in pickle_globals(path) if not g.startswith(_PLAIN_GLOBALS)]
        if calls:  # the pickle names functions or classes beyond tensors: unpickling would run code
            shown = ", ".join(calls[:5]) + (f" and {len(calls) - 5} more" if len(calls) > 5 else "")
            raise UnsafeCheckpointError(
                f"{path} is not a plain-tensor checkpoint: unpickling it would import and call {shown}. "
                f"seedzoo will not unpickle it; if you trust its author, turn it into a plain state dict of "
                f"tensors (or safetensors) with their code first.") from None
        raise OfficialLayoutError(f"{path} is not a plain PyTorch checkpoint ({_unpickler_reason(str(err))})") \
            from None
    except Exception as err:  # noqa: BLE001 (torch raises anything from KeyError to RuntimeError on a foreign file)
        detail = f": {type(err).__name__} {err}" if str(err) else f": {type(err).__name__}"
        raise OfficialLayoutError(f"{path} is not a PyTorch checkpoint (truncated, empty or another "
                                  f"format{detail})") from None
    if not isinstance(obj, dict):
        raise OfficialLayoutError(f"{path} holds a {type(obj).__name__}, not a checkpoint dict")
    return obj


# What a plain checkpoint's pickle names: torch's tensor rebuilders and storages, and ordered dicts.
_PLAIN_GLOBALS = ("torch.", "collections.OrderedDict", "_codecs.encode", "builtins.set")


def pickle_globals(path: str | Path) -> list[str]:
    """Every `module.name` a pickle (plain, or inside torch's zip format) would import, read with
    pickletools without executing anything."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                blobs = [z.read(n) for n in z.namelist() if n.endswith(".pkl")]
        else:
            blobs = [path.read_bytes()]
    except (OSError, zipfile.BadZipFile, RuntimeError):
        return []
    found: list[str] = []
    for blob in blobs:
        stream = io.BytesIO(blob)
        while stream.tell() < len(blob):  # torch's legacy format is several pickles in a row
            start, strings = stream.tell(), []
            try:
                for op, arg, _ in pickletools.genops(stream):
                    if isinstance(arg, str):
                        strings.append(arg)
                    if op.name in ("GLOBAL", "INST"):
                        found.append(str(arg).replace(" ", "."))
                    elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                        found.append(f"{strings[-2]}.{strings[-1]}")
            except Exception:  # noqa: BLE001 (a malformed pickle: report what was read so far)
                break
            if stream.tell() == start:
                break
    return list(dict.fromkeys(found))


def _unpickler_reason(message: str) -> str:
    # torch's refusal is a long text that suggests weights_only=False; only the line after
    # "WeightsUnpickler error:" says what was refused, and only that is repeated.
    lines = [ln.strip() for ln in message.split("WeightsUnpickler error:", 1)[-1].splitlines() if ln.strip()]
    reason = lines[0].split(". Please")[0] if lines else ""
    return reason if reason and "weights_only" not in reason else "refused by the tensors-only unpickler"


def _strip_module(key: str) -> str:
    # DDP adds one `module.` per wrapping; SEED's SimCLR file has three, single-process runs none.
    while key.startswith("module."):
        key = key[len("module."):]
    return key


def _unwrap(checkpoint: Mapping[str, Any]) -> tuple[str, dict[str, torch.Tensor], dict[str, str]]:
    """(container key or '', the state dict, dropped container fields)."""
    dropped: dict[str, str] = {}
    for container in ("state_dict", "model"):
        if isinstance(checkpoint.get(container), Mapping):
            others = [k for k in checkpoint if k != container]
            unknown = [k for k in others if k not in _CONTAINER_FIELDS]
            if unknown:
                raise OfficialLayoutError(
                    f"unknown container fields {unknown} beside '{container}' (known: "
                    f"{sorted(_CONTAINER_FIELDS)})")
            dropped.update({k: _CONTAINER_FIELDS[k] for k in others})
            state = dict(checkpoint[container])
            break
    else:
        container, state = "", dict(checkpoint)
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise OfficialLayoutError(f"the checkpoint's state dict holds non-tensor entries: {not_tensors[:10]}")
    return container, state, dropped


def detect_layout(state: Mapping[str, Any]) -> str:
    """Which official layout a checkpoint (container or bare state dict) follows."""
    container, sd, _ = _unwrap(state)
    names = {_strip_module(k) for k in sd}
    if any(n.startswith("student.") for n in names):
        return "seed_student"
    if any(n.startswith("encoder_q.") for n in names):
        return "moco_v2"
    if any(n.startswith(("projection_head.", "prototypes.")) for n in names):
        return "swav"
    if container == "model" or "fc.1.running_mean" in names:
        return "simclr_seed"
    sample = sorted(sd)[:5]
    raise OfficialLayoutError(
        f"cannot tell which official layout this checkpoint follows (first keys: {sample}); expected "
        f"one of {LAYOUTS}: 'student.*' (SEED), 'encoder_q.*' (MoCo), 'projection_head.*'/'prototypes.*' "
        f"(SwAV), or a 'model' container (SimCLR)")


# Each rule maps a key (container prefixes stripped) to ("backbone"|"head", name) or ("drop", reason),
# or None when the layout has no place for it.
_Rule = Callable[[str], "tuple[str, str] | None"]


def _seed_student(name: str) -> tuple[str, str] | None:
    if name.startswith("student.fc."):
        return "head", name[len("student.fc."):]
    if name.startswith("student."):
        return "backbone", name[len("student."):]
    if name.startswith("teacher."):
        return "drop", _TEACHER
    if name in ("queue", "queue_ptr", "small_queue"):
        return "drop", _SEED_QUEUE
    return None


def _moco_v2(name: str) -> tuple[str, str] | None:
    if name.startswith("encoder_q.fc."):
        return "head", name[len("encoder_q.fc."):]
    if name.startswith("encoder_q."):
        return "backbone", name[len("encoder_q."):]
    if name.startswith("encoder_k."):
        return "drop", _MOCO_KEY_ENCODER
    if name in ("queue", "queue_ptr"):
        return "drop", _MOCO_QUEUE
    return None


def _swav(name: str) -> tuple[str, str] | None:
    if name.startswith("projection_head."):
        return "head", name[len("projection_head."):]
    if name.startswith("prototypes."):
        return "drop", _SWAV_PROTOTYPES
    return "backbone", name  # torchvision names; remapping rejects anything else


def _simclr_seed(name: str) -> tuple[str, str] | None:
    if name.startswith("fc."):
        return "head", name[len("fc."):]
    return "backbone", name


_RULES: dict[str, _Rule] = {
    "seed_student": _seed_student, "moco_v2": _moco_v2, "swav": _swav, "simclr_seed": _simclr_seed,
}


def check_head(spec: HeadSpec, head: Mapping[str, Any], source: str = "the head weights") -> None:
    """Raise `OfficialLayoutError` unless `head` has exactly the keys and shapes of `spec`'s ProjectionHead."""
    expected = head_shapes(spec)
    got = {k: tuple(v.shape) if hasattr(v, "shape") else tuple(v) for k, v in head.items()}
    if got != expected:
        diff = sorted(f"{k}: {got.get(k, 'missing')} vs {expected.get(k, 'unexpected')}"
                      for k in expected.keys() | got.keys() if got.get(k) != expected.get(k))
        raise OfficialLayoutError(f"{source} do not match the projection head {spec}: {', '.join(diff[:8])}")


def split_official(checkpoint: Mapping[str, Any], architecture: str, head: HeadSpec | None = None,
                   layout: str | None = None) -> OfficialSplit:
    """Split an official checkpoint into backbone (timm names of `architecture`), projection head and
    dropped keys. `head=None` infers the head's spec from its tensors; `layout=None` detects it.

    Raises `OfficialLayoutError` naming every key no rule accounts for, and `BackboneMismatchError`
    when the backbone does not fit the architecture.
    """
    from ..models import remap_official_backbone

    layout = layout or detect_layout(checkpoint)
    if layout not in _RULES:
        raise ValueError(f"unknown layout '{layout}'; expected one of {LAYOUTS}")
    rule = _RULES[layout]
    _, state, dropped = _unwrap(checkpoint)

    parts: dict[str, dict[str, torch.Tensor]] = {"backbone": {}, "head": {}}
    unmatched = []
    for key, value in state.items():
        verdict = rule(_strip_module(key))
        if verdict is None:
            unmatched.append(key)
        elif verdict[0] == "drop":
            dropped[key] = verdict[1]
        else:
            part = parts[verdict[0]]
            if verdict[1] in part:
                raise OfficialLayoutError(f"'{key}' collides with another key once 'module.' prefixes are removed")
            part[verdict[1]] = value
    if unmatched:
        raise OfficialLayoutError(f"keys that the '{layout}' layout has no place for: {sorted(unmatched)[:20]}"
                                  f"{' ...' if len(unmatched) > 20 else ''}")
    if not parts["backbone"]:
        raise OfficialLayoutError(f"no backbone keys found for the '{layout}' layout")

    head_sd = parts["head"]
    if set(head_sd) == {"weight", "bias"}:  # MoCo-v1: `fc` is one Linear, ProjectionHead's `0`
        head_sd = {f"0.{k}": v for k, v in head_sd.items()}
    try:
        spec = head if head is not None else infer_head_spec(head_sd)
    except HeadStateError as err:
        raise OfficialLayoutError(str(err)) from None
    check_head(spec, head_sd, source=f"the '{layout}' head")
    check_finite({**parts["backbone"], **{f"head.{k}": v for k, v in head_sd.items()}},
                 f"the '{layout}' checkpoint")

    try:
        backbone = remap_official_backbone(architecture, parts["backbone"])
    except KeyError as err:
        raise OfficialLayoutError(f"backbone keys of the '{layout}' layout that '{architecture}' cannot "
                                  f"take: {err.args[0] if err.args else err}") from None
    # A release stored in one float precision throughout (fp16 copies) declares it by being uniform.
    floats = {v.dtype for v in backbone.values() if v.is_floating_point()}
    check_backbone(architecture, backbone, source=f"the backbone of this '{layout}' checkpoint",
                   storage_dtype=floats.pop() if len(floats) == 1 else None)
    return OfficialSplit(layout=layout, backbone=backbone, head=head_sd, dropped=dropped)
