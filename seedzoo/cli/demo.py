"""`seedzoo demo` (the README's main job) and `seedzoo reproduce fmnist`."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="load the shipped Fashion-MNIST entries offline and measure them against the references",
        description="Loads every entry whose weights ship inside seedzoo (sha256-verified, no network), "
                    "measures kNN and linear top-1 on Fashion-MNIST next to the random-init reference, and "
                    "prints them beside the numbers of the entries' cards.")
    p.add_argument("--limit", type=int, default=10000,
                   help="images per split for the live check (default 10000; 0 = the cards' full protocol)")
    p.add_argument("--data", metavar="ROOT", help="Fashion-MNIST folder (default: Debian's files)")
    p.set_defaults(func=_demo)

    r = subparsers.add_parser(
        "reproduce", help="train and evaluate a whole experiment (resumable)",
        description="fmnist: SEED vs MoCo-v2 alone on Fashion-MNIST, with a teacher, two ablations and two "
                    "references, on one CPU. Interrupted runs continue where they stopped.")
    r.add_argument("experiment", choices=["fmnist"])
    r.add_argument("--out", type=Path, default=Path("runs/fmnist"))
    r.add_argument("--stage", action="append", dest="stages",
                   help="only these stages (teacher, seed, mocov2, seed_tt1e-4, seed_q4096, supervised, evaluate)")
    r.add_argument("--release", action="store_true",
                   help="also write the shipped entries' weights and their measured record into the package "
                        "source (seedzoo/weights/embedded, seedzoo/zoo/measured_fmnist.json); off by default")
    r.add_argument("--readme", type=Path, metavar="README",
                   help="also write the results section of this README (and its plot, docs/fmnist_curves.png)")
    r.add_argument("overrides", nargs="*", metavar="key=value", help="applied to every training run")
    r.set_defaults(func=_reproduce)


def _demo(args: argparse.Namespace) -> int:
    import torch

    import seedzoo
    from seedzoo.evaluation.runner import run_evaluation
    from seedzoo.zoo import list_entries

    entries = [e for e in list_entries() if e.weights.embedded]
    if not entries:
        print("no entry ships its weights in this installation: run `seedzoo reproduce fmnist` first",
              file=sys.stderr)
        return 1
    student = next(e for e in entries if e.role == "student")
    limit = args.limit or None
    rows = []
    for entry in [*entries, None]:
        start = time.perf_counter()
        if entry is None:  # the random-init reference, built like the students
            torch.manual_seed(0)
            name, label = student.name, "random init (reference)"
            model = seedzoo.create_model(student.architecture, num_classes=0)
        else:
            name, label = entry.name, entry.name
            model = seedzoo.create_model(name, pretrained=True, num_classes=0)
            print(f"loaded {name}: {model.seedzoo_weights.path.name}, sha256 {model.seedzoo_weights.sha256[:12]}… "
                  "verified", flush=True)
        knn = run_evaluation(name, "knn", "fashion_mnist", args.data, model=model, limit=limit, progress=False)
        lin = run_evaluation(name, "linear_fast", "fashion_mnist", args.data, model=model, limit=limit,
                             progress=False)
        rows.append((label, entry.role if entry else "reference", knn.metrics["knn20_top1"],
                     knn.metrics["knn200_top1"], lin.metrics["top1"], _card(entry, "knn20_top1", "knn"),
                     _card(entry, "top1", "linear_fast"), time.perf_counter() - start))
    what = f"first {limit} images of each split" if limit else "the full splits (the cards' protocol)"
    print(f"\nFashion-MNIST, {what}; features at 32 px; linear = a probe on cached, standardised features (linear_fast)\n")
    header = ("network", "role", "kNN-20", "kNN-200", "linear", "card kNN-20", "card linear", "s")
    widths = [max(len(header[0]), *(len(r[0]) for r in rows)), 9, 7, 8, 7, 12, 12, 5]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for r in rows:
        cells = [r[0], r[1], *(f"{v:.2f}" if v is not None else "-" for v in r[2:7]), f"{r[7]:.0f}"]
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)))
    print("\nThe cards' numbers use all 60,000 training images (`seedzoo verify NAME --data ROOT` re-measures them).")
    return 0


def _card(entry, metric: str, protocol: str) -> float | None:
    """The entry's measured Fashion-MNIST number for (metric, protocol), if its card has one."""
    for m in entry.metrics if entry is not None else ():
        if m.metric == metric and m.protocol == protocol and m.dataset == "Fashion-MNIST":
            return m.value
    return None


def _reproduce(args: argparse.Namespace) -> int:
    from seedzoo.experiments import fmnist

    rows = fmnist.run_all(args.out, args.stages, args.overrides, release_to=fmnist.PACKAGE if args.release else None,
                          progress=True)
    if args.release and not rows:
        print("--release needs the evaluate stage: nothing was released", file=sys.stderr)
    if rows:
        print((args.out / "results.md").read_text())
        print(f"results: {args.out / 'results.json'}; curves: {args.out / 'curves.png'}")
        if args.release:
            print(f"released into the package: {fmnist.PACKAGE.weights_dir}, {fmnist.PACKAGE.record}")
        if args.readme:
            fmnist.update_readme(args.readme, args.out)
            print(f"updated {args.readme} and its plot")
    return 0
