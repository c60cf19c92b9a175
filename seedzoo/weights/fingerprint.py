"""A data-free fingerprint of a network's weights: statistics of its output on a fixed seeded input.

A sha256 proves the bytes; the fingerprint proves what the bytes compute. It is recorded at conversion
time in `config.json` and recomputed by `seedzoo verify --fingerprint`, so a wrong key map, a layer that
silently kept its initialisation, or a different architecture version shows up without any dataset.
Statistics rather than the full output keep the record small and robust to summation order.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "FINGERPRINT_VERSION",
    "compare_fingerprints",
    "compute_fingerprint",
    "fingerprint_input",
    "fingerprint_model",
]

FINGERPRINT_VERSION = 1
_SEED = 0
_BATCH = 2
_FIRST = 8
DEFAULT_TOLERANCE = 1e-3  # relative to the output's scale: CPU kernels differ in summation order, not more


def fingerprint_input(input_size: tuple[int, int, int] = (3, 224, 224), seed: int = _SEED) -> torch.Tensor:
    """The fixed input: standard normal, as if already normalised, from a seeded CPU generator."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((_BATCH, *input_size), generator=generator)


def _stats(t: torch.Tensor) -> dict[str, Any]:
    t = t.detach().double()
    return {"mean": float(t.mean()), "std": float(t.std()), "absmax": float(t.abs().max()),
            "first": [float(v) for v in t.flatten()[:_FIRST]]}


@torch.no_grad()
def fingerprint_model(model: nn.Module, head: nn.Module | None = None,
                      input_size: tuple[int, int, int] = (3, 224, 224)) -> dict[str, Any]:
    """Fingerprint of a backbone (built with `num_classes=0`) and optionally its projection head."""
    model.eval()
    x = fingerprint_input(input_size)
    features = model(x)
    record: dict[str, Any] = {"version": FINGERPRINT_VERSION, "seed": _SEED, "input": [_BATCH, *input_size],
                              "distribution": "normal", "tolerance": DEFAULT_TOLERANCE,
                              "features": _stats(features)}
    if head is not None:
        record["embedding"] = _stats(head.eval()(features))
    return record


def compute_fingerprint(architecture: str, backbone: Mapping[str, torch.Tensor],
                        head: Mapping[str, torch.Tensor] | None = None,
                        input_size: tuple[int, int, int] = (3, 224, 224)) -> dict[str, Any]:
    """Build `architecture` with timm, load `backbone` strictly, and fingerprint it (with `head`)."""
    import timm

    model = timm.create_model(architecture, pretrained=False, num_classes=0)
    missing, unexpected = model.load_state_dict(dict(backbone), strict=False)
    if missing or unexpected:
        raise ValueError(f"weights do not fit {architecture}: missing {sorted(missing)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]}")
    from ..models.heads import ProjectionHead

    return fingerprint_model(model, ProjectionHead.from_state_dict(head) if head else None, input_size)


def measure_fingerprint(architecture: str, weights: str | os.PathLike, input_size: tuple[int, int, int],
                        sha256: str) -> dict[str, Any]:
    """The data-free fingerprint of a weights file (backbone, and its projection head if the file has one)
    whose sha256 is `sha256` (checked again as it is read); the file's own architecture wins."""
    from .io import load_weights

    loaded = load_weights(Path(weights), expected_sha256=sha256)
    architecture = loaded.metadata.get("architecture") or architecture
    return compute_fingerprint(architecture, loaded.backbone, loaded.head, input_size)


def compare_fingerprints(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> tuple[bool, float]:
    """(ok, worst relative error): every statistic within `expected['tolerance']` of the output's scale."""
    if expected.get("version") != actual.get("version") or list(expected["input"]) != list(actual["input"]):
        return False, math.inf
    worst = 0.0
    for part in ("features", "embedding"):
        if part not in expected:
            continue
        if part not in actual:
            return False, math.inf
        scale = max(abs(expected[part]["absmax"]), 1e-12)
        want = [expected[part]["mean"], expected[part]["std"], expected[part]["absmax"], *expected[part]["first"]]
        got = [actual[part]["mean"], actual[part]["std"], actual[part]["absmax"], *actual[part]["first"]]
        if len(want) != len(got):
            return False, math.inf
        worst = max(worst, max(abs(a - b) for a, b in zip(got, want)) / scale)
    return worst <= float(expected.get("tolerance", DEFAULT_TOLERANCE)), worst
