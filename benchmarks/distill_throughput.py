"""Throughput of one SEED distillation step against its two unavoidable parts.

CPU, fp32, MobileNetV3-Large student (`seed_mobilenetv3_large`) from a ResNet-50 teacher, 64 px, global
batch 32 (the defaults). It times, interleaved in each repeat and on the same input:
  A. the full training step (teacher forward, student forward, SEED loss, backward, SGD update, enqueue);
  B. a teacher forward alone (no_grad, eval);
  C. a student forward-backward-update alone (same loss against fixed targets);
and prints images/s of A and the ratio median(A) / (median(B) + median(C)): the trainer's overhead over
the work it cannot avoid (target <= 1.05).

    python benchmarks/distill_throughput.py [--repeats 7] [--size 64] [--batch 32]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from seedzoo.training.config import TrainConfig, apply_overrides
from seedzoo.training.loss import seed_loss
from seedzoo.training.networks import build_student, build_teacher
from seedzoo.training.schedule import scaled_lr
from seedzoo.training.seed import SeedObjective


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", default="seed_mobilenetv3_large")
    parser.add_argument("--teacher", default="seed_resnet50")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()

    torch.manual_seed(0)
    cfg = apply_overrides(TrainConfig(), [f"student.arch={args.student}", f"teacher.arch={args.teacher}",
                                          f"global_batch={args.batch}", "distill.queue_size=4096"])
    objective = SeedObjective(build_student(args.student), build_teacher(args.teacher), cfg).train()
    student, teacher = objective.model, objective.teacher
    optimizer = torch.optim.SGD(student.parameters(), lr=scaled_lr(0.03, args.batch), momentum=0.9,
                                weight_decay=1e-4)
    x = torch.randn(args.batch, 3, args.size, args.size)
    targets = objective.embed_teacher(x)

    def full_step() -> None:
        loss, pending = objective.compute(student, {"image": x}, 0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        objective.update(pending)

    def teacher_forward() -> None:
        with torch.no_grad():
            teacher(x)

    def student_step() -> None:
        loss = seed_loss(student(x), targets, objective.queue.queue)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    parts = {"full": full_step, "teacher": teacher_forward, "student": student_step}
    times: dict[str, list[float]] = {k: [] for k in parts}
    for i in range(args.warmup + args.repeats):
        for name, fn in parts.items():  # interleaved: load changes hit every part alike
            t = _timed(fn)
            if i >= args.warmup:
                times[name].append(t)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["full"] / (med["teacher"] + med["student"])
    print(f"{args.student} <- {args.teacher}, {args.size} px, batch {args.batch}, fp32, "
          f"{torch.get_num_threads()} threads, {args.repeats} repeats (medians)")
    print(f"full step      {1000 * med['full']:8.1f} ms  {args.batch / med['full']:7.1f} images/s")
    print(f"teacher fwd    {1000 * med['teacher']:8.1f} ms")
    print(f"student f-b-u  {1000 * med['student']:8.1f} ms")
    print(f"ratio full / (teacher + student) = {ratio:.3f}")


if __name__ == "__main__":
    main()
