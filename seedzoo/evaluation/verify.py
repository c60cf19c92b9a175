"""`seedzoo verify`: measure an entry's "measured" numbers again, with the protocol stored beside each.

Each measured `Metric` names its protocol as a pinned string (see `runner.parse_protocol`, e.g.
`knn:input_size=64`) and its dataset ("Fashion-MNIST"); the number is re-measured with exactly those
settings and compared within the metric's tolerance (in points).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..weights.resolve import PretrainedError
from ..zoo import Metric, ZooEntry
from .backbones import Pretrained
from .runner import run_evaluation


@dataclass(frozen=True)
class VerifyResult:
    metric: Metric
    measured: float | None
    error: str = ""

    @property
    def expected(self) -> float:
        return self.metric.value

    @property
    def tolerance(self) -> float:
        return self.metric.tolerance

    @property
    def ok(self) -> bool:
        return self.measured is not None and abs(self.measured - self.expected) <= self.tolerance

    def summary(self) -> str:
        what = f"{self.metric.metric} on {self.metric.dataset} [{self.metric.protocol}]"
        if self.measured is None:
            return f"FAIL  {what}: {self.error}"
        verdict = "ok  " if self.ok else "FAIL"
        return (f"{verdict}  {what}: expected {self.expected:.2f} +/- {self.tolerance:.2f}, "
                f"measured {self.measured:.2f} (diff {self.measured - self.expected:+.2f})")

    __str__ = summary


def verify_measured(entry: ZooEntry, data_root: str | Path | None = None, pretrained: Pretrained = True,
                    model: nn.Module | None = None, device: str | None = None,
                    progress: bool = False) -> list[VerifyResult]:
    """Re-measure every metric of kind "measured" of `entry`. `pretrained` means what it means in
    `create_model`: True (the entry's own weights), a path, or False (random init); `model` passes a
    ready backbone instead. Runs sharing a protocol and dataset are measured once."""
    if not isinstance(pretrained, (bool, str, os.PathLike)):  # a wrong value is the caller's error, not a FAIL
        raise PretrainedError(f"pretrained must be True (the weights of '{entry.name}'), False (random init) "
                              f"or a path, not {pretrained!r}")
    cache: dict[tuple[str, str], dict[str, float] | str] = {}
    results = []
    for metric in entry.metrics:
        if metric.kind != "measured":
            continue
        key = (metric.protocol, metric.dataset)
        if key not in cache:
            try:
                cache[key] = run_evaluation(entry.name, metric.protocol, metric.dataset, data_root, pretrained,
                                            model=model, device=device, progress=progress).metrics
            except (ValueError, FileNotFoundError, RuntimeError) as err:
                cache[key] = f"{type(err).__name__}: {err}"
        outcome = cache[key]
        if isinstance(outcome, str):
            results.append(VerifyResult(metric, None, outcome))
        elif metric.metric not in outcome:
            results.append(VerifyResult(metric, None, f"protocol '{metric.protocol}' yields "
                                                       f"{', '.join(outcome)}, not '{metric.metric}'"))
        else:
            results.append(VerifyResult(metric, outcome[metric.metric]))
    return results
