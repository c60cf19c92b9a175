"""Weights: seedzoo's safetensors format (`io`), the authors' checkpoint layouts (`official`), and
resolution of published weights (`hub`, imported on use: it needs the network stack)."""
from __future__ import annotations

from .io import (
    BackboneMismatchError,
    ChecksumError,
    SeedzooWeights,
    WeightsFormatError,
    check_backbone,
    load_weights,
    load_weights_folder,
    save_weights,
    sha256_file,
)
from .official import (
    OfficialLayoutError,
    OfficialSplit,
    UnsafeCheckpointError,
    detect_layout,
    read_checkpoint,
    split_official,
)

__all__ = [
    "BackboneMismatchError",
    "ChecksumError",
    "OfficialLayoutError",
    "OfficialSplit",
    "SeedzooWeights",
    "UnsafeCheckpointError",
    "WeightsFormatError",
    "check_backbone",
    "detect_layout",
    "load_weights",
    "load_weights_folder",
    "read_checkpoint",
    "save_weights",
    "sha256_file",
    "split_official",
]
