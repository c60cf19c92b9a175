"""`seedzoo eval`: run an evaluation protocol on one model or several, print a table, optionally write JSON."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import SeedzooError
from .device import checked_device
from .lazy import LazyChoices
from .output import add_json_option, human, write_json


class EvalArgumentError(SeedzooError, ValueError):
    """Options of `seedzoo eval` that do not go together."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate one model or compare several under a pinned protocol",
                              description="Evaluate models. Every number is printed and saved with the "
                                          "protocol and settings that produced it, and with the sha256 of the "
                                          "weights measured. Several models give one table, one row each.")
    p.add_argument("names", nargs="+", metavar="MODEL",
                   help="zoo entry or alias (e.g. seed_r18), a timm model name, or an exported model folder; "
                        "several compare them under the same protocol")
    weights = p.add_mutually_exclusive_group()
    weights.add_argument("--pretrained", metavar="PATH",
                         help="weights file or folder for the one MODEL (default: its own weights)")
    weights.add_argument("--random-init", action="store_true", help="random weights (a baseline, or a smoke test)")
    # appended so that a second --protocol is refused by `_check` rather than silently replacing the first
    p.add_argument("--protocol", action="append", metavar="NAME[:key=value,...]",
                   choices=LazyChoices("seedzoo.evaluation.runner", "PROTOCOLS", key=lambda v: v.split(":")[0]),
                   help="one of %(choices)s, optionally with pinned settings as NAME:key=value,... (default: "
                        "knn); one per call")
    p.add_argument("--save", type=Path, metavar="DIR",
                   help="with --protocol finetune: write the fine-tuned model, classifier included, as a seedzoo "
                        "model folder (loads with create_model(DIR, pretrained=True, num_classes=N) and timm's "
                        "local-dir:DIR)")
    p.add_argument("--dataset", default="fashion_mnist", metavar="NAME",
                   choices=LazyChoices("seedzoo.evaluation.datasets", "DATASET_NAMES"),
                   help="one of %(choices)s (default: fashion_mnist)")
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
    add_json_option(p, "the result (several models: {'results': [...]})")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> str:
    """Refuse option combinations before any model is built; returns the one protocol asked for."""
    protocols = args.protocol or ["knn"]
    if len(protocols) > 1:
        raise EvalArgumentError(f"--protocol given {len(protocols)} times ({', '.join(protocols)}): one call "
                                "measures one protocol, so run seedzoo eval once per protocol")
    protocol = protocols[0]
    several = len(args.names) > 1
    if several and args.pretrained:
        raise EvalArgumentError("--pretrained names the weights of one MODEL, and several were given: pass each "
                                "file or folder as a MODEL of its own")
    if args.save is not None:
        if protocol.partition(":")[0] != "finetune":
            raise EvalArgumentError(f"--save keeps a fine-tuned model, and --protocol {protocol} trains none: "
                                    "use --protocol finetune, or leave --save out")
        if several:
            raise EvalArgumentError("--save writes one fine-tuned model: evaluate one MODEL with it")
        if args.save.is_file() or (args.save.is_dir() and any(args.save.iterdir())):
            raise EvalArgumentError(f"--save {args.save}: already exists and is not an empty folder; choose a new "
                                    "folder")
    return protocol


def run(args: argparse.Namespace) -> int:
    from ..evaluation.results import comparison_table
    from ..evaluation.runner import run_evaluation

    protocol = _check(args)
    device = checked_device(args.device)
    pretrained = False if args.random_init else (args.pretrained or True)
    results = [run_evaluation(name, protocol, args.dataset, args.data, pretrained,
                              input_size=args.input_size, limit=args.limit, batch_size=args.batch_size,
                              epochs=args.epochs, fraction=args.fraction, seed=args.seed, device=device,
                              cache_dir=args.cache_dir, num_workers=args.workers, progress=not args.quiet,
                              save=args.save)
               for name in args.names]
    out = human(args)
    print(results[0].table() if len(results) == 1 else comparison_table(results), file=out)
    if args.save is not None:
        print(f"saved the fine-tuned model to {args.save}", file=out)
    if args.json:
        payload = results[0].to_dict() if len(results) == 1 else {"results": [r.to_dict() for r in results]}
        path = write_json(payload, args.json)
        if path is not None:
            print(f"wrote {path}", file=out)
    return 0
