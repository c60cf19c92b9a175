"""seedzoo's weight format: one safetensors file, tensors only, that verifies itself.

Layout (see docs/ARCHITECTURE.md): the backbone under `backbone.` with the timm key names of the
architecture, the projection head under `head.` (`head.0.*`, `head.2.*`, or `head.0/1/3.*` with
batch norm), and header metadata holding at least `format: seedzoo`, `entry`, `architecture` and
`content_sha256`: a hash of the header's tensor table and metadata (that key left out) followed by the
tensor data. Every load recomputes it, so a bare file is verified as well as one whose sha256 is pinned
(a model folder's `config.json`, the registry). A model folder holds the file as `model.safetensors`
beside a `config.json` whose `seedzoo.sha256` pins it.

An architecture that is not seedzoo's (a plain timm one, e.g. a `mobilenetv3_small_100` student) cannot
strip `backbone.` when timm's own loader reads the file, so its files hold the `timm` layout
(`layout: timm` in the metadata): the network's own key names at the top level, a trained classifier
under the architecture's classifier names, and the projection head in `head.safetensors` beside it.

Every malformed file ends in one `WeightsFormatError` saying what the file is not; a damaged one in a
`ChecksumError`. Both derive from `SeedzooError`.
"""
from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

import torch

from ..errors import SeedzooError
from ..files import write_atomic

__all__ = [
    "BACKBONE_PREFIX",
    "CONFIG_NAME",
    "CONTENT_HASH_KEY",
    "FORMAT",
    "HEAD_NAME",
    "HEAD_PREFIX",
    "LAYOUT_KEY",
    "TIMM_LAYOUT",
    "WEIGHTS_NAME",
    "BackboneMismatchError",
    "ChecksumError",
    "NonFiniteWeightsError",
    "SeedzooWeights",
    "TensorSpec",
    "WeightsFormatError",
    "WeightsHeader",
    "check_backbone",
    "check_finite",
    "check_finite_file",
    "find_weights",
    "is_safetensors",
    "load_weights",
    "load_weights_folder",
    "looks_like_safetensors",
    "read_config",
    "read_header",
    "read_verified_header",
    "save_tensors",
    "save_weights",
    "sha256_file",
    "verify_sha256",
]

BACKBONE_PREFIX = "backbone."
HEAD_PREFIX = "head."
FORMAT = "seedzoo"
WEIGHTS_NAME = "model.safetensors"
HEAD_NAME = "head.safetensors"  # beside a `timm`-layout file: the projection head, if the folder keeps one
LAYOUT_KEY = "layout"
TIMM_LAYOUT = "timm"  # the architecture's own key names at the top level, for timm's own loaders
CONFIG_NAME = "config.json"
CONTENT_HASH_KEY = "content_sha256"
_CHUNK = 1 << 20
# A safetensors header is a little-endian u64 length, then that many bytes of JSON.
_MAX_HEADER = 100 << 20


class ChecksumError(SeedzooError, RuntimeError):
    """A weights file whose bytes are not the ones it was published (or written) with."""

    def __init__(self, path: str | Path, expected: str, actual: str, what: str = "sha256") -> None:
        super().__init__(
            f"{what} mismatch for {path}: expected {expected}, got {actual}. The file is damaged or not "
            f"the published one; delete it and download it again (or pass the right file).")
        self.path, self.expected, self.actual = Path(path), expected, actual


class WeightsFormatError(SeedzooError, ValueError):
    """A file that is not a (complete) seedzoo safetensors file."""


class NonFiniteWeightsError(SeedzooError, ValueError):
    """Weights holding inf or NaN: a model built from them computes nothing but NaN."""


def check_finite(tensors: Mapping[str, torch.Tensor], source: str) -> None:
    """Refuse tensors holding inf or NaN, naming the first such tensor and how many there are."""
    # meta tensors (layouts read for their shapes alone) hold no values to check
    bad = [name for name, t in tensors.items()
           if t.is_floating_point() and not t.is_meta and not bool(torch.isfinite(t).all())]
    if bad:
        first = tensors[bad[0]]
        count = int((~torch.isfinite(first)).sum())
        raise NonFiniteWeightsError(
            f"{source}: '{bad[0]}' holds {count} inf/NaN value(s) of {first.numel()}"
            + (f", and {len(bad) - 1} more tensor(s) do too" if len(bad) > 1 else "")
            + ": these weights are damaged (e.g. saved from a diverged run) and are refused")


def check_finite_file(path: str | Path) -> None:
    """`check_finite` on every tensor of a safetensors file, one tensor in memory at a time."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        for name in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
            check_finite({name: f.get_tensor(name)}, str(path))


class BackboneMismatchError(SeedzooError, ValueError):
    """Backbone weights whose keys, shapes or dtypes do not match the architecture they are loaded into."""


@dataclass
class SeedzooWeights:
    """The tensors of a seedzoo weights file, split into backbone and head (prefixes removed)."""

    backbone: dict[str, torch.Tensor]
    head: dict[str, torch.Tensor] | None
    metadata: dict[str, str]
    sha256: str
    path: Path | None = None


@dataclass(frozen=True)
class TensorSpec:
    """One tensor as a safetensors header describes it."""

    dtype: torch.dtype
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass
class WeightsHeader:
    """What a safetensors header says, read without loading a tensor. `sha256` is the whole file's
    hash when the header was read by `read_verified_header` (empty otherwise)."""

    metadata: dict[str, str]
    tensors: dict[str, TensorSpec] = field(default_factory=dict)
    sha256: str = ""

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: v.shape for k, v in self.tensors.items()}

    @property
    def backbone_shapes(self) -> dict[str, tuple[int, ...]]:
        return _strip(self.shapes, BACKBONE_PREFIX)

    @property
    def head_shapes(self) -> dict[str, tuple[int, ...]]:
        return _strip(self.shapes, HEAD_PREFIX)

    @property
    def backbone_specs(self) -> dict[str, TensorSpec]:
        return _strip(self.tensors, BACKBONE_PREFIX)


def _strip(d: Mapping, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in d.items() if k.startswith(prefix)}


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks: seedzoo's one file-hash helper."""
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


# --- the header --------------------------------------------------------------------------------

# safetensors' dtype names (https://github.com/huggingface/safetensors, format spec).
_DTYPE_NAMES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}
_DTYPES = {v: k for k, v in _DTYPE_NAMES.items()}


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


def looks_like_safetensors(path: str | Path) -> bool:
    """By name or by content: a truncated `.safetensors` file is reported as one, not as a foreign file."""
    return Path(path).suffix == ".safetensors" or is_safetensors(path)


def _not_safetensors(path: Path, why: str) -> WeightsFormatError:
    return WeightsFormatError(f"{path} is not a safetensors file ({why}); a seedzoo weights file is written by "
                              f"seedzoo.weights.save_weights")


def _read_raw_header(f: BinaryIO, path: Path, size: int) -> tuple[int, bytes]:
    raw = f.read(8)
    if len(raw) < 8:
        raise _not_safetensors(path, f"{size} bytes: too short for a header")
    (n,) = struct.unpack("<Q", raw)
    if n > _MAX_HEADER:
        raise _not_safetensors(path, f"its first 8 bytes announce a header of {n} bytes")
    if 8 + n > size:
        raise WeightsFormatError(f"{path} is not a safetensors file or is truncated (header of {n} bytes, file of "
                                 f"{size}); download it again, or pass a seedzoo weights file")
    return n, f.read(n)


def _parse_header(raw: bytes, n: int, size: int, path: Path) -> WeightsHeader:
    """Check every field of a header against the format, so that no later reader meets a surprise."""
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise _not_safetensors(path, f"its header is not JSON: {err}") from None
    if not isinstance(header, dict):
        raise _not_safetensors(path, f"its header is a JSON {type(header).__name__}, not an object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise WeightsFormatError(f"{path} has a malformed safetensors header: __metadata__ must map strings to "
                                 f"strings")
    tensors: dict[str, TensorSpec] = {}
    for name, info in header.items():
        tensors[name] = _tensor_spec(name, info, path)
    spans = sorted((t.begin, t.end, k) for k, t in tensors.items())
    position = 0
    for begin, end, name in spans:
        if begin != position:
            raise WeightsFormatError(f"{path} has a malformed safetensors header: tensor '{name}' starts at {begin}, "
                                     f"expected {position} (tensors must tile the data without gaps or overlaps)")
        position = end
    if 8 + n + position > size:
        raise WeightsFormatError(f"{path} is truncated: the header describes {8 + n + position} bytes, the file has "
                                 f"{size}. Download it again.")
    if 8 + n + position < size:
        raise WeightsFormatError(f"{path} is not a clean safetensors file: {size - 8 - n - position} bytes follow "
                                 f"the tensor data")
    return WeightsHeader(metadata=dict(metadata), tensors=tensors)


def _tensor_spec(name: str, info: Any, path: Path) -> TensorSpec:
    bad = f"{path} has a malformed safetensors header: tensor '{name}'"
    if not isinstance(info, dict):
        raise WeightsFormatError(f"{bad} is described by a {type(info).__name__}, not an object")
    name_of_dtype = info.get("dtype")
    dtype = _DTYPES.get(name_of_dtype) if isinstance(name_of_dtype, str) else None
    if dtype is None:
        raise WeightsFormatError(f"{bad} has dtype {info.get('dtype')!r}, not one of {sorted(_DTYPES)}")
    shape, offsets = info.get("shape"), info.get("data_offsets")
    if not (isinstance(shape, list) and all(type(s) is int and s >= 0 for s in shape)):
        raise WeightsFormatError(f"{bad} has shape {shape!r}, not a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
            and 0 <= offsets[0] <= offsets[1]):
        raise WeightsFormatError(f"{bad} has data_offsets {offsets!r}, not [begin, end] with 0 <= begin <= end")
    nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
    if offsets[1] - offsets[0] != nbytes:
        raise WeightsFormatError(f"{bad} spans {offsets[1] - offsets[0]} bytes, but dtype {info['dtype']} and shape "
                                 f"{shape} need {nbytes}")
    return TensorSpec(dtype, tuple(shape), offsets[0], offsets[1])


def read_header(path: str | Path) -> WeightsHeader:
    """Metadata and tensor table of a safetensors file, checked against the format, without reading
    tensor data (and without verifying it: see `read_verified_header`)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        n, raw = _read_raw_header(f, path, size)
    return _parse_header(raw, n, size, path)


def _canonical_table(tensors: Mapping[str, TensorSpec], metadata: Mapping[str, str]) -> bytes:
    """What the content hash covers besides the data: the tensor table and the metadata (the hash
    itself left out), in one canonical form."""
    table = {k: [_DTYPE_NAMES[t.dtype], list(t.shape), t.begin, t.end] for k, t in sorted(tensors.items())}
    meta = {k: v for k, v in sorted(metadata.items()) if k != CONTENT_HASH_KEY}
    return json.dumps({"metadata": meta, "tensors": table}, sort_keys=True, separators=(",", ":")).encode("utf-8")


def read_verified_header(path: str | Path, expected_sha256: str | None = None) -> WeightsHeader:
    """`read_header` plus the checks of integrity, in one pass over the file: its sha256 against
    `expected_sha256` (when pinned) and its tensor data against the `content_sha256` it records.

    A seedzoo file that records no content hash is accepted only when its sha256 is pinned.
    """
    path = Path(path)
    size = path.stat().st_size
    whole = hashlib.sha256()
    with open(path, "rb") as f:
        n, raw = _read_raw_header(f, path, size)
        header = _parse_header(raw, n, size, path)
        whole.update(struct.pack("<Q", n))
        whole.update(raw)
        content = hashlib.sha256(_canonical_table(header.tensors, header.metadata))
        while chunk := f.read(_CHUNK):
            whole.update(chunk)
            content.update(chunk)
    header.sha256 = whole.hexdigest()
    if expected_sha256 and header.sha256 != expected_sha256.lower():
        raise ChecksumError(path, expected_sha256, header.sha256)
    recorded = header.metadata.get(CONTENT_HASH_KEY)
    if recorded:
        if content.hexdigest() != recorded:
            raise ChecksumError(path, recorded, content.hexdigest(), what="tensor-data hash (content_sha256)")
    elif header.metadata.get("format") == FORMAT and not expected_sha256:
        raise WeightsFormatError(f"{path} records no content_sha256 and nothing pins its sha256, so it cannot be "
                                 f"verified: write it again with seedzoo.weights.save_weights, or load it from a "
                                 f"model folder whose {CONFIG_NAME} pins it")
    return header


# --- writing -----------------------------------------------------------------------------------

def _write_safetensors(file: BinaryIO, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> None:
    """Write the safetensors format byte-deterministically, with the content hash in the metadata.

    safetensors' own writer serialises the metadata from a hash map, whose order (and so the file's
    sha256) changes from process to process; here keys are sorted, so the same tensors and metadata
    always give the same bytes. Larger dtypes come first, which keeps every tensor aligned.
    """
    order = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    specs: dict[str, TensorSpec] = {}
    offset = 0
    for name in order:
        t = tensors[name]
        if t.dtype not in _DTYPE_NAMES:
            raise TypeError(f"'{name}' has dtype {t.dtype}, which seedzoo's weight files do not store")
        size = t.numel() * t.element_size()
        specs[name] = TensorSpec(t.dtype, tuple(t.shape), offset, offset + size)
        offset += size
    data = [tensors[name].reshape(-1).view(torch.uint8).numpy().data for name in order if tensors[name].numel()]
    content = hashlib.sha256(_canonical_table(specs, metadata))
    for chunk in data:
        content.update(chunk)
    meta = dict(sorted({**metadata, CONTENT_HASH_KEY: content.hexdigest()}.items()))
    header: dict[str, object] = {"__metadata__": meta}
    for name in order:
        s = specs[name]
        header[name] = {"dtype": _DTYPE_NAMES[s.dtype], "shape": list(s.shape), "data_offsets": [s.begin, s.end]}
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # the data starts 8-byte aligned, as safetensors' writer does
    file.write(struct.pack("<Q", len(raw)))
    file.write(raw)
    for chunk in data:
        file.write(chunk)  # little-endian, as the format requires


def save_weights(path: str | Path, backbone: Mapping[str, torch.Tensor], head: Mapping[str, torch.Tensor] | None,
                 metadata: Mapping[str, str]) -> str:
    """Write backbone (timm names) and head (ProjectionHead names) as seedzoo safetensors; returns its sha256.

    The same tensors and metadata always give the same bytes (and sha256). The file is written next
    to its destination and renamed into place, so a reader never sees half a file.
    """
    tensors: dict[str, torch.Tensor] = {}
    for prefix, part in ((BACKBONE_PREFIX, backbone), (HEAD_PREFIX, head or {})):
        tensors.update({prefix + k: v for k, v in part.items()})
    return save_tensors(path, tensors, metadata)


def save_tensors(path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> str:
    """`save_weights` for tensors under the names given: a timm architecture's own state dict (the
    `timm` layout, `metadata['layout']`), which timm's loaders read as they read any checkpoint."""
    checked: dict[str, torch.Tensor] = {}
    for k, v in tensors.items():
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"'{k}' is a {type(v).__name__}: seedzoo weights hold tensors only")
        checked[k] = v.detach().to("cpu").contiguous()
    meta = {str(k): str(v) for k, v in metadata.items() if k != CONTENT_HASH_KEY}
    meta["format"] = FORMAT
    if not meta.get("architecture"):
        raise ValueError("save_weights needs metadata['architecture'] (the timm architecture of the backbone)")
    meta.setdefault("entry", "")  # weights of no zoo entry (a user's own run) are allowed
    check_finite(checked, f"the weights written to {path}")
    floats = {t.dtype for t in checked.values() if t.is_floating_point()}
    if len(floats) == 1 and floats != {torch.float32}:  # a reduced-precision copy says so: loads may upcast it
        meta.setdefault("dtype", str(floats.pop()).removeprefix("torch."))

    digest: list[str] = []  # of the complete file, taken before it is renamed into place
    write_atomic(path, lambda f: _write_safetensors(f, checked, meta),
                 check=lambda tmp: digest.append(sha256_file(tmp)))
    return digest[0]


# --- model folders -----------------------------------------------------------------------------

def read_config(folder: str | Path) -> dict[str, Any]:
    """The parsed `config.json` of a model folder, with one clear error for anything that is not one."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise WeightsFormatError(f"{path} not found: a seedzoo model folder holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise WeightsFormatError(f"{path} is not a JSON file ({err}): a model folder's {CONFIG_NAME} is timm's "
                                 f"hub config") from None
    if not isinstance(config, dict) or not isinstance(config.get("architecture"), str):
        raise WeightsFormatError(f"{path} has no 'architecture': not a timm/seedzoo model config")
    for key in ("seedzoo", "pretrained_cfg"):
        if not isinstance(config.get(key) or {}, dict):
            raise WeightsFormatError(f"{path}: '{key}' is a {type(config[key]).__name__}, not an object")
    return config


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
        sha = read_config(path).get("seedzoo", {}).get("sha256") or None
        if sha is not None and not isinstance(sha, str):
            raise WeightsFormatError(f"{config}: seedzoo.sha256 is not a string")
    return weights, sha


def load_weights(path: str | Path, expected_sha256: str | None = None) -> SeedzooWeights:
    """Read a seedzoo weights file or model folder, verifying it before a tensor is built.

    For a folder the sha256 pinned in `config.json` (`seedzoo.sha256`) is checked unless
    `expected_sha256` is given; the file's own content hash is checked always.
    """
    from safetensors.torch import load_file

    file, pinned = find_weights(path)
    header = read_verified_header(file, expected_sha256 or pinned)
    if header.metadata.get("format") != FORMAT:
        raise WeightsFormatError(
            f"{file} is a safetensors file but not seedzoo's format (metadata format="
            f"{header.metadata.get('format')!r}); official checkpoints load with create_model(pretrained=PATH)")
    tensors = load_file(str(file)) if header.metadata.get(LAYOUT_KEY) == TIMM_LAYOUT else None
    if tensors is not None:  # the network's own names; its projection head, if kept, is the file beside
        beside = file.parent / HEAD_NAME
        head = (load_weights(beside).head or {}) if beside.is_file() else {}
        return SeedzooWeights(backbone=tensors, head=head or None, metadata=header.metadata, sha256=header.sha256,
                              path=file)
    unknown = sorted(k for k in header.tensors if not k.startswith((BACKBONE_PREFIX, HEAD_PREFIX)))
    if unknown:
        raise WeightsFormatError(f"{file} holds keys outside 'backbone.'/'head.': {unknown[:10]}")
    tensors = load_file(str(file))
    check_finite(tensors, str(file))
    head = _strip(tensors, HEAD_PREFIX)
    return SeedzooWeights(backbone=_strip(tensors, BACKBONE_PREFIX), head=head or None,
                          metadata=header.metadata, sha256=header.sha256, path=file)


def load_weights_folder(path: str | Path) -> SeedzooWeights:
    """`load_weights` for a model folder (`config.json` + `model.safetensors`)."""
    if not Path(path).is_dir():
        raise NotADirectoryError(f"{path} is not a model folder")
    return load_weights(path)


# --- checking against an architecture ----------------------------------------------------------

@cache
def _architecture_specs(architecture: str) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    from ..models import meta_model  # imported here: reading a file needs no architecture

    return {k: (tuple(v.shape), v.dtype) for k, v in meta_model(architecture).state_dict().items()}


def _storage_dtype(name: str | torch.dtype | None) -> torch.dtype | None:
    if not name:
        return None
    dtype = name if isinstance(name, torch.dtype) else getattr(torch, name.removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise WeightsFormatError(f"the file declares storage dtype {name!r}: only a floating-point storage dtype "
                                 f"(float16, bfloat16, float32) can be declared")
    return dtype


def check_backbone(architecture: str, specs: Mapping[str, tuple[int, ...] | torch.Tensor | TensorSpec],
                   source: str = "the weights", storage_dtype: str | torch.dtype | None = None) -> None:
    """Raise `BackboneMismatchError` unless `specs` has exactly the keys, shapes and dtypes of
    `architecture` (built with `num_classes=0`). Values may be tensors, header specs or bare shapes
    (shapes only then). A floating-point tensor may be stored in `storage_dtype` when the file declares
    one (seedzoo's fp16 files); nothing else is cast: an integer or boolean weight is refused."""
    expected = _architecture_specs(architecture)
    declared = _storage_dtype(storage_dtype)
    got: dict[str, tuple[tuple[int, ...], torch.dtype | None]] = {}
    for k, v in specs.items():
        if isinstance(v, (torch.Tensor, TensorSpec)):
            got[k] = (tuple(v.shape), v.dtype)
        else:
            got[k] = (tuple(v), None)
    missing = sorted(expected.keys() - got.keys())
    unexpected = sorted(got.keys() - expected.keys())
    shared = expected.keys() & got.keys()
    wrong = sorted(f"{k}: {got[k][0]} vs {expected[k][0]}" for k in shared if got[k][0] != expected[k][0])
    dtypes = sorted(f"{k}: {str(got[k][1]).removeprefix('torch.')} vs {str(expected[k][1]).removeprefix('torch.')}"
                    for k in shared if not _dtype_fits(got[k][1], expected[k][1], declared))
    if missing or unexpected or wrong or dtypes:
        parts = [f"{label} ({len(keys)}): {', '.join(keys[:8])}{', ...' if len(keys) > 8 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong),
                                     ("wrong dtype", dtypes)) if keys]
        raise BackboneMismatchError(
            f"{source} do not fit architecture '{architecture}': " + "; ".join(parts)
            + ". Check that the file belongs to this architecture; seedzoo casts nothing silently.")


def _dtype_fits(got: torch.dtype | None, expected: torch.dtype, declared: torch.dtype | None) -> bool:
    if got is None or got == expected:
        return True
    return expected.is_floating_point and declared is not None and got == declared
