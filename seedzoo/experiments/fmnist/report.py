"""What the reproduction found, written out: the tables, the SEED-vs-MoCo verdict, the curves and the
README's section. Everything here reads the evaluated rows (or `OUT/results.json`); nothing trains.
"""
from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ...files import write_atomic
from .cohorts import gap_text, mean_std
from .evaluation import PIXEL_LABELS, RANDOM_INIT_LABELS, Row
from .stages import BASELINE, COMMAND, STUDENT, TEACHER, TRAINING, packed_dir, seed_folder, student_epochs

README_MARKERS = ("<!-- fmnist-results:start -->", "<!-- fmnist-results:end -->")

# The compared numbers: (results key under a dataset, metric) by short name.
_GAIN_KEYS = {"knn20": ("knn", "knn20_top1"), "linear": ("linear", "top1"), "linear_1pct": ("linear_1pct", "top1")}


def markdown_table(rows: list[Row], dataset: str = "fashion_mnist") -> str:
    head = ("| network | kNN top-1 (k=20) | kNN top-1 (k=200) | linear top-1 | linear top-1, 1% labels |\n"
            "|---|---|---|---|---|\n")
    lines = []
    for row in rows:
        knn, lin, one = (row.results[f"{dataset}/{k}"] for k in ("knn", "linear", "linear_1pct"))
        lines.append(f"| {row.label} | {knn['knn20_top1']:.2f} | {knn['knn200_top1']:.2f} | "
                     f"{lin['top1']:.2f} | {one['top1']:.2f} |")
    return head + "\n".join(lines) + "\n"


def _label(key: str) -> str:
    return next(stage.label for stage in TRAINING if stage.key == key)


def _minus(a: dict[str, Any], b: dict[str, Any], dataset: str = "fashion_mnist") -> dict[str, float]:
    """Results `a` minus results `b` on `dataset`, in points, by short name (`_GAIN_KEYS`)."""
    return {name: a[f"{dataset}/{k}"][m] - b[f"{dataset}/{k}"][m] for name, (k, m) in _GAIN_KEYS.items()}


def _minus_moco(rows: list[Row], dataset: str = "fashion_mnist") -> dict[str, dict[str, float]]:
    """Every SEED run's results (the entry and its ablations) minus the MoCo-v2-alone student's, in points,
    by row label."""
    seed_labels = {stage.label for stage in TRAINING if stage.distils}
    moco = next(row.results for row in rows if row.label == _label("mocov2"))
    return {row.label: _minus(row.results, moco, dataset) for row in rows if row.label in seed_labels}


def gains_table(rows: list[Row]) -> str:
    """Every SEED run (the entry and its ablations) minus the MoCo-v2-alone student, in points."""
    lines = ["| SEED run minus MoCo-v2 alone | kNN-20 | linear | linear, 1% labels |", "|---|---|---|---|"]
    for label, gains in _minus_moco(rows).items():
        lines.append(f"| {label} | " + " | ".join(f"{gains[name]:+.2f}" for name in _GAIN_KEYS) + " |")
    return "\n".join(lines) + "\n"


def seed_vs_moco(rows: list[Row], dataset: str = "fashion_mnist") -> dict[str, float]:
    """The SEED entry minus the MoCo-v2-alone student, in points (the target on Fashion-MNIST: +2 on
    kNN-20 and on linear; on digits: at least 0)."""
    return _minus_moco(rows, dataset)[_label("seed")]


@dataclass(frozen=True)
class Target:
    """One of the directions the reproduction must show, tested: `gaps` (points, by metric: kNN-20 and
    linear top-1, one per seed) must each reach `minimum` on the mean over the seeds with every seed
    above 0 (its direction), or in every seed (`every_seed`)."""

    claim: str
    gaps: dict[str, tuple[float, ...]]
    minimum: float
    every_seed: bool = False

    @property
    def met(self) -> bool:
        return all(statistics.fmean(g) >= self.minimum
                   and all(x >= self.minimum if self.every_seed else x > 0 for x in g) for g in self.gaps.values())


BySeed = Mapping[int, list[Row]]


def _per_seed(by_seed: BySeed, first: str, then: str | tuple[str, ...], dataset: str = "fashion_mnist"
              ) -> dict[str, tuple[float, ...]]:
    """Row `first` minus row `then` (or the best of rows `then`, metric by metric), seed by seed, in points,
    by metric (kNN-20, linear)."""
    gaps: dict[str, list[float]] = {"kNN-20": [], "linear": []}
    for seed in sorted(by_seed):
        values = {row.label: _pick(_values(row.results, dataset)) for row in by_seed[seed]}
        rivals = [values[label] for label in ((then,) if isinstance(then, str) else then)]
        for metric in gaps:
            gaps[metric].append(values[first][metric] - max(r[metric] for r in rivals))
    return {metric: tuple(g) for metric, g in gaps.items()}


def targets(by_seed: BySeed) -> list[Target]:
    """The reproduction's targets, over the seeds (`{seed: rows}`; one run is `{0: rows}`), on the 10,000
    test images (and on digits for the last). The teacher is trained once; the random-init rows and the
    students are those of each seed; the raw pixels are the better of the two pixel rows."""
    teacher, student = _label("teacher"), _label("seed")
    pixels = tuple(PIXEL_LABELS.values())
    return [
        Target("the teacher beats the raw pixels by at least 3 points", _per_seed(by_seed, teacher, pixels), 3.0),
        Target("the teacher beats its own architecture at random init by at least 5 points",
               _per_seed(by_seed, teacher, RANDOM_INIT_LABELS[TEACHER]), 5.0),
        Target("the SEED student beats the raw pixels", _per_seed(by_seed, student, pixels), 0.0),
        Target("the SEED student beats its own architecture at random init by at least 3 points",
               _per_seed(by_seed, student, RANDOM_INIT_LABELS[STUDENT]), 3.0),
        *_student_targets(by_seed)]


def _student_targets(by_seed: BySeed) -> tuple[Target, Target]:
    """SEED against MoCo-v2 alone: on Fashion-MNIST by 2 points in every seed, and on digits at least even."""
    student, moco = _label("seed"), _label("mocov2")
    return (Target("the SEED student beats MoCo-v2 alone by at least 2 points, in every seed",
                   _per_seed(by_seed, student, moco), 2.0, every_seed=True),
            Target("on digits (never seen), the SEED student is at least as good as MoCo-v2 alone, in every seed",
                   _per_seed(by_seed, student, moco, "digits"), 0.0, every_seed=True))


def _pick(gaps: dict[str, float]) -> dict[str, float]:
    return {"kNN-20": gaps["knn20"], "linear": gaps["linear"]}


def targets_table(by_seed: BySeed) -> str:
    n = len(by_seed)
    each = "" if n == 1 else f": mean over {n} seeds (each seed)"
    lines = [f"| target | kNN-20{each} | linear{each} | met |", "|---|---|---|---|"]
    for t in targets(by_seed):
        lines.append(f"| {t.claim} | {gap_text(t.gaps['kNN-20'])} | {gap_text(t.gaps['linear'])} | "
                     f"{'yes' if t.met else 'no'} |")
    return "\n".join(lines) + "\n"


def _runs(by_seed: BySeed) -> str:
    n = len(by_seed)
    return f"one run each, seed {next(iter(by_seed))}" if n == 1 else f"{n} seeds each, mean (each seed)"


def verdict(by_seed: BySeed) -> str:
    """What the students' comparison showed over the seeds, in one paragraph (the students' cards carry
    it). A gap holds when every seed shows it."""
    on_fmnist, on_digits = _student_targets(by_seed)
    g, d = on_fmnist.gaps, on_digits.gaps
    met = "meets" if on_fmnist.met else "does not meet"
    target = "the paper's direction at the target of +2 points on kNN and linear"
    if len(by_seed) == 1:
        direction = f"It {met} {target}."
        digits = "at least as good as" if on_digits.met else "below"
    else:
        lead = "holds" if all(min(v) > 0 for v in g.values()) else "does not hold"
        direction = f"The lead {lead} in every seed; it {met} {target} in every seed."
        digits = "at least as good as" if on_digits.met else "not in every seed at least as good as"
    return (f"SEED ({STUDENT}) minus MoCo-v2 alone ({BASELINE}), same architecture, epochs, batch and "
            f"augmentation ({_runs(by_seed)}): {gap_text(g['kNN-20'])} points of kNN-20 top-1, "
            f"{gap_text(g['linear'])} of linear top-1. {direction} On digits, which neither saw, SEED is {digits} "
            f"MoCo-v2 alone ({gap_text(d['kNN-20'])} kNN-20, {gap_text(d['linear'])} linear).")


def against_random_init(rows: list[Row]) -> str:
    """The students next to their own architecture at random init: the floor that the targets do not
    test, but that a reader of the tables should see (random convolutional features are strong here)."""
    by_label = {row.label: row.results for row in rows}
    floor = by_label[RANDOM_INIT_LABELS[STUDENT]]
    parts, below = [], []
    for dataset, name in (("fashion_mnist", "Fashion-MNIST"), ("digits", "digits")):
        gaps = {who: _pick(_minus(by_label[_label(key)], floor, dataset))
                for who, key in (("SEED", "seed"), ("MoCo-v2 alone", "mocov2"))}
        parts.append(f"on {name}, SEED {gaps['SEED']['kNN-20']:+.2f} kNN-20 and {gaps['SEED']['linear']:+.2f} "
                     f"linear, MoCo-v2 alone {gaps['MoCo-v2 alone']['kNN-20']:+.2f} and "
                     f"{gaps['MoCo-v2 alone']['linear']:+.2f}")
        below += [f"{who} on {name} ({metric})" for who, g in gaps.items() for metric, gap in g.items() if gap < 0]
    found = (f"Below the random-init network: {', '.join(below)}. Random convolutional features already "
             "separate these small grayscale images well; the paper's comparison is between trained students."
             if below else "Both students are above the random-init network on both sets.")
    return f"Against the students' own architecture at random init (points): {'; '.join(parts)}. {found}"


def against_raw_pixels(rows: list[Row]) -> str:
    """Every network next to the raw pixels it receives, under the same protocols, on both sets: the
    pixels' numbers and each network below the better raw-pixel row (empty without those rows)."""
    by_label = {row.label: row.results for row in rows}
    plain, centred = PIXEL_LABELS.values()
    pixels = [label for label in (plain, centred) if label in by_label]
    if not pixels:
        return ""
    teacher = _label("teacher")
    parts = []
    for dataset, name in (("fashion_mnist", "Fashion-MNIST"), ("digits", "digits")):
        values = {label: _pick(_values(results, dataset)) for label, results in by_label.items()}
        best = {metric: max(values[label][metric] for label in pixels) for metric in ("kNN-20", "linear")}
        how = {plain: "as they are", centred: "centred on the training mean"}
        scores = ", ".join(f"kNN-20 {values[label]['kNN-20']:.2f} and linear {values[label]['linear']:.2f} "
                           f"{how[label]}" for label in pixels)
        below = []  # each network under the pixels, with the numbers it is under on
        for label in (label for label in by_label if label not in pixels):
            gaps = [f"{metric} {value:.2f} against {best[metric]:.2f}"
                    for metric, value in values[label].items() if value < best[metric]]
            if gaps:
                below.append(f"{label} ({'; '.join(gaps)})")
        found = (f"below the better of them: {'; '.join(below)}" if below else
                 "every network is above both on kNN-20 and on linear")
        parts.append(f"On {name} the pixels score {scores}; {found}.")
        if dataset == "fashion_mnist" and teacher in values and values[teacher]["kNN-20"] < best["kNN-20"]:
            parts.append(f"The teacher is below its own input on kNN-20 ({values[teacher]['kNN-20']:.2f} "
                         f"against {best['kNN-20']:.2f}): its features do not yet serve a nearest-neighbour search "
                         "better than the pixels do" + (f", though its linear top-1 is above them "
                         f"({values[teacher]['linear']:.2f} against {best['linear']:.2f})."
                         if values[teacher]["linear"] > best["linear"] else "."))
            student = _label("seed")
            if student in values and values[student]["kNN-20"] < best["kNN-20"]:
                parts.append("On kNN-20 this experiment therefore cannot yet show a student learning from a teacher "
                             "that learned more than its pixels.")
    return ("Raw pixels, no network: the 32 px normalised tensors the networks receive, flattened (3 x 32 x 32 "
            "values), under the same protocols. Centring moves the kNN (a cosine similarity is not invariant to a "
            "shift); the linear probe standardises each input dimension, so its inputs with and without centring "
            "differ only by float rounding, which 100 epochs of SGD carry into a small difference of top-1. "
            + " ".join(parts))


def _values(results: dict[str, Any], dataset: str) -> dict[str, float]:
    """A row's numbers on `dataset` by short name (`_GAIN_KEYS`)."""
    return {name: results[f"{dataset}/{k}"][m] for name, (k, m) in _GAIN_KEYS.items()}


def plot_curves(out: Path, path: Path) -> Path:
    """Training loss and kNN monitor of every run, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ...training.metrics import METRICS_FILE, student_records
    from ...training.plot import read_metrics, write_png

    fig, (loss_ax, knn_ax) = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    for stage in TRAINING:
        run = stage.trained_in(out)
        if not (run / METRICS_FILE).is_file():
            continue  # not trained (yet)
        records = student_records(read_metrics(run), stage.student)
        steps = [r for r in records if "loss" in r]
        loss_ax.plot([r["step"] for r in steps], [r["loss"] for r in steps], lw=1, label=stage.label)
        knn = [(r["epoch"], v) for r in records for k, v in r.items() if k.startswith("knn")]
        if knn:
            knn_ax.plot(*zip(*knn), marker="o", label=stage.label)
    loss_ax.set(xlabel="step", ylabel="loss", title="training loss")
    knn_ax.set(xlabel="epochs done", ylabel="kNN-20 top-1 (%, monitor subset)", title="kNN monitor")
    knn_ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole numbers
    if knn_ax.lines:
        knn_ax.legend(fontsize=7)
    return write_png(fig, path)


def write_results(out: Path, rows: list[Row], crowding: dict[str, float], timings: dict[str, float]) -> None:
    """`OUT/results.json` (rows, teacher measurement, wall times), `OUT/results.md` and `OUT/curves.png`."""
    write_atomic(out / "results.json", json.dumps({"rows": [asdict(r) for r in rows], "teacher_embeddings": crowding,
                                                   "timings_s": timings,
                                                   "total_s": round(sum(timings.values()), 1)}, indent=2) + "\n")
    write_atomic(out / "results.md", markdown_table(rows) + "\nDigits (scikit-learn, never seen in training):\n\n"
                 + markdown_table(rows, "digits"))
    plot_curves(out, out / "curves.png")


def seed_summary(rows_by_seed: dict[int, list[Row]]) -> list[dict[str, Any]]:
    """Each network's numbers over the seeds: for every result and metric, the values by seed, their mean
    and their sample standard deviation (None with one seed). Rows follow the first seed's order."""
    seeds = sorted(rows_by_seed)
    by_label = [{row.label: row for row in rows_by_seed[seed]} for seed in seeds]
    summary = []
    for row in rows_by_seed[seeds[0]]:
        results: dict[str, dict[str, Any]] = {}
        for key, first in row.results.items():
            metrics = {}
            for metric, value in first.items():
                if not isinstance(value, (int, float)):
                    continue
                values = [float(seen[row.label].results[key][metric]) for seen in by_label]
                mean, std = mean_std(values)
                metrics[metric] = {"mean": mean, "std": std, "values": values}
            results[key] = {"protocol": first.get("protocol"), **metrics}
        summary.append({"label": row.label, "results": results})
    return summary


def seeds_table(summary: list[dict[str, Any]], n: int, dataset: str = "fashion_mnist") -> str:
    """`markdown_table`'s columns as mean ± standard deviation over `n` seeds."""
    def cell(result: dict[str, Any], metric: str) -> str:
        m = result[metric]
        return f"{m['mean']:.2f}" + (f" ± {m['std']:.2f}" if m["std"] is not None else "")

    head = (f"| network ({n} seed{'s' if n > 1 else ''}: mean ± std) | kNN top-1 (k=20) | kNN top-1 (k=200) | "
            "linear top-1 | linear top-1, 1% labels |\n|---|---|---|---|---|\n")
    lines = []
    for row in summary:
        knn, lin, one = (row["results"][f"{dataset}/{k}"] for k in ("knn", "linear", "linear_1pct"))
        lines.append(f"| {row['label']} | {cell(knn, 'knn20_top1')} | {cell(knn, 'knn200_top1')} | "
                     f"{cell(lin, 'top1')} | {cell(one, 'top1')} |")
    return head + "\n".join(lines) + "\n"


def write_seed_results(out: Path, rows_by_seed: dict[int, list[Row]]) -> None:
    """`OUT/results_seeds.json` (every number by seed, its mean and standard deviation) and
    `OUT/results_seeds.md`; each seed's own results stay in `OUT/seed_<i>/`."""
    summary, n = seed_summary(rows_by_seed), len(rows_by_seed)
    write_atomic(out / "results_seeds.json", json.dumps({"seeds": sorted(rows_by_seed), "rows": summary},
                                                       indent=2) + "\n")
    write_atomic(out / "results_seeds.md", seeds_table(summary, n) + "\nDigits (scikit-learn, never seen in "
                 "training):\n\n" + seeds_table(summary, n, "digits"))


def read_results(out: Path) -> tuple[list[Row], dict[str, Any]]:
    """The rows of `OUT/results.json`, and the whole file."""
    saved = json.loads((out / "results.json").read_text())
    return [Row(**r) for r in saved["rows"]], saved


def read_timings(out: Path) -> dict[str, float]:
    """Each stage's wall time in seconds, as `run.StageTimer` keeps it in OUT/timings.json (empty without it);
    in the folder above the seeds, the stages trained once for every seed (the teacher)."""
    path = out / "timings.json"
    return {key: float(seconds) for key, seconds in json.loads(path.read_text()).items()} if path.is_file() else {}


def read_runs(out: Path) -> dict[int, Path]:
    """The run folders of a reproduction by seed: each seed folder that `OUT/results_seeds.json` lists
    (`run.run_seeds`), else OUT itself as one run (seed 0)."""
    seeds = out / "results_seeds.json"
    if not seeds.is_file():
        return {0: out}
    return {seed: seed_folder(out, seed) for seed in json.loads(seeds.read_text())["seeds"]}


def mean_rows(by_seed: BySeed) -> list[Row]:
    """The rows with each number replaced by its mean over the seeds (the first seed's rows, with one)."""
    summary = seed_summary(dict(by_seed))
    first = {row.label: row for row in by_seed[min(by_seed)]}
    return [Row(s["label"], first[s["label"]].weights,
                {key: {metric: (m["mean"] if isinstance(m, dict) else m) for metric, m in result.items()}
                 for key, result in s["results"].items()}) for s in summary]


def _file_sizes(out: Path, rows: list[Row]) -> str:
    """The sizes of the files the table measured that ship (the packed fp16 copies, found in `out` rather
    than at `row.weights`, which is relative to wherever the run was started)."""
    files = [packed_dir(out) / Path(row.weights).name for row in rows if row.weights.endswith(".safetensors")]
    return ", ".join(f"{f.stem} {f.stat().st_size / 1e6:.1f} MB" for f in files if f.is_file())


def _teacher_space(by_label: dict[str, dict[str, Any]], crowd: dict[str, Any]) -> str:
    """The teacher's head space (what SEED distils) against its backbone: kNN-20 and effective rank."""
    teacher = next((r for r in by_label.values() if "fashion_mnist/knn_head" in r), None)
    knn = ("" if teacher is None else
           f"kNN-20 {teacher['fashion_mnist/knn_head']['knn20_top1']:.2f} on the head's output against "
           f"{teacher['fashion_mnist/knn']['knn20_top1']:.2f} on the backbone's; ")
    return (f"The teacher's target space (its projection head's output): {knn}effective rank "
            f"{crowd['effective_rank']:.1f} against {crowd['backbone_effective_rank']:.1f} for the backbone "
            f"(exp of the entropy of the normalised singular values, over {crowd['images']} training images).")


def readme_section(out: Path, plot: str = "docs/fmnist_curves.png") -> str:
    """The README's account of a finished reproduction, one run or one per seed (`run.run_seeds`): the
    tables, the targets, the time it took. With seeds, the tables give each number's mean and standard
    deviation, the targets every seed's gap, and the prose the means; the curves and the shipped files
    are the first seed's."""
    runs = read_runs(out)
    saved_by_seed = {seed: read_results(folder) for seed, folder in runs.items()}
    by_seed = {seed: rows for seed, (rows, _) in saved_by_seed.items()}
    first = min(runs)
    rows, saved = saved_by_seed[first]
    n = len(by_seed)
    means = mean_rows(by_seed)
    by_label = {row.label: row.results for row in rows}
    crowd = saved.get("teacher_embeddings")
    sizes = _file_sizes(runs[first], rows)
    from ...training.config import load_config

    teacher_cfg, epochs = load_config(TEACHER), student_epochs()
    teacher_epochs = teacher_cfg.epochs
    stem = (" with a low-resolution stem (3x3 stride-1 first convolution, no max-pool)"
            if teacher_cfg.student.arch.endswith("_lowres") else "")
    tau_t = load_config(STUDENT).distill.teacher_temperature
    missing = [stage.label for stage in TRAINING if stage.label not in by_label]
    pending = (f"Not measured yet: {'; '.join(missing)}. `{COMMAND}` trains what is missing and adds the rows."
               if missing else "")
    unmet = [t.claim for t in targets(by_seed) if not t.met]
    seeds = "one seed" if n == 1 else f"{n} seeds (seed = {', '.join(map(str, sorted(by_seed)))})"
    table, digits = ((markdown_table(rows), markdown_table(rows, "digits")) if n == 1 else
                     (seeds_table(seed_summary(by_seed), n), seeds_table(seed_summary(by_seed), n, "digits")))
    on_means = "" if n == 1 else f"On the means over the {n} seeds. "
    shipped_seed, kept = ("", "") if n == 1 else (" (seed 0)", ", which also keeps every seed's numbers")
    return "\n".join([
        f"The paper's claim at laptop scale, measured here: a MoCo-v2 ResNet-18 teacher{stem} trained on "
        f"Fashion-MNIST's 60,000 training images without labels ({teacher_epochs} epochs, 32 px), a "
        f"MobileNetV3-Large student distilled from it by SEED ({epochs} epochs), and the same student trained "
        f"by MoCo-v2 alone with the same epochs, batch and augmentation. Test set: the 10,000 test images. "
        "kNN: k = 20 and 200, T = 0.07, over the 60,000 training features; linear: a probe on cached, "
        "standardised features (`linear_fast`: SGD lr 0.1, SEED's 100-epoch step schedule), with all labels "
        "or a class-balanced 1%. Every network the trainer builds starts from torchvision's initialisation, "
        "as the authors' code does; the random-init rows are those networks before training, and the raw-pixel "
        "rows measure the networks' input itself, with no network."
        + ("" if n == 1 else f" The students and the labelled reference are trained with {seeds}, each seed's "
           "random-init rows are the networks that seed's runs start from, and the teacher is trained once "
           "(seed 0): the students of every seed distil the same teacher."),
        "",
        *([f"The SEED recipe uses teacher temperature {tau_t:g}, not the official 1e-4: the teacher's embeddings "
           f"are crowded (mean cosine to the nearest other image, over {crowd['images']} training images: "
           f"{crowd['nearest_cosine_mean']:.4f}; between all pairs: {crowd['pairwise_cosine_mean']:.3f}), so at "
           "1e-4 the target is one-hot over near-duplicates that the student, at tau_S = 0.2, cannot tell apart. "
           "The 1e-4 run is an ablation row."]
          if crowd and tau_t != 1e-4 else []),
        *([_teacher_space(by_label, crowd)] if crowd and "effective_rank" in crowd else []),
        "",
        table,
        gains_table(means),
        f"The targets, tested (points; {_runs(by_seed)}):",
        "",
        targets_table(by_seed),
        verdict(by_seed),
        "",
        on_means + against_random_init(means),
        "",
        *([on_means + pixels, ""] if (pixels := against_raw_pixels(means)) else []),
        ("All the targets are met." if not unmet else
         f"Not met: {'; '.join(unmet)}. The kNN monitor of every run is plotted below."),
        "What the numbers mean next to the paper: the paper distils ImageNet teachers of 200-800 epochs into "
        "students at 224 px and reports linear top-1 on ImageNet (MobileNetV3-Large 36.3 by MoCo-v2 alone, "
        "68.2 by SEED from SwAV ResNet-50x2, reported). Here the teacher, the data and the budget are a "
        f"2-core CPU's: a 10-class, 28 px grayscale set, {seeds}, and runs far shorter than convergence. "
        "They test the direction of the claim (distilling a self-supervised teacher beats self-supervising "
        "the small network alone, at equal student budget), not its size.",
        "",
        *([pending, ""] if pending else []),
        "On scikit-learn's handwritten digits, which no model here was trained on (1,000 train / 797 test "
        "images, 8x8 upsampled to 32 px):",
        "",
        digits,
        _time_text(saved_by_seed, read_timings(out) if n > 1 else {}),
        "The teacher, the SEED student, the MoCo-v2 student and the supervised reference ship inside the "
        f"package as fp16 safetensors{shipped_seed}, sha256-pinned in the registry{kept}; the students' files hold "
        "the backbone only, the teacher's keeps the head SEED distils through, the reference's its classifier "
        f"({sizes}); `{COMMAND} --release` writes them and their record there. `seedzoo demo` measures them "
        "again, and `seedzoo verify NAME --data ROOT` re-runs a card's numbers.",
        "",
        f"![training curves]({plot})",
        "",
    ])


def _time_text(saved_by_seed: dict[int, tuple[list[Row], dict[str, Any]]], shared: dict[str, float]) -> str:
    """Each run's wall time by stage (summed over the seeds), the stages run once for every seed (`shared`:
    the teacher, from OUT/timings.json), and what resumes."""
    stages = {f"{key} (once)": seconds for key, seconds in shared.items()}
    for _, saved in saved_by_seed.values():
        for key, seconds in saved["timings_s"].items():
            stages[key] = stages.get(key, 0.0) + seconds
    total = sum(saved["total_s"] for _, saved in saved_by_seed.values()) + sum(shared.values())
    n = len(saved_by_seed)
    command = COMMAND if n == 1 else f"{COMMAND} --seeds {n}"
    each = "" if n == 1 else ", the others summed over the seeds" if shared else ", each summed over the seeds"
    return (f"Time on this 2-core CPU, `{command}` end to end: {total / 60:.0f} min "
            f"({', '.join(f'{k} {v / 60:.0f} min' for k, v in stages.items())}{each}). Every stage resumes after "
            f"an interruption; `{command} --readme README.md` wrote this section. The teacher ships, as the "
            f"paper's teachers do: `{COMMAND}` distils from the shipped teacher unless "
            "`--stage teacher` asks to train it again.")


def update_readme(readme: Path, out: Path, plot: str = "docs/fmnist_curves.png") -> None:
    """Rewrite the README's results section (between `README_MARKERS`) and copy the run's curves (the first
    seed's) to `plot`, relative to the README."""
    runs = read_runs(out)
    write_atomic(readme.parent / plot, (runs[min(runs)] / "curves.png").read_bytes())
    start, end = README_MARKERS
    text = readme.read_text()
    head, rest = text.split(start, 1)
    write_atomic(readme, f"{head}{start}\n{readme_section(out, plot)}{end}{rest.split(end, 1)[1]}")
