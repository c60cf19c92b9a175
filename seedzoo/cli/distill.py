"""`seedzoo distill DATA --teacher T --student S --out DIR`: a student distilled on your own images."""
from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from ..data.sources import sources_help

DATA_HELP = """\
DATA is a folder of class folders (image_folder), any other folder of images (unlabeled_folder), a text
file listing images (file_list), or fashion_mnist; the source is chosen from what DATA holds.

The recipe is the zoo's for this teacher and student (else the closest one), with the teacher's input
size and normalisation, scaled to the number of images: batch (at most 1/8 of them), epochs (as many
images seen as the recipe, 200 epochs at most), warm-up, a queue no larger than the run fills, the
monitor. Every choice is printed and kept in DIR/choices.json and DIR/config.yaml; key=value settings
win over it. The export's batch-norm statistics are recomputed over training images when the run was
too short for them to settle, and its features are checked against the architecture at random init.

"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "distill", help="distil a teacher into a student on your own images, in one call",
        description="Distil a teacher into a fresh student (SEED) on a folder of images, a file list or a\n"
                    "registered data set, with the zoo recipe of that teacher and student scaled to the data.",
        epilog=DATA_HELP + textwrap.fill(sources_help(), 100), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", metavar="DATA", help="a folder (class folders or not), a file list, or fashion_mnist")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="settings that win over the scaled recipe (e.g. epochs=50 device=cpu)")
    p.add_argument("--teacher", required=True,
                   help="a zoo teacher (e.g. mocov2_r50.in1k_200ep), a model folder or file, an hf-hub:ORG/NAME "
                        "id, or a timm architecture with --teacher-weights")
    p.add_argument("--teacher-weights", metavar="FILE",
                   help="the weights of a timm-architecture teacher (a timm or torchvision state dict or "
                        "safetensors); its pooled features are the targets")
    p.add_argument("--student", required=True, help="a zoo name or timm architecture, trained from random init")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--resume", help="'auto' or a checkpoint path (as seedzoo train)")
    p.add_argument("--overwrite", action="store_true", help="start over in a run folder that holds a run")
    p.add_argument("--dry-run", action="store_true", help="print the choices and the config, train nothing")
    p.set_defaults(func=_distill, positionals_after_options="overrides")


def _distill(args: argparse.Namespace) -> int:
    from ..training.config import ConfigError, dump_yaml
    from ..training.distill import plan_distillation
    from .train import _refuse, _summary

    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        return _refuse(args, f"{bad[0]!r} is not key=value: give one DATA, then settings such as epochs=50")
    try:
        plan = plan_distillation(args.data, args.teacher, args.student, teacher_weights=args.teacher_weights,
                                 overrides=args.overrides)
    except ConfigError as err:
        return _refuse(args, err)
    print(f"distilling {args.teacher} into {args.student} on {plan.images:,} images:")
    for line in plan.describe():
        print(f"  {line}")
    if args.dry_run:
        print(dump_yaml(plan.config), end="")
        return 0
    from ..training.engine import NonFiniteLossError, train

    try:
        result = train(plan.config, args.out, resume=args.resume, overwrite=args.overwrite, choices=plan.record(),
                       command=" ".join(["seedzoo", "distill", *sys.argv[2:]]))
    except ConfigError as err:
        return _refuse(args, err)
    except NonFiniteLossError as err:
        return _refuse(args, err, status=3)
    print(_summary(result, [plan.config]))
    return 0
