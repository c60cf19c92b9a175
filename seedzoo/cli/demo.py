"""`seedzoo demo` (the README's main job) and `seedzoo reproduce fmnist`."""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import SeedzooError
from .output import add_json_option, human, write_json


class DemoError(SeedzooError, FileNotFoundError):
    """Nothing to demonstrate: no weights ship in this installation."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="load the shipped Fashion-MNIST entries offline and measure them against the references",
        description="Loads every entry whose weights ship inside seedzoo (sha256-verified, no network), "
                    "measures kNN and linear top-1 on Fashion-MNIST next to the random-init and raw-pixel "
                    "references, and prints them beside the numbers of the entries' cards.")
    p.add_argument("--limit", type=int, default=10000,
                   help="images per split for the live check (default 10000; 0 = the cards' full protocol)")
    p.add_argument("--data", metavar="ROOT", help="Fashion-MNIST folder (default: Debian's files)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_json_option(p, "the table")
    p.set_defaults(func=_demo)

    r = subparsers.add_parser(
        "reproduce", help="train and evaluate a whole experiment (resumable)",
        description="fmnist: SEED vs MoCo-v2 alone on Fashion-MNIST, with ablations and references, on one CPU, "
                    "distilling from the shipped teacher (`--stage teacher` trains a new one into OUT first; "
                    "later runs into OUT use it). Interrupted runs continue where they stopped. key=value "
                    "overrides may stand anywhere on the line and apply to every training run.")
    r.add_argument("words", nargs="+", metavar="fmnist|key=value",
                   help="the experiment (fmnist), and key=value overrides applied to every training run")
    r.add_argument("--out", type=Path, help="output folder (default runs/fmnist, runs/fmnist-quick with --quick)")
    r.add_argument("--stage", action="append", dest="stages", metavar="STAGE[,STAGE...]",
                   help="only these stages (teacher, seed, mocov2, seed_tt1e-2, supervised, curves, strategies, "
                        "evaluate); a stage another needs is added (evaluate reads seed, mocov2, supervised); the "
                        "teacher trains only when named here or to finish a teacher run begun in OUT; curves (the "
                        "teacher temperature and queue sweeps) and strategies (every distillation objective, one "
                        "cohort per seed) run only when named")
    r.add_argument("--quick", action="store_true",
                   help="the short path: a subset of the training images for the students and the reference, "
                        "every network measured on fewer images (fmnist.run.QUICK; about 13 minutes on 2 cores; "
                        "its numbers are not the recorded ones)")
    r.add_argument("--seeds", type=int, metavar="N",
                   help="run it for seed=0..N-1, one sub-folder each (OUT/seed_<i>), and report each number's "
                        "mean and standard deviation (OUT/results_seeds.md); the teacher is trained once, in "
                        "OUT/teacher, and every seed's students distil it; --release ships seed 0's files and "
                        "records every seed's numbers")
    r.add_argument("--release", action="store_true",
                   help="also write the shipped entries' weights and their measured record into the package "
                        "source (seedzoo/weights/embedded, seedzoo/zoo/measured_fmnist.json); off by default")
    r.add_argument("--readme", type=Path, metavar="README",
                   help="also write the results section of this README (and its plot, docs/fmnist_curves.png), "
                        "and the curves and strategies sections where OUT holds them")
    r.set_defaults(func=_reproduce, positionals_after_options="words",  # reproduce fmnist --quick key=val
                   interrupt_hint="run the same command again: finished stages are kept")


def _demo(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from seedzoo.evaluation.runner import run_evaluation
    from seedzoo.zoo import list_entries

    entries = [e for e in list_entries() if e.weights.embedded]
    if not entries:
        raise DemoError("no entry ships its weights in this installation: run `seedzoo reproduce fmnist` first")
    out = human(args)
    limit = args.limit or None
    rows: list[dict[str, Any]] = []
    subjects = _subjects(entries, args.data, limit)
    # One bar over the rows (elapsed, ETA); feature extraction and the probe show their own below it.
    bar = tqdm(subjects, desc="demo", unit="row", disable=args.quiet, file=sys.stderr)
    for subject in bar:
        start = time.perf_counter()
        bar.set_postfix_str(subject.label.split(" ")[0], refresh=True)
        model = subject.build()
        if subject.shipped:
            bar.write(f"loaded {subject.label}: {model.seedzoo_weights.path.name}, sha256 "
                      f"{model.seedzoo_weights.sha256[:12]}… verified", file=out)
        with tempfile.TemporaryDirectory() as cache:  # one feature pass serves both protocols
            knn, lin = (run_evaluation(subject.name, protocol, "fashion_mnist", args.data, model=model, limit=limit,
                                       cache_dir=cache, progress=not args.quiet)
                        for protocol in ("knn", "linear_fast"))
        rows.append({"network": subject.label, "role": subject.role,
                     "knn20_top1": knn.metrics["knn20_top1"], "knn200_top1": knn.metrics["knn200_top1"],
                     "linear_top1": lin.metrics["top1"], "card_knn20_top1": _card(subject.card, "knn20_top1", "knn"),
                     "card_linear_top1": _card(subject.card, "top1", "linear_fast"),
                     "seconds": round(time.perf_counter() - start, 1)})
    bar.close()
    what = f"first {limit} images of each split" if limit else "the full splits (the cards' protocol)"
    print(f"\nFashion-MNIST, {what}; features at 32 px; linear = a probe on cached, standardised features "
          "(linear_fast); raw pixels = the 32 px input the networks receive, flattened\n", file=out)
    header = ("network", "role", "kNN-20", "kNN-200", "linear", "card kNN-20", "card linear", "s")
    widths = [max(len(header[0]), *(len(r["network"]) for r in rows)), 9, 7, 8, 7, 12, 12, 5]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)), file=out)
    for r in rows:
        values = list(r.values())
        cells = [values[0], values[1], *(f"{v:.2f}" if v is not None else "-" for v in values[2:7]),
                 f"{r['seconds']:.0f}"]
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)), file=out)
    print("\nThe cards' numbers use all 60,000 training images (`seedzoo verify NAME --data ROOT` re-measures "
          "them; the raw-pixel rows' are in the registry's record).", file=out)
    if args.json:
        write_json({"dataset": "Fashion-MNIST", "limit_per_split": limit, "input_size": 32,
                    "protocols": {"knn": "knn", "linear": "linear_fast"}, "rows": rows}, args.json)
    return 0


@dataclass(frozen=True)
class _Subject:
    """One row of the demo: what it measures (`build`), on whose preprocessing (`name`), beside which
    recorded numbers (`card`)."""

    label: str
    role: str
    name: str
    build: Callable[[], Any]
    card: tuple[Any, ...] = ()
    shipped: bool = False  # an entry's own weights, whose file the demo names


def _subjects(entries: list[Any], data: str | None, limit: int | None) -> list[_Subject]:
    """The shipped entries, the random-init reference built like the students, and the raw pixels they
    receive (as they are, and centred on the training images the kNN searches)."""
    import torch

    import seedzoo
    from seedzoo.evaluation.datasets import build_dataset
    from seedzoo.evaluation.pixels import RawPixels
    from seedzoo.evaluation.transforms import preprocessing_for
    from seedzoo.experiments.fmnist import PIXEL_LABELS
    from seedzoo.zoo.measured import read_record

    student = next(e for e in entries if e.role == "student")

    def random_init() -> Any:
        torch.manual_seed(0)
        return seedzoo.create_model(student.architecture, num_classes=0)

    def centred() -> Any:
        bank = build_dataset("fashion_mnist", "train", data, preprocessing_for(student.name).eval_transform(), limit)
        return RawPixels.centred_on(bank)

    record = read_record()
    plain_label, centred_label = PIXEL_LABELS.values()
    return [*(_Subject(e.name, e.role, e.name, partial(seedzoo.create_model, e.name, pretrained=True, num_classes=0),
                       e.metrics, shipped=True) for e in entries),
            _Subject("random init (reference)", "reference", student.name, random_init),
            _Subject("raw pixels (reference)", "reference", student.name, RawPixels, record.reference(plain_label)),
            _Subject("raw pixels, centred (reference)", "reference", student.name, centred,
                     record.reference(centred_label))]


def _card(metrics: tuple[Any, ...], metric: str, protocol: str) -> float | None:
    """The recorded Fashion-MNIST number for (metric, protocol), if there is one."""
    for m in metrics:
        if m.metric == metric and m.protocol == protocol and m.dataset == "Fashion-MNIST":
            return m.value
    return None


def _reproduce(args: argparse.Namespace) -> int:
    from seedzoo.experiments import fmnist
    from seedzoo.experiments.fmnist.run import QUICK, StageError, check_stages, run_seeds
    from seedzoo.training.config import load_config

    experiments = [w for w in args.words if "=" not in w]
    overrides = [w for w in args.words if "=" in w]
    if experiments != ["fmnist"]:
        raise StageError(f"name one experiment, fmnist (got {', '.join(experiments) or 'none'}); anything else "
                         "on the line must be a key=value override")
    if args.release and args.quick:
        raise StageError("--release ships the recorded numbers, which --quick does not measure: leave it out to "
                         "release")
    out = args.out or Path("runs/fmnist-quick" if args.quick else "runs/fmnist")
    limit = QUICK.limit if args.quick else None
    overrides = [*QUICK.overrides(), *overrides] if args.quick else overrides  # the user's overrides win
    # Before anything runs: a misspelt stage, or an override no recipe takes.
    check_stages(args.stages, out)
    load_config(fmnist.STUDENT, overrides)
    release_to = fmnist.PACKAGE if args.release else None
    if args.seeds is not None:
        by_seed = run_seeds(out, args.seeds, args.stages, overrides, limit, release_to, progress=True)
        done = all(by_seed.values())
        if done:
            print((out / "results_seeds.md").read_text())
            print(f"results: {out / 'results_seeds.json'} (each seed: {out / 'seed_<i>'})")
    else:
        done = bool(fmnist.run_all(out, args.stages, overrides, limit, release_to=release_to, progress=True))
        if done:
            print((out / "results.md").read_text())
            print(f"results: {out / 'results.json'}; curves: {out / 'curves.png'}")
    if args.release and not done:
        print("--release needs the evaluate stage: nothing was released", file=sys.stderr)
    if done and args.release:
        print(f"released into the package: {fmnist.PACKAGE.weights_dir}, {fmnist.PACKAGE.record}")
    if done and args.readme:
        fmnist.update_readme(args.readme, out)
        print(f"updated {args.readme} and its plot")
    _sweep_readme(args.readme, out)
    return 0


def _sweep_readme(readme: Path | None, out: Path) -> None:
    """The README's curves and strategies sections, from what OUT (or its seed folders) measured."""
    from seedzoo.experiments.fmnist import curves, strategies

    if readme is None:
        return
    measured = [sweep for name, sweep in (("tau_queue.md", curves), ("strategies.md", strategies))
                if (out / name).is_file()]
    for sweep in measured:
        sweep.update_readme(readme, out)
        print(f"updated {readme}: the {sweep.KEY} section")
