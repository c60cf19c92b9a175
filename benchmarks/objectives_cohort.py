"""The strategies' cohort (every distillation objective and MoCo-v2 alone, one teacher pass and one set of
views per step) against the same students trained one by one.

Runs the trainer itself (`seedzoo.training.engine.train`, the students of `seedzoo reproduce fmnist
--stage strategies`: the Fashion-MNIST SEED recipe's student, the shipped teacher, the recipe's loader)
for `--steps` steps, in each repeat the cohort first and then each student alone, each into a fresh
temporary folder (checkpoints, exports and the kNN monitor off). A step's time is read from the run's
own metrics.jsonl (the median over the steps after the first, which pay for start-up; BINGO's
neighbours are computed before the first step, off the clock). Prints each student's solo step, the
cohort's step, and
  cohort / sum of solo steps   (what one shared teacher pass and one data stream save; below 1 is a saving)

    python benchmarks/objectives_cohort.py [--steps 12] [--repeats 2] [--methods seed,l2,...] [--quick]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch
from _parts import threads_line

from seedzoo.experiments.fmnist import cohorts, strategies
from seedzoo.training.config import TrainConfig
from seedzoo.training.engine import train

# Off the clock: no checkpoint, export or kNN monitor during the measured steps; every step logged.
QUIET = ["monitor.knn_every=0", "export=false", "save_every=1000000", "log_every=1"]


def step_seconds(cfgs: list[TrainConfig], batch: int) -> float:
    """The median seconds per step of `cfgs` trained together (one config: alone), after the first step."""
    with tempfile.TemporaryDirectory() as run_dir:
        train(cfgs, run_dir)
        records = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    rates = [r["images_per_s"] for r in records if "images_per_s" in r][1:]
    return batch / statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--methods", help="comma-separated distillation methods (default: every registered one)")
    parser.add_argument("--quick", action="store_true",
                        help="batch 16 (2 images per MoCo BN group), small queues, 3 steps, 1 repeat, one "
                             "thread: checks the script runs")
    args = parser.parse_args()
    steps, repeats, batch = (3, 1, 16) if args.quick else (args.steps, args.repeats, 256)
    sizes = ["distill.queue_size=256", "moco.queue_size=256", "compress.queue_size=256", "bingo.queue_size=256"]
    if args.quick:
        torch.set_num_threads(1)
    extra = [*QUIET, f"max_steps={steps}", f"global_batch={batch}", f"data.subset={steps * batch}",
             *(sizes if args.quick else [])]
    methods = args.methods.split(",") if args.methods else None
    with tempfile.TemporaryDirectory() as out:  # holds no teacher: the students distil the shipped one
        cfgs = cohorts.configs(strategies.students(methods), Path(out), extra)
    names = [c.name for c in cfgs]
    solo: dict[str, list[float]] = {n: [] for n in names}
    together = []
    for _ in range(repeats):  # interleaved: load from other processes hits the cohort and the solo runs alike
        together.append(step_seconds(cfgs, batch))
        for cfg in cfgs:
            solo[cfg.name].append(step_seconds([cfg], batch))
    alone = {n: statistics.median(v) for n, v in solo.items()}
    cohort, total = statistics.median(together), sum(alone.values())
    print(f"{len(cfgs)} students ({', '.join(c.method for c in cfgs)}), Fashion-MNIST recipe, batch {batch}, "
          f"{steps} steps x {repeats} repeats; {threads_line()}")
    for name, seconds in alone.items():
        print(f"  alone  {name:32s} {1000 * seconds:9.1f} ms/step")
    print(f"  cohort {'(all together)':32s} {1000 * cohort:9.1f} ms/step")
    print(f"  cohort / sum of solo steps = {cohort / total:.3f}")


if __name__ == "__main__":
    main()
