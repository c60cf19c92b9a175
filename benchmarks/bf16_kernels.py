"""Whether the CPU's bf16 units change the teacher's embeddings: the same views embedded under oneDNN's
kernel sets, each capped with `ONEDNN_MAX_CPU_ISA` in its own process.

Seed 0 of the strategies trained different distilled students on an AMD EPYC (AVX512-BF16) and on an
Intel Xeon (AMX), while MoCo-v2 alone, which has no teacher, trained the same to the last digit. On a CPU
with AMX, capping oneDNN at AVX512_CORE_BF16 runs the kernels an AVX512-BF16 CPU runs; AVX512_CORE has no
bf16 instructions (bf16 through fp32). For each cap it prints whether the fp32 embeddings (the students'
precision) are bitwise those of the uncapped process, and how the bf16 ones (the teacher's plan on such
CPUs: bf16 autocast, channels_last) compare with the uncapped bf16 ones: cosine per image, and SEED's
target at the recipe's tau_T (`teacher_precision.compare`). Not a timing.

    python benchmarks/bf16_kernels.py [--quick] [--images 1024] [--batch 256]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from teacher_precision import RECIPE, compare, embed

from seedzoo.data import fashion_mnist
from seedzoo.data.augment import sample_generator, view_augment
from seedzoo.data.datasets import FashionMNISTSource
from seedzoo.training.config import load_config
from seedzoo.training.device_plan import NetworkPlan, machine
from seedzoo.training.networks import build_teacher

CAPS = ("", "AVX512_CORE_BF16", "AVX512_CORE")  # "": no cap (the CPU's best)
PLANS = {"fp32": NetworkPlan("fp32", channels_last=True), "bf16": NetworkPlan("bf16", channels_last=True)}


def embed_views(images: int, batch: int, out: Path) -> None:
    """This process's embeddings of the first `images` training views, in each plan, saved to `out`."""
    cfg = load_config(RECIPE)
    t, d = cfg.teacher, cfg.data
    teacher = build_teacher(t.arch, t.pretrained, t.head_hidden, t.head_batch_norm, t.embed_dim, t.entry).eval()
    source = FashionMNISTSource("train")
    view = view_augment(d.augmentation, d.image_size, d.mean, d.std, blur_sigma=d.blur_sigma)
    views = torch.stack([view(source.load(i)[0], sample_generator(cfg.seed, 0, i)) for i in range(images)])
    torch.save({name: embed(teacher, views, plan, batch) for name, plan in PLANS.items()}, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1024, help="batch + queue")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="256 views, batch 64")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.images, args.batch = 256, 64
    if args.child is not None:
        embed_views(args.images, args.batch, args.child)
        return
    if not fashion_mnist.available():
        raise SystemExit("Fashion-MNIST is not installed (make data)")
    print(f"machine: {machine(torch.device('cpu'))}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cap in CAPS:
            out = Path(tmp) / f"{cap or 'none'}.pt"
            env = {**os.environ, **({"ONEDNN_MAX_CPU_ISA": cap} if cap else {})}
            subprocess.run([sys.executable, __file__, "--child", str(out), "--images", str(args.images),
                            "--batch", str(args.batch)], env=env, check=True)
            results[cap] = torch.load(out, weights_only=True)  # written by the child just now
    ref = results[""]
    keys = ["cos_mean", "cos_min", "tv@0.01", "argmax@0.01"]
    print(f"{args.images} views, batch {args.batch} against a queue of {args.images - args.batch}; "
          "reference: this CPU without a cap")
    print(f"{'ONEDNN_MAX_CPU_ISA':20s}{'fp32 bitwise':>14s}{'bf16 bitwise':>14s}" + "".join(f"{k:>14s}" for k in keys))
    for cap, emb in results.items():
        r = compare(ref["bf16"], emb["bf16"], args.batch)
        print(f"{cap or '(none)':20s}{str(torch.equal(ref['fp32'], emb['fp32'])):>14s}"
              f"{str(torch.equal(ref['bf16'], emb['bf16'])):>14s}" + "".join(f"{r[k]:14.6f}" for k in keys))


if __name__ == "__main__":
    main()
