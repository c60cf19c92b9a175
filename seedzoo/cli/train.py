"""`seedzoo train` (SEED distillation, MoCo-v2 pre-training) and `seedzoo plot`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..data.sources import sources_help


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="distil a student (SEED) or pre-train a teacher (MoCo-v2)",
        description="Train from a zoo entry's recipe, a preset or a YAML file, with key=value overrides. "
                    "Several recipes of one data stream (seedzoo train A B ...) train together, whatever "
                    "their methods: one teacher pass per step for all students that distil it, each "
                    "exported to RUN/export/<name>/. "
                    "Several processes: torchrun --nproc-per-node=N -m seedzoo train ... "
                    "Your own images in one call, the recipe scaled to them: seedzoo distill.",
        epilog=sources_help())
    p.add_argument("recipes", nargs="*", metavar="RECIPE|key=value",
                   help="zoo entries (e.g. seed_r18.mocov2_r50_200ep) or recipe YAMLs, then key=value "
                        "overrides applied to each (e.g. optim.base_lr=0.06 data.path=/data)")
    p.add_argument("--preset", help="a shipped preset instead of RECIPE (e.g. smoke)")
    p.add_argument("--out", type=Path, help="run folder (default runs/<name>)")
    p.add_argument("--resume", help="'auto' (the newest valid checkpoint of the run folder; a fresh start if "
                                    "it has none) or a checkpoint path")
    p.add_argument("--overwrite", action="store_true",
                   help="start over in a run folder that holds a run (removes its checkpoints, metrics, export)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=_train, positionals_after_options="recipes",  # train A --out X key=val
                   interrupt_hint="the last checkpoint is intact: continue with the same command and --resume auto")

    q = subparsers.add_parser("plot", help="draw loss, lr and kNN curves of a run to a PNG")
    q.add_argument("run_dir", type=Path)
    q.add_argument("--out", type=Path, help="PNG path (default RUN_DIR/metrics.png)")
    q.set_defaults(func=_plot)


def _train(args: argparse.Namespace) -> int:
    from ..training.config import ConfigError, dump_yaml, load_config

    sources = [r for r in args.recipes if "=" not in r]
    overrides = [r for r in args.recipes if "=" in r]
    if args.preset and sources:
        return _refuse(args, "give either RECIPE or --preset, not both")
    sources = [args.preset] if args.preset else sources
    if not sources:
        return _refuse(args, "name a zoo entry, a recipe YAML, or --preset smoke")
    try:
        cfgs = [load_config(source, overrides) for source in sources]
        # students are told apart by name (their export folders): a recipe's file name if it has none
        cfgs = [c if c.name else load_config(src, [f"name={_stem(src)}", *overrides])
                for c, src in zip(cfgs, sources)]
        from ..training.cohort import check_cohort

        check_cohort(cfgs)
    except ConfigError as err:
        return _refuse(args, err)
    if args.print_config:
        print("---\n".join(dump_yaml(c) for c in cfgs), end="")
        return 0
    from ..training.engine import NonFiniteLossError, train

    run_dir = args.out or Path("runs") / "+".join(c.name for c in cfgs)
    try:
        result = train(cfgs, run_dir, resume=args.resume, overwrite=args.overwrite,
                       command=" ".join(["seedzoo", "train", *sys.argv[2:]]))
    except ConfigError as err:  # several problems: one line each (any other error: cli's one line)
        return _refuse(args, err)
    except NonFiniteLossError as err:
        return _refuse(args, err, status=3)
    print(_summary(result, cfgs))
    return 0


def _summary(result, cfgs) -> str:
    """The closing lines: steps and wall time (or that an export collapsed), then each student's loss, last
    kNN, feature spread and export."""
    from ..training.metrics import format_duration

    steps = f"{result.step} step{'s' if result.step != 1 else ''}"
    if result.already_finished:
        head = (f"nothing to do: {result.run_dir} finished at {steps} (to train further raise epochs or "
                "max_steps; to start over, --overwrite)")
    elif result.collapsed:  # never "done" for an export whose features are all alike
        head = (f"finished {steps} in {format_duration(result.wall_s)}, but the export of "
                f"{', '.join(n or 'the student' for n in result.collapsed)} is COLLAPSED: its features in eval "
                "mode barely tell images apart (run.json, health); train longer (epochs=N) or check the data")
    else:
        head = f"done: {steps} in {format_duration(result.wall_s)}"
    lines = [head]
    for cfg, name in zip(cfgs, result.losses):
        knn, folder = result.knn.get(name), result.exports.get(name)
        parts = [f"loss {result.losses[name]:.4f}"]
        if knn is not None:
            parts.append(f"kNN-{cfg.monitor.knn_k} top-1 {knn:.2f}%")
        if (health := result.health.get(name)) is not None:
            parts.append(f"feature spread {health['spread']:.3f} vs {health['random_init_spread']:.3f} at random init")
        if folder is not None:
            parts.append(f"weights in {folder} (seedzoo.create_model('{cfg.student.arch}', pretrained='{folder}'))")
        lines.append(f"  {name}: {', '.join(parts)}")
    return "\n".join(lines)


def _refuse(args: argparse.Namespace, err: Exception | str, status: int = 2) -> int:
    """A refusal as the `seedzoo` command prints one, but one line per problem (a config error lists
    them all); `--debug` shows the traceback instead."""
    if isinstance(err, Exception) and getattr(args, "debug", False):
        raise err
    for line in str(err).splitlines():
        print(f"seedzoo: error: {line}", file=sys.stderr)
    return status


def _stem(source: str) -> str:
    """A recipe's name for an unnamed config: the YAML file's stem, or the entry or preset name."""
    return Path(source).stem if source.endswith((".yaml", ".yml")) else source


def _plot(args: argparse.Namespace) -> int:
    from ..training.plot import plot_run

    print(plot_run(args.run_dir, args.out))
    return 0
