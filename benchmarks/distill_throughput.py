"""The trainer's SEED step against its best parts and against the authors' SEED module, side by side.

On the same networks and input, interleaved in each repeat (CPU; the trainer's device plan decides the
layouts and precisions, as in a run):
  step      seedzoo's step: teacher pass, student forward, loss, backward, SGD update, enqueue;
  teacher   the frozen teacher's forward alone, at the trainer's best (device plan);
  student   the student's forward-backward-update alone against fixed targets, at the trainer's best;
  authors   the authors' SEED module (benchmarks/_parts.py: AuthorsSEED) + soft cross-entropy +
            backward + SGD, NCHW fp32 as their script runs;
and prints step / (teacher + student) (target <= 1.1) and authors / step (the speed-up). `--compile`
adds the step with torch.compile of both networks (what decides `compile: auto`).

Settings: fmnist (MobileNetV3-Large from ResNet-18, 32 px, batch 256: the Fashion-MNIST SEED recipe),
imagenet64 (MobileNetV3-Large from ResNet-50, 64 px, batch 32).

    python benchmarks/distill_throughput.py [--setting fmnist|imagenet64|all] [--repeats 5] [--compile] [--quick]
"""
from __future__ import annotations

import argparse

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


def measure(name: str, repeats: int, quick: bool, compiled: bool) -> None:
    s = SETTINGS[name]
    if quick:
        s = quick_setting(s)
    step = SeedStep(setting_config(s))
    x = torch.randn(s.batch, 3, s.size, s.size)
    teacher = best_teacher(step.teacher.network, step.plan.teacher)
    targets = teacher(x)
    student = student_update(step, targets)
    authors = authors_step(s, step.teacher.network)
    parts = {"step": lambda: step(x), "teacher": lambda: teacher(x), "student": lambda: student(x),
             "authors": lambda: authors(x)}
    if compiled:  # torch.compile of both networks; the warm-up repeat pays for the compilation
        fast = SeedStep(setting_config(s, "compile=true", "teacher.compile=true"))
        parts["compiled"] = lambda: fast(x)
    t = interleaved(parts, repeats)
    plan = step.plan
    print(f"\n{name}: {s.student} <- {s.teacher}, {s.size} px, batch {s.batch}, queue {s.queue}; {threads_line()}; "
          f"teacher {plan.teacher.precision}{' channels_last' if plan.teacher.channels_last else ''}, "
          f"student {plan.student.precision}{' channels_last' if plan.student.channels_last else ''}")
    for k, v in t.items():
        print(f"  {k:8s} {1000 * v.seconds:9.1f} ms  {v.rate(s.batch):8.1f} images/s  (spread {100 * v.spread:.0f}%)")
    print(f"  step / (teacher + student) = {t['step'].seconds / (t['teacher'].seconds + t['student'].seconds):.3f}")
    print(f"  authors / step             = {t['authors'].seconds / t['step'].seconds:.2f}x")
    if compiled:
        print(f"  step / compiled step       = {t['step'].seconds / t['compiled'].seconds:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setting", choices=[*SETTINGS, "all"], default="all", help="all: fmnist and imagenet64")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also time the step with torch.compile (minutes "
                        "of compilation on CPU)")
    parser.add_argument("--quick", action="store_true", help="batch 8, queue 256, 2 repeats: checks the script runs")
    args = parser.parse_args()
    for name in ("fmnist", "imagenet64") if args.setting == "all" else [args.setting]:
        measure(name, 2 if args.quick else args.repeats, args.quick, args.compile)


if __name__ == "__main__":
    main()
