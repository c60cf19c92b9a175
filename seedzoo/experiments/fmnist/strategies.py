"""Every distillation objective side by side on Fashion-MNIST (`seedzoo reproduce fmnist --stage
strategies`): the SEED recipe's student (MobileNetV3-Large, the reproduction's epochs, batch, data and
optimiser) trained by each registered method that distils a teacher, and by MoCo-v2 alone (the baseline
recipe), as one cohort: one data stream and one teacher pass per step for all of them. Each method keeps
its own defaults for its own settings; the MoCo-v2 settings (DisCo's too) are the baseline recipe's.

Run once per seed (`--seeds 3`: `OUT/seed_<i>/strategies/`), the table gives each number's mean and
standard deviation over the seeds, and the verdict reads the seeds: a gap holds when every seed shows
it in the same direction. Not part of the default path: seven students of four epochs per seed.
`--readme README.md` keeps each measured seed's records in `docs/records/fmnist/` beside the README
(`RECORDS`), and the README's section reads them: a few hours per seed, the seeds can be measured one run
at a time (`seed=N --out OUT/seed_N`) and the table grows from what is kept.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ...files import write_atomic
from .cohorts import (
    Student,
    Timer,
    gap_text,
    holds,
    keep_records,
    machines,
    mean_std,
    mean_std_text,
    run_sweep,
    sweep_records,
    sweep_runs,
    update_section,
    value,
)
from .evaluation import Row
from .stages import BASELINE, COMMAND, STUDENT

KEY = "strategies"
README_MARKERS = ("<!-- fmnist-strategies:start -->", "<!-- fmnist-strategies:end -->")
RECORDS = "docs/records/fmnist"  # beside the README: each measured seed's records, which its section reads
# The table's columns: (dataset, results key, metric) by heading.
COLUMNS = {"kNN-20": ("fashion_mnist", "knn", "knn20_top1"), "linear": ("fashion_mnist", "linear", "top1"),
           "linear, 1% labels": ("fashion_mnist", "linear_1pct", "top1"),
           "digits kNN-20": ("digits", "knn", "knn20_top1"), "digits linear": ("digits", "linear", "top1")}
GAPS = ("kNN-20", "linear")  # the verdict's comparisons, on Fashion-MNIST
MOCO, REFERENCE = "moco", "seed"  # MoCo-v2 alone; the objective the others are set against
# Reported on ImageNet, linear top-1 (not measured here; protocols and epochs differ between the papers).
PAPERS = ("EfficientNet-B0 from SwAV ResNet-50x2: SEED 67.6, DisCo 69.1, BINGO 69.3; ResNet-18 from the same "
          "teacher: SEED 63.0, BINGO 65.5; ResNet-18 from BYOL ResNet-50: SimReg 66.8")


def distillation_methods() -> list[str]:
    """Every registered method that distils a teacher, SEED first (the others are set against it)."""
    from ...training.methods import get_method, list_methods

    return sorted((name for name in list_methods() if get_method(name).needs_teacher), key=lambda m: m != REFERENCE)


def students(methods: Sequence[str] | None = None) -> list[Student]:
    """One student per distillation method (all registered ones unless `methods` names some), then
    MoCo-v2 alone."""
    from ...training.config import load_config, to_dict
    from ...training.methods import get_method

    # MoCo-v2's settings from the baseline recipe, for every method that reads them (DisCo's MoCo part)
    baseline = load_config(BASELINE)
    moco = tuple(f"moco.{k}={v}" for k, v in to_dict(baseline)["moco"].items())
    distilling = [Student(f"strategy.fmnist_{m}", f"{get_method(m).trained_by} (method={m})", STUDENT,
                          (f"method={m}", *moco)) for m in (methods or distillation_methods())]
    # the baseline's loader workers made the student's: the students of a cohort share one data stream
    workers = load_config(STUDENT).data.workers
    alone = Student(f"strategy.fmnist_{MOCO}", "MoCo-v2 alone (method=moco)", BASELINE, (f"data.workers={workers}",))
    return [*distilling, alone]


def run_strategies(out: Path, extra: Iterable[str] = (), limit: int | None = None, progress: bool = False,
                   timer: Timer | None = None, methods: Sequence[str] | None = None) -> list[Row]:
    """Train and measure the cohort in `OUT/strategies/` (resumable), then write the table over every
    seed folder that ran it."""
    methods = list(methods or distillation_methods())
    rows = run_sweep(out, KEY, students(methods), ("fashion_mnist", "digits"), extra, limit, progress, timer,
                     methods=[*methods, MOCO])
    write_report(out)
    return rows


def collect(out: Path) -> dict[str, dict[str, list[float]]]:
    """Each student's numbers over the seed folders that ran the strategies, by label and column (in the
    cohort's order); empty where none ran. A label missing from a seed is left out (it cannot be compared)."""
    runs = sweep_records(out, KEY)
    if not runs:
        return {}
    by_run = [{r["label"]: Row(**r) for r in saved["rows"]} for saved in runs]
    labels = [label for label in by_run[0] if all(label in rows for rows in by_run)]
    return {label: {col: [value(rows[label], *where) for rows in by_run] for col, where in COLUMNS.items()}
            for label in labels}


def table(numbers: dict[str, dict[str, list[float]]]) -> str:
    n = len(next(iter(numbers.values()))["kNN-20"])
    lines = [f"| objective ({n} seed{'s' if n > 1 else ''}: mean ± std) | " + " | ".join(COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(mean_std_text(v[c]) for c in COLUMNS) + " |" for label, v in numbers.items()]
    return "\n".join(lines) + "\n"


def _label_of(numbers: dict[str, Any], method: str) -> str | None:
    return next((label for label in numbers if label.endswith(f"(method={method})")), None)


def gaps(numbers: dict[str, dict[str, list[float]]], against: str) -> dict[str, dict[str, list[float]]]:
    """Every other student minus `against`, seed by seed, on the verdict's columns."""
    base = numbers[against]
    return {label: {c: [a - b for a, b in zip(v[c], base[c])] for c in GAPS}
            for label, v in numbers.items() if label != against}


def _cell(per_seed: list[float]) -> str:
    """A gap's mean and the standard deviation of its per-seed values: the students of one seed share a
    cohort (data stream, views, teacher pass), so a gap is taken seed by seed, then summarised."""
    word = "holds" if holds(per_seed) and len(per_seed) > 1 else ("one seed" if len(per_seed) == 1 else "seeds differ")
    return f"{mean_std_text(per_seed, signed=True)} ({word})"


def verdict_table(numbers: dict[str, dict[str, list[float]]]) -> str:
    """Each objective minus SEED and minus MoCo-v2 alone (points: the per-seed gaps' mean ± standard
    deviation), each gap marked whether it holds (every seed shows it in the same direction)."""
    seed, moco = _label_of(numbers, REFERENCE), _label_of(numbers, MOCO)
    against = [(name, label) for name, label in (("SEED", seed), ("MoCo-v2 alone", moco)) if label is not None]
    heads = [f"minus {name}: {c}" for name, _ in against for c in GAPS]
    lines = ["| objective | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    by = {name: gaps(numbers, label) for name, label in against}
    for label in numbers:
        cells = [(_cell(by[name][label][c]) if label in by[name] else "-") for name, _ in against for c in GAPS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def verdict(numbers: dict[str, dict[str, list[float]]]) -> str:
    """The gaps to SEED that hold, in words."""
    seed = _label_of(numbers, REFERENCE)
    if seed is None:
        return ""
    n = len(numbers[seed]["kNN-20"])
    if n < 2:
        return ("One seed: no gap can be said to hold yet (`--seeds 3` trains the cohort once per seed).")
    said = []
    for label, by_column in gaps(numbers, seed).items():
        held = [f"{'above' if mean_std(g)[0] > 0 else 'below'} on {c}, {gap_text(g)}"
                for c, g in by_column.items() if holds(g)]
        said.append(f"{label.split(' (')[0]} is {', and '.join(held)}" if held else
                    f"{label.split(' (')[0]} is not separated from it (the seeds differ)")
    # Sign agreement alone is weak evidence over few seeds: a gap of zero, its sign a coin flip per
    # seed, agrees in all n of them with probability 2 / 2**n.
    return (f"Against SEED, over {n} seeds (a gap holds when every seed shows it in the same direction; a gap "
            f"of zero would do so 1 time in {2 ** (n - 1)}, so read each gap beside its spread; the mean gap, then "
            f"each seed's): " + "; ".join(said) + ".")


def section(out: Path) -> str:
    """The README's account of the strategies, recomputed from the records under OUT."""
    numbers = collect(out)
    if not numbers:
        return f"Not measured yet: `{COMMAND} --stage strategies --seeds 3` trains and measures them.\n"
    # the training times of the runs in the table: one per seed, none for a seed begun and stopped
    timings = [run / "timings.json" for run in sweep_runs(out, KEY).values()]
    minutes = [json.loads(t.read_text()).get("train", 0.0) / 60 for t in timings if t.is_file()]
    time = ""
    if minutes:
        span = f"{min(minutes):.0f}" + (f"-{max(minutes):.0f}" if round(max(minutes)) > round(min(minutes)) else "")
        where = "; ".join(f"{'seed' if len(seeds) == 1 else 'seeds'} {', '.join(map(str, seeds))} on {name}"
                          for name, seeds in machines(out, KEY))
        time = f" Each seed's cohort trained in {span} min, alone on its machine ({where})."
    return "\n".join([
        "Every distillation objective of the trainer side by side: the SEED recipe's student (MobileNetV3-Large, "
        "the same epochs, batch, data, views and optimiser) distilled from the reproduction's teacher by each "
        "registered method, and trained by MoCo-v2 alone, as one cohort per seed (one teacher pass per step; "
        f"`{COMMAND} --stage strategies --seeds 3`).{time} Each method keeps its own defaults; the MoCo-v2 "
        "settings are the baseline recipe's. Top-1 on the 10,000 test images and on digits (never seen), the "
        "table's protocols.",
        "",
        table(numbers),
        verdict_table(numbers),
        verdict(numbers),
        "",
        f"Reported on ImageNet (linear top-1, not measured here): {PAPERS}.",
        "",
    ])


def write_report(out: Path) -> None:
    """`OUT/strategies.md` and `OUT/strategies.json` (every number by seed) from every run of the
    strategies under OUT (nothing when none ran)."""
    numbers = collect(out)
    if numbers:
        write_atomic(out / "strategies.json", json.dumps({"columns": COLUMNS, "numbers": numbers}, indent=2) + "\n")
        write_atomic(out / "strategies.md", section(out))


def update_readme(readme: Path, out: Path) -> None:
    """Keep OUT's measured seeds among the README's records (`RECORDS`, beside it), then rewrite its
    strategies section from all of them: a seed measured in another OUT, or in an OUT since deleted,
    stays in the table (each seed's cohort takes hours, so the seeds may be measured run by run)."""
    records = readme.parent / RECORDS
    keep_records(out, KEY, records)
    update_section(readme, README_MARKERS, section(records))
