"""Per-image cost of the small-input (`_lowres`) variants against the ImageNet stem, at 32 px.

For each architecture pair it times, interleaved in each repeat on the same batch, a training step
(forward, backward and SGD update in train mode) and an inference forward (eval, no_grad), and prints
milliseconds per image (medians) and the lowres / ImageNet ratio. CPU, fp32; `--bf16`: bf16 autocast and
channels_last, as a recipe with `precision: bf16` trains on a CPU with native bf16.

    python benchmarks/lowres_cost.py [--repeats 5] [--batch 32] [--size 32] [--threads 1] [--bf16]
"""
from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import timm
import torch

import seedzoo  # noqa: F401  (registers the architectures)

PAIRS = ("seed_resnet18", "seed_resnet50", "seed_mobilenetv3_large", "seed_efficientnet_b0")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _steps(arch: str, x: torch.Tensor, bf16: bool = False):
    model = timm.create_model(arch, num_classes=0)
    if bf16:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    autocast = partial(torch.autocast, "cpu", dtype=torch.bfloat16, enabled=bf16)

    def train() -> None:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = model(x).float().square().mean()
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def infer() -> None:
        model.eval()
        with autocast():
            model(x)

    return train, infer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast and channels_last (default: fp32, NCHW)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size)
    print(f"{args.size} px, batch {args.batch}, {args.threads} thread(s), {'bf16' if args.bf16 else 'fp32'}, "
          f"median of {args.repeats}; ms per image")
    print(f"{'architecture':<26} {'train':>8} {'lowres':>8} {'ratio':>6}   {'infer':>8} {'lowres':>8} {'ratio':>6}")
    for arch in PAIRS:
        imagenet, lowres = _steps(arch, x, args.bf16), _steps(f"{arch}_lowres", x, args.bf16)
        for fn in (*imagenet, *lowres):  # warm-up
            fn()
        times: list[list[float]] = [[], [], [], []]
        for _ in range(args.repeats):
            for i, fn in enumerate((*imagenet, *lowres)):
                times[i].append(_timed(fn))
        t_train, t_infer, l_train, l_infer = (1000 * statistics.median(t) / args.batch for t in times)
        print(f"{arch:<26} {t_train:8.2f} {l_train:8.2f} {l_train / t_train:5.1f}x   "
              f"{t_infer:8.2f} {l_infer:8.2f} {l_infer / t_infer:5.1f}x")


if __name__ == "__main__":
    main()
