"""`seedzoo train` end to end on the Fashion-MNIST SEED recipe, against its best parts and the authors'.

Runs the real command (`seedzoo train seed_mbv3_large.fmnist_mocov2_r18`: the shipped teacher, the data
loader with its augmentation, checkpoints off the clock) for `--steps` steps into a temporary folder and
reads images/s and data-wait from the run's own metrics.jsonl (medians, first steps dropped). Before
and after it, on the same networks and batch, it times the best parts (teacher forward + student
update, at the trainer's device plan) and the authors' SEED module, and prints
  end-to-end / best parts   (target >= 0.8)
  end-to-end / authors      (target >= 2)
  data-wait                 (the share of each step spent waiting for the loader), and the data
                            pipeline's own images/s (loader alone, same workers)

    python benchmarks/train_end_to_end.py [--steps 30] [--workers N] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _parts import (
    SETTINGS,
    SeedStep,
    authors_step,
    best_teacher,
    interleaved,
    setting_config,
    student_update,
    threads_line,
)
from _parts import quick as quick_setting

from seedzoo.training.config import load_config

RECIPE = "seed_mbv3_large.fmnist_mocov2_r18"


def run_training(steps: int, overrides: list[str], out: Path, threads: int) -> list[dict]:
    cmd = [sys.executable, "-m", "seedzoo", "train", RECIPE, f"max_steps={steps}", "monitor.knn_every=0",
           "export=false", "save_every=1000000", "log_every=1000000", *overrides, "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"seedzoo train failed:\n{proc.stderr[-3000:]}")
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]


def loader_rate(batch: int, workers: int, batches: int, subset: int = 0) -> float:
    """images/s of the recipe's data pipeline alone (sampler, augmentation, collation, `workers` processes)."""
    from torch.utils.data import DataLoader

    from seedzoo.data.datasets import KeyedViewDataset, build_source
    from seedzoo.data.sampler import GlobalBatchSampler
    from seedzoo.training.methods import get_method
    from seedzoo.training.views import ViewSet

    cfg = load_config(RECIPE)
    views = ViewSet(get_method("seed").views(cfg))
    dataset = KeyedViewDataset(build_source("fashion_mnist", subset=subset), views, seed=cfg.seed)
    loader = DataLoader(dataset, batch_sampler=GlobalBatchSampler(len(dataset), batch), num_workers=workers)
    it = iter(loader)
    next(it)  # workers started
    start = time.perf_counter()
    n = sum(len(next(it)["image"]) for _ in range(batches))
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--workers", type=int, default=None, help="loader processes (default: the recipe's)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="batch 8, 6 steps on 256 images: checks the script runs")
    args = parser.parse_args()
    from seedzoo.data import fashion_mnist

    if not fashion_mnist.available():
        raise SystemExit("Fashion-MNIST is not installed (make data)")
    s = SETTINGS["fmnist"]
    if args.workers is None:
        args.workers = load_config(RECIPE).data.workers
    overrides = [f"data.workers={args.workers}"]
    if args.quick:
        s = quick_setting(s)
        args.steps, args.repeats = 6, 1
        overrides += [f"global_batch={s.batch}", "data.subset=256"]
    cfg = setting_config(s, "teacher.pretrained=zoo", "teacher.entry=mocov2_r18.fmnist")
    step = SeedStep(cfg)
    x = torch.randn(s.batch, 3, s.size, s.size)
    teacher = best_teacher(step.teacher.network, step.plan.teacher)
    student = student_update(step, teacher(x))
    authors = authors_step(s, step.teacher.network)
    parts = {"teacher": lambda: teacher(x), "student": lambda: student(x), "authors": lambda: authors(x)}

    before = interleaved(parts, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        records = run_training(args.steps, overrides, Path(tmp) / "run", torch.get_num_threads())
    after = interleaved(parts, args.repeats)
    loader = loader_rate(s.batch, args.workers, 4 if args.quick else 20, 256 if args.quick else 0)

    kept = records[min(3, len(records) - 1):]  # the first steps pay for start-up
    e2e = statistics.median(r["images_per_s"] for r in kept)
    wait = statistics.median(r["data_wait"] for r in kept)
    sec = {k: statistics.median([before[k].seconds, after[k].seconds]) for k in parts}
    best = s.batch / (sec["teacher"] + sec["student"])
    print(f"{RECIPE}: {s.student} <- {s.teacher}, {s.size} px, batch {s.batch}, {args.workers} loader workers; "
          f"{threads_line()}")
    print(f"  seedzoo train, end to end   {e2e:8.1f} images/s  "
          f"(median of {len(kept)} steps; data-wait {100 * wait:.0f}%)")
    print(f"  best parts (teacher+student){best:8.1f} images/s  (before/after the run: "
          f"{s.batch / (before['teacher'].seconds + before['student'].seconds):.1f} / "
          f"{s.batch / (after['teacher'].seconds + after['student'].seconds):.1f})")
    print(f"  authors' SEED module        {s.batch / sec['authors']:8.1f} images/s")
    print(f"  data pipeline alone         {loader:8.1f} images/s  ({args.workers} workers)")
    print(f"  end-to-end / best parts = {e2e / best:.3f}")
    print(f"  end-to-end / authors    = {e2e * sec['authors'] / s.batch:.2f}x")


if __name__ == "__main__":
    main()
