"""seedzoo's weight format: one safetensors file, tensors only, checked by sha256 before it is parsed.

Layout (see docs/ARCHITECTURE.md): the backbone under `backbone.` with the timm key names of the
architecture, the projection head under `head.` (`head.0.*`, `head.2.*`, or `head.0/1/3.*` with
batch norm), and header metadata holding at least `format: seedzoo`, `entry` and `architecture`.
A model folder holds that file as `model.safetensors` beside a `config.json` whose `seedzoo.sha256`
pins it.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import torch

__all__ = [
    "BACKBONE_PREFIX", "HEAD_PREFIX", "FORMAT", "WEIGHTS_NAME", "CONFIG_NAME", "ChecksumError",
    "WeightsFormatError", "BackboneMismatchError", "SeedzooWeights", "WeightsHeader", "sha256_file",
    "verify_sha256", "save_weights", "load_weights", "load_weights_folder", "read_header",
    "is_safetensors", "find_weights", "check_backbone",
]

BACKBONE_PREFIX = "backbone."
HEAD_PREFIX = "head."
FORMAT = "seedzoo"
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
_CHUNK = 1 << 20
# A safetensors header is a little-endian u64 length, then that many bytes of JSON.
_MAX_HEADER = 100 << 20


class ChecksumError(RuntimeError):
    """A weights file whose sha256 is not the one it was published with."""

    def __init__(self, path: str | Path, expected: str, actual: str) -> None:
        super().__init__(
            f"sha256 mismatch for {path}: expected {expected}, got {actual}. The file is damaged or not "
            f"the published one; delete it and download it again (or pass the right file).")
        self.path, self.expected, self.actual = Path(path), expected, actual


class WeightsFormatError(ValueError):
    """A file that is not a (complete) seedzoo safetensors file."""


class BackboneMismatchError(ValueError):
    """Backbone weights whose keys or shapes do not match the architecture they are loaded into."""


@dataclass
class SeedzooWeights:
    """The tensors of a seedzoo weights file, split into backbone and head (prefixes removed)."""

    backbone: dict[str, torch.Tensor]
    head: dict[str, torch.Tensor] | None
    metadata: dict[str, str]
    sha256: str
    path: Path | None = None


@dataclass
class WeightsHeader:
    """What a safetensors header says, read without loading a tensor."""

    metadata: dict[str, str]
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def backbone_shapes(self) -> dict[str, tuple[int, ...]]:
        return _strip(self.shapes, BACKBONE_PREFIX)

    @property
    def head_shapes(self) -> dict[str, tuple[int, ...]]:
        return _strip(self.shapes, HEAD_PREFIX)


def _strip(d: Mapping, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in d.items() if k.startswith(prefix)}


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify_sha256(path: str | Path, expected: str | None) -> str:
    """The file's sha256; raises `ChecksumError` if `expected` is given and differs."""
    actual = sha256_file(path)
    if expected and actual.lower() != expected.lower():
        raise ChecksumError(path, expected, actual)
    return actual


def is_safetensors(path: str | Path) -> bool:
    """Whether a file starts like a safetensors file (length-prefixed JSON header)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and 8 + n <= size


def read_header(path: str | Path) -> WeightsHeader:
    """Metadata and tensor shapes of a safetensors file, without reading tensor data."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise WeightsFormatError(f"{path} is not a safetensors file ({size} bytes: too short for a header)")
        (n,) = struct.unpack("<Q", raw)
        if n > _MAX_HEADER or 8 + n > size:
            raise WeightsFormatError(
                f"{path} is not a safetensors file or is truncated (header of {n} bytes, file of {size}); "
                f"a seedzoo weights file is written by seedzoo.weights.save_weights")
        try:
            header = json.loads(f.read(n))
        except ValueError as err:
            raise WeightsFormatError(f"{path} has no valid safetensors header ({err})") from None
    if not isinstance(header, dict):
        raise WeightsFormatError(f"{path} has no valid safetensors header")
    metadata = header.pop("__metadata__", None) or {}
    end = 8 + n + max((int(v["data_offsets"][1]) for v in header.values()), default=0)
    if end > size:
        raise WeightsFormatError(f"{path} is truncated: the header describes {end} bytes, the file has {size}. "
                                 f"Download it again.")
    shapes = {k: tuple(int(s) for s in v["shape"]) for k, v in header.items()}
    return WeightsHeader(metadata=dict(metadata), shapes=shapes)


# safetensors' dtype names (https://github.com/huggingface/safetensors, format spec).
_DTYPE_NAMES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}


def _write_safetensors(file, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> None:
    """Write the safetensors format byte-deterministically.

    safetensors' own writer serialises the metadata from a hash map, whose order (and so the file's
    sha256) changes from process to process; here keys are sorted, so the same tensors and metadata
    always give the same bytes. Larger dtypes come first, which keeps every tensor aligned.
    """
    order = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    header: dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))}
    offset = 0
    for name in order:
        t = tensors[name]
        if t.dtype not in _DTYPE_NAMES:
            raise TypeError(f"'{name}' has dtype {t.dtype}, which seedzoo's weight files do not store")
        size = t.numel() * t.element_size()
        header[name] = {"dtype": _DTYPE_NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # the data starts 8-byte aligned, as safetensors' writer does
    file.write(struct.pack("<Q", len(raw)))
    file.write(raw)
    for name in order:
        t = tensors[name].reshape(-1)
        if t.numel():
            file.write(t.view(torch.uint8).numpy().data)  # little-endian, as the format requires


def save_weights(path: str | Path, backbone: Mapping[str, torch.Tensor], head: Mapping[str, torch.Tensor] | None,
                 metadata: Mapping[str, str]) -> str:
    """Write backbone (timm names) and head (ProjectionHead names) as seedzoo safetensors; returns its sha256.

    The same tensors and metadata always give the same bytes (and sha256). The file is written next
    to its destination and renamed into place, so a reader never sees half a file.
    """
    tensors: dict[str, torch.Tensor] = {}
    for prefix, part in ((BACKBONE_PREFIX, backbone), (HEAD_PREFIX, head or {})):
        for k, v in part.items():
            if not isinstance(v, torch.Tensor):
                raise TypeError(f"'{prefix}{k}' is a {type(v).__name__}: seedzoo weights hold tensors only")
            tensors[prefix + k] = v.detach().to("cpu").contiguous()
    meta = {str(k): str(v) for k, v in metadata.items()}
    meta["format"] = FORMAT
    if not meta.get("architecture"):
        raise ValueError("save_weights needs metadata['architecture'] (the timm architecture of the backbone)")
    meta.setdefault("entry", "")  # weights of no zoo entry (a user's own run) are allowed

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_safetensors(f, tensors, meta)
        digest = sha256_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest


def find_weights(path: str | Path) -> tuple[Path, str | None]:
    """The weights file of a file or model folder, and the sha256 its `config.json` pins (if any)."""
    path = Path(path)
    if path.is_file():
        return path, None
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist")
    weights, config = path / WEIGHTS_NAME, path / CONFIG_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{path} is a folder without {WEIGHTS_NAME}: a seedzoo model folder holds "
                                f"{WEIGHTS_NAME} and {CONFIG_NAME}")
    sha = None
    if config.is_file():
        block = json.loads(config.read_text(encoding="utf-8")).get("seedzoo") or {}
        sha = block.get("sha256") or None
    return weights, sha


def load_weights(path: str | Path, expected_sha256: str | None = None) -> SeedzooWeights:
    """Read a seedzoo weights file or model folder, checking its sha256 before parsing it.

    For a folder the sha256 pinned in `config.json` (`seedzoo.sha256`) is checked unless
    `expected_sha256` is given.
    """
    from safetensors.torch import load_file

    file, pinned = find_weights(path)
    digest = verify_sha256(file, expected_sha256 or pinned)
    header = read_header(file)
    if header.metadata.get("format") != FORMAT:
        raise WeightsFormatError(
            f"{file} is a safetensors file but not seedzoo's format (metadata format="
            f"{header.metadata.get('format')!r}); official checkpoints load with create_model(pretrained=PATH)")
    tensors = load_file(str(file))
    unknown = sorted(k for k in tensors if not k.startswith((BACKBONE_PREFIX, HEAD_PREFIX)))
    if unknown:
        raise WeightsFormatError(f"{file} holds keys outside 'backbone.'/'head.': {unknown[:10]}")
    head = _strip(tensors, HEAD_PREFIX)
    return SeedzooWeights(backbone=_strip(tensors, BACKBONE_PREFIX), head=head or None,
                          metadata=header.metadata, sha256=digest, path=file)


def load_weights_folder(path: str | Path) -> SeedzooWeights:
    """`load_weights` for a model folder (`config.json` + `model.safetensors`)."""
    if not Path(path).is_dir():
        raise NotADirectoryError(f"{path} is not a model folder")
    return load_weights(path)


@lru_cache(maxsize=None)
def _architecture_shapes(architecture: str) -> dict[str, tuple[int, ...]]:
    import timm

    from .. import models  # noqa: F401  (seedzoo's architectures must be registered)

    # The meta device gives every key and shape without allocating a single weight.
    with torch.device("meta"):
        model = timm.create_model(architecture, pretrained=False, num_classes=0)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_backbone(architecture: str, shapes: Mapping[str, tuple[int, ...] | torch.Tensor],
                   source: str = "the weights") -> None:
    """Raise `BackboneMismatchError` unless `shapes` has exactly the keys and shapes of `architecture`
    (built with `num_classes=0`). Values may be tensors or shapes."""
    expected = _architecture_shapes(architecture)
    got = {k: tuple(v.shape) if isinstance(v, torch.Tensor) else tuple(v) for k, v in shapes.items()}
    missing = sorted(expected.keys() - got.keys())
    unexpected = sorted(got.keys() - expected.keys())
    wrong = sorted(f"{k}: {got[k]} vs {expected[k]}" for k in expected.keys() & got.keys() if got[k] != expected[k])
    if missing or unexpected or wrong:
        parts = [f"{label} ({len(keys)}): {', '.join(keys[:8])}{', ...' if len(keys) > 8 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
                 if keys]
        raise BackboneMismatchError(
            f"{source} do not fit architecture '{architecture}': " + "; ".join(parts)
            + ". Check that the file belongs to this architecture.")
