"""The reproduction end to end: train what is missing, pack, evaluate, report, and release if asked."""
from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ...files import write_atomic
from .evaluation import Row, evaluate, teacher_crowding
from .release import ReleaseTarget, pack, release
from .report import write_results
from .stages import TRAINING, is_done, should_train, train_stage, train_students, train_supervised


class _Timer:
    """Adds each stage's wall time to OUT/timings.json, summed over resumed invocations (an interrupted
    stage's time counts too)."""

    def __init__(self, out: Path) -> None:
        self.path = out / "timings.json"
        self.times: dict[str, float] = json.loads(self.path.read_text()) if self.path.is_file() else {}

    @contextmanager
    def __call__(self, key: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.times[key] = round(self.times.get(key, 0.0) + time.perf_counter() - start, 1)
            write_atomic(self.path, json.dumps(self.times, indent=2) + "\n")


def run_all(out: str | Path = "runs/fmnist", stages: Iterable[str] | None = None,
            overrides: Iterable[str] = (), limit: int | None = None, release_to: ReleaseTarget | None = None,
            progress: bool = False) -> list[Row]:
    """Train what is missing, pack the shipped entries' fp16 weights under OUT, evaluate everything and
    write the results. The teacher is the shipped one unless `stages` asks for `teacher` (or OUT holds a
    teacher run to finish, or one already trained). Only with `release_to` (e.g. `release.PACKAGE`, the
    package source) are the weights and the registry's record written outside OUT. `overrides` apply to
    every training run and `limit` caps each split of the labelled sets (both for quick checks; recorded
    numbers should use neither).
    Returns the table's rows; none when `stages` leaves out `evaluate` (then nothing is released)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timer = _Timer(out)
    wanted = set(stages) if stages else None
    # The distilling stages share one teacher pass (trained together when more than one is missing).
    students = [s for s in TRAINING if s.distils and (wanted is None or s.key in wanted)]
    together = students if sum(not is_done(s.run_dir(out)) for s in students) > 1 else []
    for stage in TRAINING:
        if stage in together:
            if stage is together[0]:
                with timer("+".join(s.key for s in together)):
                    train_students(together, out, overrides)
        elif should_train(stage, out, wanted):
            with timer(stage.key):
                train_stage(stage, out, overrides)
    if (wanted is None or "supervised" in wanted) and not is_done(out / "supervised"):
        with timer("supervised"):
            train_supervised(out, limit=limit)
    if wanted is not None and "evaluate" not in wanted:
        return []
    packed = pack(out)
    with timer("evaluate"):
        rows = evaluate(out, packed, ("fashion_mnist", "digits"), limit, progress)
        crowding = teacher_crowding(packed["teacher"])
    write_results(out, rows, crowding, timer.times)
    if release_to is not None:
        release(out, rows, release_to)
    return rows
