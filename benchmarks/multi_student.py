"""N students trained together against N solo runs, next to the bound of one shared teacher pass.

A solo SEED step costs T + S (teacher forward T, student forward-backward-update S); N students that
share the teacher pass cost T + N*S, so together / (N solo) cannot go below (T + N*S) / (N*(T + S)).
Interleaved in each repeat, on the same input (CPU, the trainer's device plan):
  solo      one student's full step (the trainer's step: `TeacherPass.targets` + `compute` + update);
  together  the trainer's step for N students: one `targets` pass, then each student's compute + update;
  teacher   the teacher pass alone (T);  student  one student's update alone (S);
and prints together / (N * solo) beside the bound (target: within 10% of it).

    python benchmarks/multi_student.py [--setting r50_32] [--students 3] [--repeats 5] [--quick]
"""
from __future__ import annotations

import argparse

import torch
from _parts import (
    SETTINGS,
    SeedStep,
    best_teacher,
    interleaved,
    quick,
    setting_config,
    student_update,
    threads_line,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setting", choices=list(SETTINGS), default="r50_32")
    parser.add_argument("--students", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="batch 8, queue 256, 2 repeats: checks the script runs")
    args = parser.parse_args()
    s = quick(SETTINGS[args.setting]) if args.quick else SETTINGS[args.setting]
    repeats = 2 if args.quick else args.repeats
    n = args.students

    solo = SeedStep(setting_config(s))
    teacher = solo.teacher.network
    # Students trained together: the trainer's objects, one teacher network for all of them.
    group = [SeedStep(setting_config(s, f"distill.teacher_temperature={tau}"), teacher=teacher)
             for tau in [1e-4, 0.01, 0.05, 0.1][:n] + [0.01] * max(0, n - 4)]
    x = torch.randn(s.batch, 3, s.size, s.size)
    teacher_pass = best_teacher(teacher, solo.plan.teacher)
    update = student_update(solo, teacher_pass(x))

    def together() -> None:
        targets = group[0].targets({"image": group[0].plan.student.input(x)})
        for step in group:
            step(x, targets)

    t = interleaved({"solo": lambda: solo(x), "together": together, "teacher": lambda: teacher_pass(x),
                     "student": lambda: update(x)}, repeats)
    T, S = t["teacher"].seconds, t["student"].seconds
    bound = (T + n * S) / (n * (T + S))
    ratio = t["together"].seconds / (n * t["solo"].seconds)
    print(f"{n} x {s.student} <- {s.teacher}, {s.size} px, batch {s.batch}; {threads_line()}")
    for k, v in t.items():
        print(f"  {k:9s} {1000 * v.seconds:9.1f} ms  (spread {100 * v.spread:.0f}%)")
    print(f"  together / ({n} x solo) = {ratio:.3f}   bound (T + N*S) / (N*(T + S)) = {bound:.3f}   "
          f"ratio / bound = {ratio / bound:.3f}")


if __name__ == "__main__":
    main()
