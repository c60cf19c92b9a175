"""The paper's two curves on Fashion-MNIST (`seedzoo reproduce fmnist --stage curves`): SEED students of
the reproduction's teacher at teacher temperatures 1e-4, 1e-3, 1e-2 and 0.07, and with queues of 1,024,
4,096, 16,384 and 65,536, the other setting at the recipe's value. Both curves train as one cohort (the
temperature and the queue are each student's own; the point they share trains once), one seed, and are
measured under the table's protocols on Fashion-MNIST.

The plot (`OUT/tau_queue.png`) draws the main SEED runs' seed spread at the recipe's value beside the
curves, so that a difference between two points can be read against the noise of a seed. Not part of
the default path: seven MobileNetV3-Large students of four epochs each.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...files import write_atomic
from .cohorts import (
    Student,
    Timer,
    mean_std,
    mean_std_text,
    run_folders,
    run_sweep,
    sweep_records,
    update_section,
    value,
)
from .evaluation import Row
from .report import read_results
from .stages import COMMAND, STUDENT, TRAINING

KEY = "curves"
TEMPERATURES = (1e-4, 1e-3, 1e-2, 0.07)
QUEUES = (1024, 4096, 16384, 65536)
README_MARKERS = ("<!-- fmnist-curves:start -->", "<!-- fmnist-curves:end -->")
PLOT = "tau_queue.png"  # under OUT
METRICS = {"kNN-20": ("knn", "knn20_top1"), "linear": ("linear", "top1")}  # on Fashion-MNIST's test images


@dataclass(frozen=True)
class Point:
    """One student of the curves: SEED at teacher temperature `tau` with a queue of `queue` embeddings."""

    tau: float
    queue: int

    def student(self) -> Student:
        return Student(f"curve.fmnist_tt{self.tau:g}_q{self.queue}", f"SEED, tau_T {self.tau:g}, queue {self.queue}",
                       STUDENT, swept=(f"distill.teacher_temperature={self.tau!r}", f"distill.queue_size={self.queue}"))


def recipe_point(extra: Iterable[str] = ()) -> Point:
    """The recipe's temperature and queue (after the overrides given to every training run)."""
    from ...training.config import load_config

    distill = load_config(STUDENT, list(extra)).distill
    return Point(distill.teacher_temperature, distill.queue_size)


def points(extra: Iterable[str] = (), temperatures: Sequence[float] = TEMPERATURES,
           queues: Sequence[int] = QUEUES) -> list[Point]:
    """The temperature curve at the recipe's queue, then the queue curve at the recipe's temperature; the
    recipe's point, on both, once."""
    base = recipe_point(extra)
    every = [Point(tau, base.queue) for tau in temperatures] + [Point(base.tau, q) for q in queues]
    return list(dict.fromkeys(every))


def run_curves(out: Path, extra: Iterable[str] = (), limit: int | None = None, progress: bool = False,
               timer: Timer | None = None, temperatures: Sequence[float] = TEMPERATURES,
               queues: Sequence[int] = QUEUES) -> list[Row]:
    """Train and measure the curves' cohort in `OUT/curves/` (resumable), then write the plot and table
    (`temperatures` and `queues`: the paper's values unless a quick check asks for fewer)."""
    extra = list(extra)
    chosen, base = points(extra, temperatures, queues), recipe_point(extra)
    rows = run_sweep(out, KEY, [p.student() for p in chosen], ("fashion_mnist",), extra, limit, progress, timer,
                     points=[{"tau": p.tau, "queue": p.queue} for p in chosen],
                     recipe={"tau": base.tau, "queue": base.queue})
    write_report(out)
    return rows


@dataclass
class Curves:
    """What the runs under OUT measured: each point's values over the runs that trained it (one per seed
    folder), by metric, and the main SEED row's values over the seeds (the spread drawn beside)."""

    recipe: Point
    tau: dict[float, dict[str, list[float]]] = field(default_factory=dict)
    queue: dict[float, dict[str, list[float]]] = field(default_factory=dict)  # queue sizes, as x values
    main: dict[str, list[float]] = field(default_factory=dict)

    @property
    def runs(self) -> int:
        return max(len(v) for by_metric in self.tau.values() for v in by_metric.values())


def collect(out: Path) -> Curves | None:
    """The curves measured under OUT (in each seed folder that ran them, or in OUT), or None where none ran."""
    curves = None
    for saved in sweep_records(out, KEY):
        curves = curves or Curves(Point(**saved["recipe"]))
        for point, row in zip(saved["points"], (Row(**r) for r in saved["rows"])):
            p = Point(**point)
            for name, (result, metric) in METRICS.items():
                v = value(row, "fashion_mnist", result, metric)
                if p.queue == curves.recipe.queue:
                    curves.tau.setdefault(p.tau, {}).setdefault(name, []).append(v)
                if p.tau == curves.recipe.tau:
                    curves.queue.setdefault(p.queue, {}).setdefault(name, []).append(v)
    if curves is not None:
        curves.main = main_spread(run_folders(out))
    return curves


def main_spread(folders: Iterable[Path]) -> dict[str, list[float]]:
    """The main SEED row's values, by metric, over the runs that measured it (`OUT/seed_<i>/results.json`)."""
    label = next(stage.label for stage in TRAINING if stage.key == "seed")
    spread: dict[str, list[float]] = {}
    for folder in folders:
        if (folder / "results.json").is_file():
            row = next((r for r in read_results(folder)[0] if r.label == label), None)
            for name, (result, metric) in METRICS.items():
                if row is not None:
                    spread.setdefault(name, []).append(value(row, "fashion_mnist", result, metric))
    return spread


def plot(curves: Curves, path: Path) -> Path:
    """Two panels, accuracy against tau_T and against the queue (both log axes), each metric a line
    (an error bar where several seeds trained a point), and the main SEED runs at the recipe's value:
    their mean and standard deviation as an error bar, each seed as a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ...training.plot import write_png

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    panels = ((axes[0], curves.tau, curves.recipe.tau, "teacher temperature tau_T",
               f"queue {curves.recipe.queue}"),
              (axes[1], curves.queue, curves.recipe.queue, "queue size", f"tau_T {curves.recipe.tau:g}"))
    for ax, axis, at, xlabel, fixed in panels:
        xs = sorted(axis)
        for colour, name in zip(("C0", "C1"), METRICS):
            means, stds = zip(*(mean_std(axis[x][name]) for x in xs))
            ax.errorbar(xs, means, yerr=[s or 0.0 for s in stds], color=colour, marker="o", capsize=3,
                        label=f"{name}, curve")
            main = curves.main.get(name, [])
            if main:
                mean, std = mean_std(main)
                ax.errorbar([at], [mean], yerr=[std or 0.0], color=colour, marker="s", mfc="none", ms=9,
                            capsize=6, lw=2, label=f"{name}, main SEED runs ({len(main)} seed"
                                                   f"{'s' if len(main) > 1 else ''}: mean ± std)")
                ax.scatter([at] * len(main), main, color=colour, s=8, zorder=3)
        ax.set_xscale("log")
        ax.set(xlabel=xlabel, ylabel="top-1 on the 10,000 test images (%)", title=f"SEED student, {fixed}")
        ax.legend(fontsize=7)
    return write_png(fig, path)


def table(curves: Curves) -> str:
    """Both curves as one markdown table per swept setting (mean ± std where several seeds trained)."""
    parts = []
    tau, queue = curves.recipe.tau, curves.recipe.queue
    for axis, at, setting, fixed, text in ((curves.tau, tau, "teacher temperature", f"queue {queue}", "g"),
                                           (curves.queue, queue, "queue size", f"tau_T {tau:g}", ",")):
        lines = [f"| {setting} ({fixed}) | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
        for x in sorted(axis):
            recipe = " (the recipe's)" if x == at else ""
            lines.append(f"| {x:{text}}{recipe} | " + " | ".join(mean_std_text(axis[x][m]) for m in METRICS) + " |")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def finding(curves: Curves) -> str:
    """The curves read against the paper's finding (a lower teacher temperature is better) and against the
    main runs' seed spread."""
    by_tau = {tau: mean_std(v["kNN-20"])[0] for tau, v in curves.tau.items()}
    lowest, best = min(by_tau), max(by_tau, key=by_tau.__getitem__)
    rise = by_tau[lowest] - by_tau[max(by_tau)]
    spread = curves.main.get("kNN-20", [])
    noise = (f"the main SEED runs at the recipe's value spread by {mean_std(spread)[1]:.2f} points of kNN-20 "
             f"(standard deviation over {len(spread)} seeds)" if len(spread) > 1 else
             "no seed spread of the main runs is measured yet (`--seeds 3`)")
    agrees = ("agrees with it" if best == lowest and rise > 0 else
              f"does not reproduce it: kNN-20 is best at tau_T {best:g}")
    within = ""
    if len(spread) > 1:  # a difference within twice a seed's standard deviation is not told from noise
        within = "; within" if abs(rise) <= 2 * (mean_std(spread)[1] or 0.0) else "; beyond"
        within += " twice the seed spread"
    return (f"The paper's finding (reported, not measured here): a lower teacher temperature is better; the "
            f"official code's default is 1e-4. Here the lowest temperature, {lowest:g}, gives kNN-20 "
            f"{by_tau[lowest]:.2f} against {by_tau[max(by_tau)]:.2f} at {max(by_tau):g} ({rise:+.2f} points"
            f"{within}), and the curve {agrees}. For scale: {noise}.")


def section(out: Path, plot_path: str = "docs/fmnist_tau_queue.png") -> str:
    """The README's account of the curves, recomputed from the records under OUT."""
    curves = collect(out)
    if curves is None:
        return f"Not measured yet: `{COMMAND} --stage curves` trains and measures them.\n"
    n = curves.runs
    return "\n".join([
        f"The paper's two curves at laptop scale: SEED students of the reproduction's teacher at teacher "
        f"temperatures {', '.join(f'{t:g}' for t in sorted(curves.tau))} (queue {curves.recipe.queue:,}) and with "
        f"queues of {', '.join(f'{q:,.0f}' for q in sorted(curves.queue))} (tau_T {curves.recipe.tau:g}), everything "
        "else at the "
        f"recipe's values, {n} seed{'s' if n > 1 else ''}; all trained as one cohort, one teacher pass per step "
        f"(`{COMMAND} --stage curves`). kNN-20 and linear top-1 on the 10,000 test images, the table's "
        "protocols.",
        "",
        table(curves),
        finding(curves),
        "",
        f"![teacher temperature and queue]({plot_path})",
        "",
    ])


def write_report(out: Path) -> None:
    """`OUT/tau_queue.png` and `OUT/tau_queue.md` from every run of the curves under OUT (nothing when
    none ran)."""
    curves = collect(out)
    if curves is not None:
        plot(curves, out / PLOT)
        write_atomic(out / "tau_queue.md", section(out, PLOT))


def update_readme(readme: Path, out: Path, plot_path: str = "docs/fmnist_tau_queue.png") -> None:
    """Rewrite the README's curves section and copy the plot to `plot_path`, relative to the README."""
    write_atomic(readme.parent / plot_path, (out / PLOT).read_bytes())
    update_section(readme, README_MARKERS, section(out, plot_path))
