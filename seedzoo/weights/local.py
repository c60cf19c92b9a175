"""Which published weights are already on this machine, from the file listing alone.

Nothing is read or verified here (every load verifies the file it uses), so `seedzoo list` answers
without torch and without touching the network. The places are the ones `hub.resolve_weights` looks in,
in its order: the package itself (embedded), huggingface_hub's cache, the HTTP mirrors' cache, and an
official release converted into the cache.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..zoo import ZooEntry
from .cache import converted_dir, hf_cache_dir, mirror_path, read_source_record

__all__ = ["EMBEDDED", "CACHED", "local_weights"]

EMBEDDED, CACHED = "embedded", "cached"


def _hub_snapshot(entry: ZooEntry, cache_dir: str | os.PathLike | None) -> Path | None:
    w = entry.weights
    if not (w.hf_repo and w.revision):
        return None
    root = hf_cache_dir(cache_dir)
    if root is None:
        from huggingface_hub import constants  # its cache's location (HF_HUB_CACHE, HF_HOME); no torch

        root = Path(constants.HF_HUB_CACHE)
    # huggingface_hub's documented cache layout: models--ORG--NAME/snapshots/REVISION/FILE
    return root / f"models--{w.hf_repo.replace('/', '--')}" / "snapshots" / w.revision / w.filename


def local_weights(entry: ZooEntry, cache_dir: str | os.PathLike | None = None) -> str:
    """`"embedded"` (shipped in the package), `"cached"` (downloaded or converted before) or `""` (a load
    would fetch them, or the entry has none)."""
    w = entry.weights
    if w.embedded and (Path(__file__).with_name("embedded") / w.embedded).is_file():
        return EMBEDDED
    snapshot = _hub_snapshot(entry, cache_dir)
    mirror = mirror_path(entry.name, w.sha256, w.filename, cache_dir) if w.sha256 and w.mirrors else None
    converted = converted_dir(entry.name, cache_dir) if entry.source is not None else None
    if any(p is not None and p.is_file() for p in (snapshot, mirror)):
        return CACHED
    if converted is not None and any(converted.glob("*.safetensors")) and _has_record(converted):
        return CACHED
    return ""


def _has_record(folder: Path) -> bool:
    """Whether a converted folder records its source (a conversion that finished)."""
    try:
        return read_source_record(folder) is not None
    except (ValueError, KeyError):  # a damaged record: the next load converts again
        return False
