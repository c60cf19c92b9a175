"""Shipping the reproduction's entries: fp16 copies of their weights, and the registry's record of them.

Two steps. `pack` writes the copies under `OUT/release/` on every run, so the table always measures
the files that would ship. `release` is the only code that writes into the package source: it copies
them into `seedzoo/weights/embedded/` and writes the zoo's record (`zoo/measured.py`: sha256 and
every measured number) and the files' fingerprint pins (`zoo/fingerprints.json`, which `seedzoo verify
NAME --fingerprint` compares with). It runs only when asked (`seedzoo reproduce fmnist --release`).
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...files import write_atomic
from ...weights.fingerprint import measure_fingerprint
from ...weights.hub import resolve_weights
from ...weights.io import load_weights, save_weights
from ...zoo import get_entry
from ...zoo.entries import FINGERPRINTS_FILE
from ...zoo.measured import MEASURED_FILE, MeasuredNumber, MeasuredRecord, ShippedEntry, write_record
from .evaluation import PIXEL_LABELS, RANDOM_INIT_LABELS, Row
from .report import verdict
from .stages import (
    BASELINE,
    COMMAND,
    REFERENCE,
    STUDENT,
    TEACHER,
    TRAINING,
    is_done,
    packed_dir,
    reference_label,
    stage_export,
)

# The stages whose networks ship, by the entry they ship as.
SHIPPED = {"teacher": TEACHER, "seed": STUDENT, "mocov2": BASELINE, "supervised": REFERENCE}
# Where `weights/hub.py` reads an entry's `Weights.embedded` file.
EMBEDDED_DIR = Path(__file__).resolve().parents[2] / "weights" / "embedded"


@dataclass(frozen=True)
class ReleaseTarget:
    """Where a release writes: the weights folder, the registry's record file and its fingerprint pins."""

    weights_dir: Path
    record: Path
    fingerprints: Path


PACKAGE = ReleaseTarget(EMBEDDED_DIR, MEASURED_FILE, FINGERPRINTS_FILE)
FINGERPRINTS_HOW = ("seedzoo.weights.fingerprint.measure_fingerprint(entry.architecture, FILE, entry.data.input_size, "
                    "entry.weights.sha256) for each shipped file; `seedzoo verify NAME "
                    "--fingerprint --json -` prints the same record under fingerprint.actual. A pin holds only for "
                    "the sha256 beside it.")


def pack(out: Path) -> dict[str, Path]:
    """Write each shipped entry's weights as fp16 (the head only where the registry says `with_head`)
    into `OUT/release/`, with their sha256 in `OUT/release/sha256.json`; returns the files by stage key."""
    dest = packed_dir(out)
    dest.mkdir(parents=True, exist_ok=True)
    hashes, files = {}, {}
    for key, name in SHIPPED.items():
        entry = get_entry(name)
        # without a teacher stage in OUT the students distilled from the shipped teacher, which ships again
        export = stage_export(key, out)
        shipped = key == "teacher" and not is_done(export)
        weights = load_weights(resolve_weights(entry, offline=True) if shipped else export)
        head = (weights.head or {}) if entry.weights.with_head else {}
        half = {part: {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
                for part, tensors in (("backbone", weights.backbone), ("head", head))}
        files[key] = dest / f"{name}.safetensors"
        hashes[name] = save_weights(files[key], half["backbone"], half["head"],
                                    {"entry": name, "architecture": entry.architecture, "dtype": "float16"})
    write_atomic(dest / "sha256.json", json.dumps(hashes, indent=2) + "\n")
    return files


def packed_hashes(out: Path) -> dict[str, str]:
    """The sha256 of the packed files, by entry name, as `pack` recorded them."""
    return json.loads((packed_dir(out) / "sha256.json").read_text())


def measured_record(rows: list[Row], hashes: dict[str, str],
                    by_seed: dict[int, list[Row]] | None = None) -> MeasuredRecord:
    """The registry's record of the shipped entries (sha256 and every measured number with its protocol)
    and of the reference rows, which are measured on no shipped file (raw pixels, random init). `rows`
    measured the shipped files; with `by_seed` (every seed's rows, `rows` among them) each number of a
    recipe trained once per seed, and of the random-init rows, also keeps its value at every seed."""
    by_label = {r.label: r for r in rows}
    labels = {stage.recipe: stage.label for stage in TRAINING if stage.key in SHIPPED}
    labels[REFERENCE] = reference_label()
    once = {stage.label for stage in TRAINING if not stage.per_seed}  # the teacher: one file for every seed
    seeded = {} if by_seed is None else {seed: {r.label: r for r in seen} for seed, seen in sorted(by_seed.items())}

    def numbers(label: str) -> tuple[MeasuredNumber, ...]:
        return measured_numbers(by_label[label], [] if label in once else [seen[label] for seen in seeded.values()])

    entries = {}
    for name, sha in hashes.items():
        # the students' cards say what the comparison showed
        notes = (verdict(by_seed or {0: rows}),) if name in (STUDENT, BASELINE) else ()
        entries[name] = ShippedEntry(sha, numbers(labels[name]), notes)
    references = {label: numbers(label) for label in (*RANDOM_INIT_LABELS.values(), *PIXEL_LABELS.values())
                  if label in by_label}
    return MeasuredRecord(COMMAND, entries, references, tuple(seeded))


def measured_numbers(row: Row, per_seed: Sequence[Row] = ()) -> tuple[MeasuredNumber, ...]:
    """Every top-1 number of a row, rounded as the record keeps them, with its dataset and protocol, and
    its value in each of the rows `per_seed` (the same network trained with each seed). Numbers measured
    in another space than the network's output (`knn_head`: the teacher's head) are left out: `seedzoo
    verify` re-measures the network's own."""
    from ...evaluation.datasets import DISPLAY_NAMES

    return tuple(MeasuredNumber(round(value, 2), metric, DISPLAY_NAMES[key.split("/")[0]], result["protocol"],
                                tuple(round(seen.results[key][metric], 2) for seen in per_seed))
                 for key, result in row.results.items() if not key.endswith("_head")
                 for metric, value in result.items() if metric.endswith("top1"))


def release(out: Path, rows: list[Row], target: ReleaseTarget = PACKAGE,
            by_seed: dict[int, list[Row]] | None = None) -> MeasuredRecord:
    """Copy the packed files into `target.weights_dir` and write the registry's record of them, with the
    numbers of `rows` (measured on those files) and, with `by_seed`, those of every seed's runs. The
    default target is the package source."""
    hashes = packed_hashes(out)
    target.weights_dir.mkdir(parents=True, exist_ok=True)
    for name in hashes:
        shutil.copyfile(packed_dir(out) / f"{name}.safetensors", target.weights_dir / f"{name}.safetensors")
    record = measured_record(rows, hashes, by_seed)
    write_record(record, target.record)
    write_fingerprints(hashes, target)
    return record


def write_fingerprints(hashes: dict[str, str], target: ReleaseTarget) -> None:
    """Pin the fingerprint of each shipped file (by entry name, with its sha256) in `target.fingerprints`,
    measured on the copy in `target.weights_dir`; pins of entries this release does not ship are kept."""
    pins = json.loads(target.fingerprints.read_text())["entries"] if target.fingerprints.is_file() else {}
    for name, sha in hashes.items():
        entry = get_entry(name)
        pins[name] = {"sha256": sha, "fingerprint": measure_fingerprint(
            entry.architecture, target.weights_dir / f"{name}.safetensors", entry.data.input_size, sha)}
    text = json.dumps({"how": FINGERPRINTS_HOW, "entries": pins}, indent=2) + "\n"
    write_atomic(target.fingerprints, text)
