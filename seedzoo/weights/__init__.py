"""Weights: seedzoo's safetensors format (`io`), the authors' checkpoint layouts (`official`), and
resolution of published weights (`hub`, imported on use: it needs the network stack).

The names below are imported on first use, so that the torch-free modules of this package (`cache`,
`local`: where files are, what is on this machine) load without torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    **dict.fromkeys(("BackboneMismatchError", "ChecksumError", "SeedzooWeights", "WeightsFormatError",
                     "check_backbone", "load_weights", "load_weights_folder", "save_weights", "sha256_file"),
                    "seedzoo.weights.io"),
    **dict.fromkeys(("OfficialLayoutError", "OfficialSplit", "UnsafeCheckpointError", "detect_layout",
                     "read_checkpoint", "split_official"), "seedzoo.weights.official"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'seedzoo.weights' has no attribute '{name}'")
