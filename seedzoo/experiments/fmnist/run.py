"""The reproduction end to end: train what is missing, pack, evaluate, report, and release if asked.

Stages are checked before any work (`check_stages`): an unknown name is refused, and a stage that needs
another one's output (`evaluate` reads every shipped network) adds it, saying so. `QUICK` is the short
path (a subset of the training images, a smaller evaluation), `run_seeds` the same reproduction once
per seed, summarised by mean and standard deviation.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ...errors import SeedzooError
from ...files import write_atomic
from . import curves, strategies
from .evaluation import CROWDING_IMAGES, Row, evaluate, teacher_crowding
from .release import SHIPPED, ReleaseTarget, pack, release
from .report import read_timings, write_results, write_seed_results
from .stages import (
    TRAINING,
    is_done,
    seed_folder,
    should_train,
    stage_export,
    supervised_export,
    train_stage,
    train_students,
    train_supervised,
)

SUPERVISED, EVALUATE = "supervised", "evaluate"
# Sweeps beside the table, each a cohort measured on its own, run only when named (`--stage curves`):
# each trains several students of four epochs (`curves`: 7; `strategies`: 7 per seed).
# By key: (train and measure it into OUT, write its report from every seed folder under OUT).
SWEEPS: dict[str, tuple[Callable[..., list[Row]], Callable[[Path], None]]] = {
    curves.KEY: (curves.run_curves, curves.write_report),
    strategies.KEY: (strategies.run_strategies, strategies.write_report)}
STAGES = (*(s.key for s in TRAINING), SUPERVISED, *SWEEPS, EVALUATE)  # every name `--stage` takes, in run order
# What a stage reads from the others: the evaluation packs every shipped network (the teacher falls
# back to the shipped one).
NEEDS = {EVALUATE: tuple(key for key in SHIPPED if key != "teacher")}


class StageError(SeedzooError, ValueError):
    """Stages, seeds or options of the reproduction that do not go together."""


@dataclass(frozen=True)
class Short:
    """The short path: the students train on the first `subset` training images; the labelled reference
    trains on, and every network is measured on, the first `limit` images of each labelled split."""

    subset: int
    limit: int

    def overrides(self) -> list[str]:
        return [f"data.subset={self.subset}"]


QUICK = Short(subset=8192, limit=2000)


def check_stages(names: Iterable[str] | None, out: Path) -> tuple[set[str] | None, list[str]]:
    """(the stages to run, or None for the default ones; notes on what was added and why) for the names
    given (each may hold several, comma-separated). Unknown names are refused in one line."""
    if names is None:
        return None, []
    wanted = {n.strip() for name in names for n in name.split(",") if n.strip()}
    unknown = sorted(wanted - set(STAGES))
    if unknown or not wanted:
        named = ", ".join(map(repr, unknown)) or "''"
        raise StageError(f"unknown stage{'s' if len(unknown) > 1 else ''} {named}: choose among "
                         f"{', '.join(STAGES)} (several: --stage seed,mocov2)")
    notes = []
    for stage in sorted(wanted):
        missing = [k for k in NEEDS.get(stage, ()) if k not in wanted and not is_done(stage_export(k, out))]
        if missing:
            wanted.update(missing)
            notes.append(f"{stage} needs {', '.join(missing)}, which {out} does not hold yet: training "
                         f"{'them' if len(missing) > 1 else 'it'} first")
    return wanted, notes


class StageTimer:
    """Adds each stage's wall time to OUT/timings.json, summed over resumed invocations (an interrupted
    stage's time counts too)."""

    def __init__(self, out: Path) -> None:
        self.path = out / "timings.json"
        self.times = read_timings(out)

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
            progress: bool = False, say: Callable[[str], None] = print) -> list[Row]:
    """Train what is missing, pack the shipped entries' fp16 weights under OUT, evaluate everything and
    write the results. The teacher is the shipped one unless `stages` asks for `teacher` (or OUT holds a
    teacher run to finish, or one already trained). Only with `release_to` (e.g. `release.PACKAGE`, the
    package source) are the weights and the registry's record written outside OUT. `overrides` apply to
    every training run and `limit` caps each split of the labelled sets and the teacher's crowding images
    (both for quick checks; recorded numbers should use neither).
    `stages` are checked first (`check_stages`; `say` tells what was added).
    Returns the table's rows; none when `stages` leaves out `evaluate` (then nothing is released)."""
    out, overrides = Path(out), list(overrides)
    wanted, notes = check_stages(stages, out)
    for note in notes:
        say(note)
    out.mkdir(parents=True, exist_ok=True)
    timer = StageTimer(out)
    # The distilling stages share one teacher pass (trained together when more than one is missing).
    students = [s for s in TRAINING if s.distils and (wanted is None or s.key in wanted)]
    together = students if sum(not is_done(s.export(out)) for s in students) > 1 else []
    for stage in TRAINING:
        if stage in together:
            if stage is together[0]:
                with timer("+".join(s.key for s in together)):
                    train_students(together, out, overrides)
        elif should_train(stage, out, wanted):
            with timer(stage.key):
                train_stage(stage, out, overrides)
    if (wanted is None or SUPERVISED in wanted) and not is_done(supervised_export(out)):
        with timer(SUPERVISED):
            train_supervised(out, limit=limit, seed=_seed(overrides))
    for key, (sweep, _) in SWEEPS.items():  # timed in OUT/KEY/timings.json: not part of the default path
        if wanted is not None and key in wanted:
            sweep(out, overrides, limit, progress)
    if wanted is not None and EVALUATE not in wanted:
        return []
    packed = pack(out)
    with timer("evaluate"):
        rows = evaluate(out, packed, ("fashion_mnist", "digits"), limit, progress, seed=_seed(overrides))
        crowding = teacher_crowding(packed["teacher"], min(limit or CROWDING_IMAGES, CROWDING_IMAGES))
    write_results(out, rows, crowding, timer.times)
    if release_to is not None:
        release(out, rows, release_to)
    return rows


def _seed(overrides: Iterable[str]) -> int:
    """The `seed=N` among the overrides (the last one wins, as in the training runs), else 0: the labelled
    reference, trained outside `seedzoo train`, takes it too."""
    seeds = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0].strip() == "seed"]
    return int(seeds[-1]) if seeds else 0


def run_seeds(out: str | Path, seeds: int, stages: Iterable[str] | None = None, overrides: Iterable[str] = (),
              limit: int | None = None, release_to: ReleaseTarget | None = None, progress: bool = False,
              say: Callable[[str], None] = print) -> dict[int, list[Row]]:
    """The reproduction once per seed (`seed=0..seeds-1`, each in `OUT/seed_<i>/`, resumable as one run
    is), then `OUT/results_seeds.json` and `.md`: each number's mean and standard deviation over the
    seeds. The teacher is trained once (with seed 0, into `OUT/teacher/`, when `stages` asks for it) and
    every seed's students distil it. With `release_to`, seed 0's files ship, and the registry's record
    keeps every number of every seed. Returns each seed's rows (none without the evaluate stage)."""
    overrides = list(overrides)
    if seeds < 1:
        raise StageError(f"--seeds {seeds}: give at least 1 (seed=0..N-1, one sub-folder each)")
    if any(o.split("=", 1)[0].strip() == "seed" for o in overrides):
        raise StageError("seed=... and --seeds both choose the seed: keep one (--seeds N runs seed=0..N-1)")
    out = Path(out)
    rows = {}
    for seed in range(seeds):
        say(f"seed {seed} of 0..{seeds - 1}: {seed_folder(out, seed)}")
        rows[seed] = run_all(seed_folder(out, seed), stages, [*overrides, f"seed={seed}"], limit, progress=progress,
                             say=say)
    if all(rows.values()):
        write_seed_results(out, rows)
        if release_to is not None:
            release(seed_folder(out, 0), rows[0], release_to, by_seed=rows)
    for _, write_report in SWEEPS.values():  # each sweep's report over the seed folders that ran it (if any)
        write_report(out)
    return rows
