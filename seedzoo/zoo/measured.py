"""The record of the entries seedzoo trained and ships: each file's sha256 and every number measured on it.

`measured_fmnist.json` (package data beside this module) is zoo data, like `official_releases.tsv`: the
registry reads it here, once, at import. Only the release step of the Fashion-MNIST experiment writes
it (`seedzoo reproduce fmnist --release`, in `seedzoo/experiments/fmnist/release.py`), through
`write_record`, which also fixes its format. The experiment imports the zoo; the zoo imports nothing of
the experiment. Without the file (or before any release) the entries have no weights and no numbers.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..files import write_atomic
from .schema import Metric, Weights

MEASURED_FILE = Path(__file__).with_name("measured_fmnist.json")


@dataclass(frozen=True)
class MeasuredNumber:
    """One number measured on a shipped file, with the pinned protocol that re-measures it."""

    value: float
    metric: str  # "knn20_top1", "top1", ...
    dataset: str  # display name, e.g. "Fashion-MNIST"
    protocol: str  # e.g. "knn", "linear_fast:fraction=0.01"
    per_seed: tuple[float, ...] = ()  # the recipe's number by seed (`MeasuredRecord.seeds`); () if trained once

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.per_seed:
            data["per_seed"] = list(self.per_seed)
        else:
            del data["per_seed"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MeasuredNumber:
        return cls(**{**data, "per_seed": tuple(data.get("per_seed", ()))})


@dataclass(frozen=True)
class ShippedEntry:
    """What the registry pins for one entry whose weights ship inside the package."""

    sha256: str
    metrics: tuple[MeasuredNumber, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class MeasuredRecord:
    """The whole file: the command that measured the numbers, one `ShippedEntry` per entry name, and the
    reference rows measured on no shipped file (raw pixels, random init), by their label in the experiment's
    table. Where the recipes were trained with several seeds, `seeds` lists them, each number's `per_seed`
    follows that order, and the shipped files are those of the first seed."""

    command: str = ""
    entries: dict[str, ShippedEntry] = field(default_factory=dict)
    references: dict[str, tuple[MeasuredNumber, ...]] = field(default_factory=dict)
    seeds: tuple[int, ...] = ()

    def weights(self, name: str, with_head: bool = True) -> Weights:
        """The entry's `Weights`: the embedded file and its sha256 once released, none before."""
        shipped = self.entries.get(name)
        if shipped is None:
            return Weights(with_head=with_head)
        return Weights(embedded=f"{name}.safetensors", sha256=shipped.sha256, with_head=with_head)

    def metrics(self, name: str) -> tuple[Metric, ...]:
        shipped = self.entries.get(name)
        return self._metrics(shipped.metrics if shipped else ())

    def reference(self, label: str) -> tuple[Metric, ...]:
        """The numbers of the reference row `label` (none if the record has no such row)."""
        return self._metrics(self.references.get(label, ()))

    def _metrics(self, numbers: tuple[MeasuredNumber, ...]) -> tuple[Metric, ...]:
        return tuple(Metric(m.value, m.metric, m.dataset, m.protocol, "measured", self.command, per_seed=m.per_seed)
                     for m in numbers)

    def notes(self, name: str) -> tuple[str, ...]:
        shipped = self.entries.get(name)
        return shipped.notes if shipped else ()

    def to_json(self) -> dict[str, Any]:
        entries: dict[str, Any] = {}
        for name, shipped in self.entries.items():
            entries[name] = {"sha256": shipped.sha256, "metrics": [m.to_json() for m in shipped.metrics]}
            if shipped.notes:
                entries[name]["notes"] = list(shipped.notes)
        data: dict[str, Any] = {"command": self.command, **({"seeds": list(self.seeds)} if self.seeds else {}),
                                "entries": entries}
        if self.references:
            data["references"] = {label: [m.to_json() for m in metrics] for label, metrics in self.references.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MeasuredRecord:
        return cls(data["command"], {
            name: ShippedEntry(e["sha256"], tuple(MeasuredNumber.from_json(m) for m in e["metrics"]),
                               tuple(e.get("notes", ())))
            for name, e in data["entries"].items()},
            {label: tuple(MeasuredNumber.from_json(m) for m in metrics)
             for label, metrics in data.get("references", {}).items()},
            tuple(data.get("seeds", ())))


def read_record(path: Path = MEASURED_FILE) -> MeasuredRecord:
    """The record at `path`; an empty one when no release has written it."""
    return MeasuredRecord.from_json(json.loads(path.read_text())) if path.is_file() else MeasuredRecord()


def write_record(record: MeasuredRecord, path: Path = MEASURED_FILE) -> None:
    """Write `record` (the release step's job; nothing else writes into the package)."""
    write_atomic(path, json.dumps(record.to_json(), indent=2) + "\n")
