"""`seedzoo train` (SEED distillation, MoCo-v2 pre-training) and `seedzoo plot`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="distil a student (SEED) or pre-train a teacher (MoCo-v2)",
        description="Train from a zoo entry's recipe, a preset or a YAML file, with key=value overrides. "
                    "Several processes: torchrun --nproc-per-node=N -m seedzoo train ...")
    p.add_argument("recipe", nargs="?", help="zoo entry (e.g. seed_r18.mocov2_r50_200ep) or a recipe YAML")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. optim.base_lr=0.06 data.path=/data")
    p.add_argument("--preset", help="a shipped preset instead of RECIPE (e.g. smoke)")
    p.add_argument("--out", type=Path, help="run folder (default runs/<name>)")
    p.add_argument("--resume", help="'auto' (newest checkpoint of the run folder) or a checkpoint path")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=_train)

    q = subparsers.add_parser("plot", help="draw loss, lr and kNN curves of a run to a PNG")
    q.add_argument("run_dir", type=Path)
    q.add_argument("--out", type=Path, help="PNG path (default RUN_DIR/metrics.png)")
    q.set_defaults(func=_plot)


def _train(args: argparse.Namespace) -> int:
    from ..training.config import ConfigError, dump_yaml, load_config

    if args.preset and args.recipe:
        if "=" not in args.recipe:
            print("error: give either RECIPE or --preset, not both", file=sys.stderr)
            return 2
        args.overrides.insert(0, args.recipe)  # with --preset, the first positional is an override
    source = args.preset or args.recipe
    if not source:
        print("error: name a zoo entry, a recipe YAML, or --preset smoke", file=sys.stderr)
        return 2
    try:
        cfg = load_config(source, args.overrides)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.print_config:
        print(dump_yaml(cfg), end="")
        return 0
    from ..training.engine import NonFiniteLossError, train

    run_dir = args.out or Path("runs") / (cfg.name or Path(str(source)).stem).replace("/", "_")
    try:
        result = train(cfg, run_dir, resume=args.resume, command=" ".join(["seedzoo", "train", *sys.argv[2:]]))
    except NonFiniteLossError as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    if result.export_dir is not None:
        steps = f"{result.step} step{'s' if result.step != 1 else ''}"
        print(f"done: {steps}, loss {result.loss:.4f}; weights in {result.export_dir} "
              f"(seedzoo.create_model('{cfg.student.arch}', pretrained='{result.export_dir}'))")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from ..training.plot import plot_run

    print(plot_run(args.run_dir, args.out))
    return 0
