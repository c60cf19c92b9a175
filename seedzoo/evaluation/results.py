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

import torch
from torch import nn

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


def weights_record(model: nn.Module | None, pretrained: Any = None) -> dict[str, Any]:
    """What weights a result measured: `kind` (zoo entry, run export, model folder, file, random init or
    given module), and for weights from a file its path, format, the entry it names and its sha256.

    Read off the model (`model.seedzoo_weights`, set by `seedzoo.create_model`), so the hash is that of
    the file actually loaded, whatever name or path led to it."""
    source = getattr(model, "seedzoo_weights", None) if model is not None else None
    if source is None:
        return {"kind": "random init" if pretrained is False else "given module"}
    from ..weights.io import CONFIG_NAME, read_config

    config = source.path.parent / CONFIG_NAME
    if pretrained is True and source.entry and not config.is_file():
        kind = "zoo entry"  # the entry's published file, from the cache or the package
    elif config.is_file():
        kind = "run export" if "recipe" in (read_config(config.parent).get("seedzoo") or {}) else "model folder"
    else:
        kind = "file"
    record = {"kind": kind, "path": str(source.path), "format": source.format, "sha256": source.sha256}
    return {**record, **({"entry": source.entry} if source.entry else {})}


def comparison_table(results: list[EvalResult]) -> str:
    """Several models under one protocol: one row each (model, weights, sha256 prefix, every metric)."""
    metrics = list(dict.fromkeys(k for r in results for k in r.metrics))
    header = ["model", "weights", "sha256", *metrics]
    rows = []
    for r in results:
        weights = r.settings.get("weights") or {}
        kind = weights.get("kind", "") if isinstance(weights, dict) else str(weights)
        sha = weights.get("sha256", "")[:12] if isinstance(weights, dict) else ""
        rows.append([r.model, kind, sha or "-", *(f"{r.metrics[m]:.2f}" if m in r.metrics else "-" for m in metrics)])
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    if results:
        first = results[0]
        keys = [k for k in first.settings if k != "weights"]
        shared = [k for k in keys if all(r.settings.get(k) == first.settings[k] for r in results)]
        lines.append(f"protocol {first.protocol} on {first.dataset}; settings: "
                     + ", ".join(f"{k}={first.settings[k]}" for k in shared))
        if len(shared) < len(keys):
            lines.append("per model (see --json): " + ", ".join(k for k in keys if k not in shared))
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


def few_labels_note(labels: torch.Tensor, num_classes: int, what: str) -> str | None:
    """A note when a trained protocol sees fewer than 2 labelled images of some class."""
    counts = torch.bincount(labels.long(), minlength=num_classes)
    thin = [c for c in range(num_classes) if counts[c] < 2]
    if not thin:
        return None
    shown = ", ".join(f"class {c}: {int(counts[c])}" for c in thin[:5]) + (", ..." if len(thin) > 5 else "")
    return f"{what} has fewer than 2 labelled images of {len(thin)} of {num_classes} classes ({shown})"


def accuracy(predictions, labels) -> float:
    """Top-1 accuracy in percent of two 1-d integer tensors."""
    if predictions.shape != labels.shape:
        raise ValueError(f"predictions {tuple(predictions.shape)} and labels {tuple(labels.shape)} differ")
    if labels.numel() == 0:
        raise ValueError("cannot compute accuracy over zero samples")
    return float((predictions == labels).float().mean() * 100.0)
