"""Sweeps beside the reproduction's table: students that differ in one setting or in their objective,
trained as one cohort (one data stream and one teacher pass per step for all of them) and measured under
the table's protocols.

`curves` (the teacher temperature and the queue) and `strategies` (every distillation objective) build
on it. A sweep `KEY` trains into `OUT/KEY/run/` (resuming it), keeps each student's results in
`OUT/evaluation/<student>.json` like every row of the table, and writes `OUT/KEY/results.json`; a
sweep is done when every student's export exists and measured again only where a network changed.
"""
from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ...errors import SeedzooError
from ...files import write_atomic
from ...training.run_folder import PLAN_FILE, export_dir
from ...zoo import get_entry
from .evaluation import Network, Row, measure
from .stages import COMMAND, STUDENT, is_done, teacher_source

Timer = Callable[[str], AbstractContextManager[None]]  # `run.StageTimer`: adds a named part's wall time to a file


class ReadmeError(SeedzooError, ValueError):
    """The README lacks the markers of the section to write."""


@dataclass(frozen=True)
class Student:
    """One student of a sweep: a recipe with its own settings. `name` is its run name inside the cohort
    (and its evaluation file). `settings` apply before the overrides given to every training run (the
    student's recipe, which those may change), `swept` after them (the value the sweep is about)."""

    name: str
    label: str
    recipe: str
    settings: tuple[str, ...] = ()
    swept: tuple[str, ...] = ()


def run_dir(out: Path, key: str) -> Path:
    """Where sweep `key` trains its cohort (`OUT/KEY/run/`)."""
    return out / key / "run"


def configs(students: Sequence[Student], out: Path, extra: Iterable[str] = ()) -> list[Any]:
    """The students' training configs: each recipe with the reproduction's teacher, the student's settings,
    the overrides given to every training run, then the swept setting and the student's name."""
    from ...training.config import load_config

    teacher, extra = f"teacher.pretrained={teacher_source(out)}", list(extra)
    return [load_config(s.recipe, [teacher, *s.settings, *extra, *s.swept, f"name={s.name}"]) for s in students]


def is_trained(out: Path, key: str, students: Sequence[Student]) -> bool:
    return all(is_done(export_dir(run_dir(out, key), s.name)) for s in students)


def train_cohort(out: Path, key: str, students: Sequence[Student], cfgs: Sequence[Any]) -> None:
    """The students (`cfgs`, their configs) trained together into `OUT/KEY/run/` (resuming it); nothing
    when all have exported. The distilling ones share one teacher pass per step; each ends bitwise where
    it ends trained alone."""
    from ...training.engine import train

    if not is_trained(out, key, students):
        train(list(cfgs), run_dir(out, key), resume="auto", command=f"{COMMAND} --stage {key}")


def measure_cohort(out: Path, key: str, students: Sequence[Student], datasets: tuple[str, ...],
                   limit: int | None = None, progress: bool = False) -> list[Row]:
    """Each student's export under the table's protocols, on the students' preprocessing."""
    architecture = get_entry(STUDENT).architecture
    return [measure(out, Network(s.name, s.label, STUDENT, architecture, export_dir(run_dir(out, key), s.name)),
                    datasets, limit, progress) for s in students]


def run_sweep(out: Path, key: str, students: Sequence[Student], datasets: tuple[str, ...],
              extra: Iterable[str] = (), limit: int | None = None, progress: bool = False,
              timer: Timer | None = None, **record: Any) -> list[Row]:
    """Train the cohort, measure it, and write `OUT/KEY/results.json` (the rows, the seed, each student's
    settings and `record`); `timer` records the wall time of each part in `OUT/KEY/timings.json`."""
    from .run import StageTimer

    timer = timer or StageTimer(out / key)
    cfgs = configs(students, out, extra)
    with timer("train"):
        train_cohort(out, key, students, cfgs)
    with timer("evaluate"):
        rows = measure_cohort(out, key, students, datasets, limit, progress)
    write_atomic(out / key / "results.json", json.dumps(
        {"seed": cfgs[0].seed, "students": [asdict(s) for s in students], "rows": [asdict(r) for r in rows],
         **record}, indent=2) + "\n")
    return rows


def sweep_runs(out: Path, key: str) -> dict[int, Path]:
    """The folder (`.../KEY`) of every measured run of sweep `key` under OUT by its seed, in seed order:
    from the seed folders (`--seeds`) and from OUT itself (a sweep run once beside seeded main runs); a
    seed measured in both counts once, from its seed folder. A run begun and stopped (no results) is left out."""
    by_seed: dict[int, Path] = {}
    for folder in [*run_folders(out), out]:
        path = folder / key / "results.json"
        if path.is_file():
            by_seed.setdefault(json.loads(path.read_text())["seed"], folder / key)
    return dict(sorted(by_seed.items()))


def sweep_records(out: Path, key: str) -> list[dict[str, Any]]:
    """The `results.json` of each of `sweep_runs`, in seed order."""
    return [json.loads((folder / "results.json").read_text()) for folder in sweep_runs(out, key).values()]


def keep_records(out: Path, key: str, records: Path) -> None:
    """Copy each measured run of sweep `key` under OUT (its `results.json`, `timings.json` and the cohort's
    `run/device_plan.json`, which names the machine) into `RECORDS/seed_<seed>/KEY/`, the layout the
    sections read, each row's weights named relative to OUT. A run folder holds gigabytes and is not kept;
    these few KB are what a README's numbers are recomputed from, so they can live in the repository."""
    for seed, run in sweep_runs(out, key).items():
        saved = json.loads((run / "results.json").read_text())
        saved["rows"] = [{**row, "weights": _relative_to(row["weights"], out)} for row in saved["rows"]]
        folder = records / f"seed_{seed}" / key
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "results.json", json.dumps(saved, indent=2) + "\n")
        for name in ("timings.json", f"run/{PLAN_FILE}"):
            if (run / name).is_file():
                (folder / name).parent.mkdir(exist_ok=True)
                write_atomic(folder / name, (run / name).read_text())


def machines(out: Path, key: str) -> list[tuple[str, list[int]]]:
    """Which machine measured each seed of sweep `key` under OUT (or its records), as its device plan
    names it, with the seeds it measured: the same seed trains differently on CPUs with other bf16 units."""
    by_machine: dict[str, list[int]] = {}
    for seed, run in sweep_runs(out, key).items():
        plan = run / "run" / PLAN_FILE
        machine = json.loads(plan.read_text()).get("machine") if plan.is_file() else None
        by_machine.setdefault(describe_machine(machine), []).append(seed)
    return list(by_machine.items())


def describe_machine(machine: dict[str, Any] | None) -> str:
    if machine is None:
        return "a machine its record does not name"
    if machine.get("gpu"):
        return f"{machine['gpu']} (torch {machine['torch']})"
    units = f"{machine['cpu_bf16']} bf16" if machine["cpu_bf16"] else "no bf16 units"
    return f"{machine['cpu']} ({machine['cpus']} CPUs, {units}, torch {machine['torch']})"


def _relative_to(weights: str, out: Path) -> str:
    """A row's weights relative to OUT when they lie in it (a record names no path of the machine that
    measured it); anything else (random init, raw pixels, a file elsewhere) as it is."""
    for base in (out, out.resolve()):
        try:
            return Path(weights).relative_to(base).as_posix()
        except ValueError:
            continue
    return weights


def run_folders(out: Path) -> list[Path]:
    """The reproduction's runs under `out`: its seed folders (`OUT/seed_<i>`, `--seeds`) in seed order,
    else OUT itself."""
    seeds = sorted((int(p.name[5:]), p) for p in out.glob("seed_*") if p.is_dir() and p.name[5:].isdigit())
    return [p for _, p in seeds] or [out]


def value(row: Row, dataset: str, result: str, metric: str) -> float:
    return float(row.results[f"{dataset}/{result}"][metric])


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for one value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def mean_std_text(values: Sequence[float], signed: bool = False) -> str:
    """"mean ± std" to 2 decimals (the mean alone for one value); `signed` gives the mean its sign (a gap)."""
    mean, std = mean_std(values)
    return f"{mean:{'+' if signed else ''}.2f}" + (f" ± {std:.2f}" if std is not None else "")


def gap_text(gaps: Sequence[float]) -> str:
    """A gap over the seeds: its mean, then each seed's (one seed: the gap alone)."""
    mean = f"{statistics.fmean(gaps):+.2f}"
    return mean if len(gaps) == 1 else f"{mean} ({', '.join(f'{g:+.2f}' for g in gaps)})"


def holds(gaps: Sequence[float]) -> bool:
    """Whether a gap holds: every seed shows it in the same direction (none is zero)."""
    return bool(gaps) and (all(g > 0 for g in gaps) or all(g < 0 for g in gaps))


def update_section(readme: Path, markers: tuple[str, str], text: str) -> None:
    """Rewrite the README between `markers` (both must be there)."""
    start, end = markers
    content = readme.read_text()
    if start not in content or end not in content:
        raise ReadmeError(f"{readme} lacks the markers {start} ... {end}: add them where the section goes")
    head, rest = content.split(start, 1)
    write_atomic(readme, f"{head}{start}\n{text}{end}{rest.split(end, 1)[1]}")
