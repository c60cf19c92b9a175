"""What running the frozen teacher in bf16 autocast does to its embeddings and to SEED's target.

The shipped Fashion-MNIST teacher (`mocov2_r18.fmnist`, ResNet-18, 32 px) embeds augmented training
views twice: in fp32 and in bf16 autocast (embeddings cast to fp32 after, as the trainer does). It
prints, against the fp32 embeddings:
  - the cosine of each bf16 embedding to its fp32 one (mean, min);
  - SEED's target p = softmax([t.t, t.Q] / tau_T) of a batch against a queue Q of the other images'
    embeddings (each side in its own precision), at tau_T = 1e-4 (official) and 0.01 (the recipe):
    the mean total-variation distance 0.5 * sum |p_bf16 - p_fp32|, and how often the most likely
    column agrees;
  - the same figures for fp32 channels_last against fp32 NCHW: the rounding floor of fp32 itself.
Not a timing: the figures depend on the weights and data only (the CPU's bf16 kernels aside).

    python benchmarks/teacher_precision.py [--quick] [--images 4096] [--batch 256]
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from seedzoo.data import fashion_mnist
from seedzoo.data.augment import sample_generator, view_augment
from seedzoo.data.datasets import FashionMNISTSource
from seedzoo.training.config import load_config
from seedzoo.training.device_plan import NetworkPlan
from seedzoo.training.networks import build_teacher

RECIPE = "seed_mbv3_large.fmnist_mocov2_r18"


@torch.no_grad()
def embed(teacher, views: torch.Tensor, plan: NetworkPlan, batch: int) -> torch.Tensor:
    model = plan.prepare(teacher)
    out = []
    for chunk in views.split(batch):
        with plan.autocast("cpu"):
            out.append(model(plan.input(chunk)).float())
    teacher.to(memory_format=torch.contiguous_format)
    return F.normalize(torch.cat(out), dim=1)


def seed_target(t: torch.Tensor, queue: torch.Tensor, temperature: float) -> torch.Tensor:
    logits = torch.cat([(t * t).sum(1, keepdim=True), t @ queue.T], dim=1)
    return F.softmax(logits / temperature, dim=1)


def compare(ref: torch.Tensor, other: torch.Tensor, batch: int) -> dict[str, float]:
    """`ref`, `other`: the same images' unit embeddings; the first `batch` rows are the batch, the rest
    the queue."""
    cos = (ref * other).sum(1)
    out = {"cos_mean": float(cos.mean()), "cos_min": float(cos.min())}
    for tau in (1e-4, 0.01):
        p = seed_target(ref[:batch], ref[batch:], tau)
        q = seed_target(other[:batch], other[batch:], tau)
        out[f"tv@{tau:g}"] = float(0.5 * (p - q).abs().sum(1).mean())
        out[f"argmax@{tau:g}"] = float((p.argmax(1) == q.argmax(1)).float().mean())
        # The target's weight off the image's own column: what tau_T leaves for the neighbours.
        out[f"off_self@{tau:g}"] = float(1 - p[:, 0].mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4096, help="batch + queue (recipe queue: 16384)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="1024 images")
    args = parser.parse_args()
    if args.quick:
        args.images = 1024
    if not fashion_mnist.available():
        raise SystemExit("Fashion-MNIST is not installed (make data)")
    cfg = load_config(RECIPE)
    t, d = cfg.teacher, cfg.data
    teacher = build_teacher(t.arch, t.pretrained, t.head_hidden, t.head_batch_norm, t.embed_dim, t.entry).eval()
    source = FashionMNISTSource("train")
    view = view_augment(d.augmentation, d.image_size, d.mean, d.std, blur_sigma=d.blur_sigma)
    views = torch.stack([view(source.load(i)[0], sample_generator(cfg.seed, 0, i)) for i in range(args.images)])

    fp32 = embed(teacher, views, NetworkPlan("fp32", channels_last=False), args.batch)
    rows = {
        "bf16 autocast, channels_last": embed(teacher, views, NetworkPlan("bf16", channels_last=True), args.batch),
        "bf16 autocast, NCHW": embed(teacher, views, NetworkPlan("bf16", channels_last=False), args.batch),
        "fp32 channels_last (floor)": embed(teacher, views, NetworkPlan("fp32", channels_last=True), args.batch),
    }
    print(f"teacher {t.entry} ({t.arch}), {d.image_size} px {d.augmentation} views of Fashion-MNIST, "
          f"batch {args.batch} against a queue of {args.images - args.batch}; reference: fp32 NCHW")
    keys = ["cos_mean", "cos_min", "tv@0.0001", "argmax@0.0001", "tv@0.01", "argmax@0.01"]
    print(f"{'':30s}" + "".join(f"{k:>14s}" for k in keys))
    for name, emb in rows.items():
        r = compare(fp32, emb, args.batch)
        print(f"{name:30s}" + "".join(f"{r[k]:14.6f}" for k in keys))
    ref = compare(fp32, fp32, args.batch)
    print(f"fp32 target's weight off the image's own column: {ref['off_self@0.0001']:.6f} at tau_T 1e-4, "
          f"{ref['off_self@0.01']:.6f} at 0.01")


if __name__ == "__main__":
    main()
