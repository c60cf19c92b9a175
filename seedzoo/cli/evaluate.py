"""`seedzoo eval`: run an evaluation protocol on a model, print a table, optionally write JSON."""
from __future__ import annotations

import argparse

from ..evaluation.datasets import DATASET_NAMES
from ..evaluation.runner import PROTOCOLS
from .device import checked_device
from .output import add_json_option, human, write_json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate a model with a pinned protocol (kNN, linear, ...)",
                              description="Evaluate a model. Every number is printed and saved with the "
                                          "protocol and settings that produced it.")
    p.add_argument("name", help="zoo entry or alias (e.g. seed_r18), a timm model name, or an exported model folder")
    weights = p.add_mutually_exclusive_group()
    weights.add_argument("--pretrained", metavar="PATH", help="weights file or folder (default: the entry's own)")
    weights.add_argument("--random-init", action="store_true", help="random weights (a baseline, or a smoke test)")
    p.add_argument("--protocol", default="knn", help=f"one of {', '.join(PROTOCOLS)}, optionally pinned "
                                                     "settings as NAME:key=value,... (default: knn)")
    p.add_argument("--dataset", default="fashion_mnist", choices=DATASET_NAMES)
    p.add_argument("--data", metavar="ROOT", help="dataset root (Fashion-MNIST defaults to Debian's files)")
    p.add_argument("--limit", type=int, metavar="N", help="use only the first N images of each split")
    p.add_argument("--input-size", type=int, metavar="S", help="input resolution (default: the model's own)")
    p.add_argument("--batch-size", type=int, metavar="B")
    p.add_argument("--epochs", type=int, metavar="E", help="training epochs (linear, finetune, semi)")
    p.add_argument("--fraction", type=float, default=0.01, help="label fraction for --protocol semi")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--workers", type=int, default=0, help="data loader workers")
    p.add_argument("--cache-dir", metavar="DIR", help="cache features here (knn, linear_fast)")
    add_json_option(p, "the result")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.runner import run_evaluation

    pretrained = False if args.random_init else (args.pretrained or True)
    result = run_evaluation(args.name, args.protocol, args.dataset, args.data, pretrained,
                            input_size=args.input_size, limit=args.limit, batch_size=args.batch_size,
                            epochs=args.epochs, fraction=args.fraction, seed=args.seed,
                            device=checked_device(args.device), cache_dir=args.cache_dir,
                            num_workers=args.workers, progress=not args.quiet)
    out = human(args)
    print(result.table(), file=out)
    if args.json:
        path = write_json(result.to_dict(), args.json)
        if path is not None:
            print(f"wrote {path}", file=out)
    return 0
