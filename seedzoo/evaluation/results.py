"""The record every protocol returns: the protocol, all its settings and the numbers it produced.

A number without the protocol that produced it is not comparable to anything (DESIGN.md section 5),
so results are plain dataclasses that serialise to JSON with every knob included.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..files import write_atomic


@dataclass
class EvalResult:
    """One evaluation run. `metrics` holds percentages (top-1 in [0, 100]); `settings` every knob."""

    protocol: str
    model: str
    dataset: str
    metrics: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def top1(self) -> float:
        """The headline number: `top1`, else the first `*top1` metric (e.g. kNN's `knn20_top1`)."""
        if "top1" in self.metrics:
            return self.metrics["top1"]
        for key, value in self.metrics.items():
            if key.endswith("top1"):
                return value
        raise KeyError(f"result of protocol '{self.protocol}' holds no top-1 metric: {sorted(self.metrics)}")

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    def save_json(self, path: str | Path) -> Path:
        return write_atomic(path, self.to_json() + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalResult:
        return cls(**{k: data[k] for k in ("protocol", "model", "dataset", "metrics")},
                   settings=dict(data.get("settings", {})), notes=list(data.get("notes", [])))

    def table(self) -> str:
        """A small fixed-width table: one row per metric, then the settings and notes."""
        rows = [("model", self.model), ("protocol", self.protocol), ("dataset", self.dataset)]
        rows += [(k, f"{v:.2f}") for k, v in self.metrics.items()]
        width = max(len(k) for k, _ in rows)
        lines = [f"{k:<{width}}  {v}" for k, v in rows]
        lines.append("settings: " + ", ".join(f"{k}={v}" for k, v in self.settings.items()))
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    """Tuples become lists, NaN/inf become None and tensors/numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # torch / numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def accuracy(predictions, labels) -> float:
    """Top-1 accuracy in percent of two 1-d integer tensors."""
    if predictions.shape != labels.shape:
        raise ValueError(f"predictions {tuple(predictions.shape)} and labels {tuple(labels.shape)} differ")
    if labels.numel() == 0:
        raise ValueError("cannot compute accuracy over zero samples")
    return float((predictions == labels).float().mean() * 100.0)
