"""Weights: seedzoo's safetensors format (`io`), the authors' checkpoint layouts (`official`), and
resolution of published weights (`hub`, imported on use: it needs the network stack).

The names below are imported on first use, so that the torch-free modules of this package (`cache`,
`local`: where files are, what is on this machine) load without torch.
"""
from __future__ import annotations

from ..lazy_exports import lazy_getattr

_LAZY = {
    **dict.fromkeys(("BackboneMismatchError", "ChecksumError", "SeedzooWeights", "WeightsFormatError",
                     "check_backbone", "load_weights", "load_weights_folder", "save_weights", "sha256_file"),
                    "seedzoo.weights.io"),
    **dict.fromkeys(("OfficialLayoutError", "OfficialSplit", "UnsafeCheckpointError", "detect_layout",
                     "read_checkpoint", "split_official"), "seedzoo.weights.official"),
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_getattr(__name__, _LAZY)
