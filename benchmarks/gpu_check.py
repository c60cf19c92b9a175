"""The trainer's GPU paths in one pass (`benchmarks/gpu_check.sh`; under 5 minutes on one CUDA device).

  1. bf16 and fp16 SEED runs through the real trainer (autocast, GradScaler for fp16, the loss in fp32):
     finite losses, fp32 embeddings in the queue;
  2. torch.compile of student and teacher through the trainer; images/s against the same run uncompiled;
  3. a one-process nccl group: the trainer joins it, the collectives it uses run through nccl;
  4. images/s of the training step at 224 px: MobileNetV3-Large from ResNet-50, and three students
     from one teacher pass (next to three solo steps and the bound).

`--dry-run` runs the same code on CPU with tiny networks and sizes, gloo for nccl and without compile
(what the test suite runs); it checks the script, not the GPU.

    python benchmarks/gpu_check.py [--dry-run]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
from _parts import SeedStep, Setting, interleaved, setting_config
from torch import Tensor

from seedzoo.training.cohort import UNNAMED
from seedzoo.training.config import TrainConfig, apply_overrides
from seedzoo.training.engine import train
from seedzoo.training.metrics import student_records


class RandomImages:
    """An in-memory source of random uint8 images (no disk, no decoding: the GPU is what is checked)."""

    def __init__(self, n: int, size: int) -> None:
        self.images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8,
                                    generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> tuple[Tensor, int]:
        return self.images[index], -1

    def describe(self, index: int) -> str:
        return f"random[{index}]"


def run_config(dry: bool, *overrides: str) -> TrainConfig:
    nets = (["student.arch=test_efficientnet", "teacher.arch=test_resnet", "teacher.head_hidden=32",
             "student.embed_dim=16", "teacher.embed_dim=16"] if dry else
            ["student.arch=seed_mobilenetv3_large", "teacher.arch=seed_resnet50"])
    return apply_overrides(TrainConfig(), [
        f"device={'cpu' if dry else 'cuda'}", "epochs=1", f"global_batch={4 if dry else 64}",
        f"data.image_size={16 if dry else 64}", "data.workers=2", "distill.queue_size=256", "optim.warmup_epochs=0",
        "log_every=1000", "save_every=100000", "keep_last=1", "export=false", "monitor.knn_every=0", *nets, *overrides])


def trained(cfg: TrainConfig, n_images: int, run_dir: Path) -> dict:
    result = train(cfg, run_dir, source=RandomImages(n_images, 32 if cfg.device == "cpu" else 96))
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    state = torch.load(result.checkpoint, weights_only=True)["students"][UNNAMED]  # the run's one student
    rates = [r["images_per_s"] for r in records[2:]] or [records[-1]["images_per_s"]]
    return {"losses": [r["loss"] for r in student_records(records, UNNAMED)], "images_per_s": statistics.median(rates),
            "queue_dtype": state["objective"]["queue"]["queue"].dtype,
            "plan": json.loads((run_dir / "device_plan.json").read_text())}


def check(name: str, ok: bool, detail: str) -> bool:
    print(f"[{'ok' if ok else 'FAIL'}] {name}: {detail}", flush=True)
    return ok


def precision_runs(dry: bool, tmp: Path) -> bool:
    ok = True
    n = 16 if dry else 640
    for precision in ("bf16", "fp16"):
        r = trained(run_config(dry, f"precision={precision}"), n, tmp / precision)
        finite = all(torch.isfinite(torch.tensor(r["losses"])))
        ok &= check(f"{precision} SEED steps", finite and r["queue_dtype"] == torch.float32,
                    f"losses {[round(v, 4) for v in r['losses'][:4]]}..., queue {r['queue_dtype']}, "
                    f"plan {r['plan']['students'][UNNAMED]} / teacher {r['plan']['teacher']}, "
                    f"{r['images_per_s']:.0f} images/s")
    return ok


def compile_runs(dry: bool, tmp: Path) -> bool:
    if dry:
        print("[skip] torch.compile: not in a dry run (minutes of compilation on CPU)")
        return True
    n = 1280
    plain = trained(run_config(dry, "precision=bf16", "compile=false", "teacher.compile=false"), n, tmp / "plain")
    start = time.perf_counter()
    compiled = trained(run_config(dry, "precision=bf16", "compile=true", "teacher.compile=true"), n, tmp / "compiled")
    wall = time.perf_counter() - start
    finite = all(torch.isfinite(torch.tensor(compiled["losses"])))
    return check("torch.compile", finite, f"{compiled['images_per_s']:.0f} images/s compiled vs "
                 f"{plain['images_per_s']:.0f} uncompiled (x{compiled['images_per_s'] / plain['images_per_s']:.2f}); "
                 f"the compiled run took {wall:.0f} s in all")


def process_group_run(dry: bool, tmp: Path) -> bool:
    backend = "gloo" if dry else "nccl"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group(backend, rank=0, world_size=1)
    try:
        device = "cpu" if dry else "cuda"
        x = torch.arange(4.0, device=device)
        dist.all_reduce(x)
        parts = [torch.empty_like(x)]
        dist.all_gather(parts, x)
        r = trained(run_config(dry), 16 if dry else 320, tmp / backend)
        ok = torch.equal(parts[0], torch.arange(4.0, device=device)) and all(
            torch.isfinite(torch.tensor(r["losses"])))
    finally:
        dist.destroy_process_group()
    return check(f"one-process {backend} group", ok, f"all_reduce/all_gather and {len(r['losses'])} trainer steps")


def throughput(dry: bool) -> bool:
    s = (Setting("test_efficientnet", "test_resnet", 32, 32, 4, 64) if dry else
         Setting("seed_mobilenetv3_large", "seed_resnet50", 2048, 224, 64, 65536))
    device = "cpu" if dry else "cuda"
    dims = ["student.embed_dim=16", "teacher.embed_dim=16"] if dry else []
    cfg = setting_config(s, f"device={device}", "precision=bf16", *dims)
    solo = SeedStep(cfg)
    group = [SeedStep(setting_config(s, f"device={device}", "precision=bf16", *dims,
                                     f"distill.teacher_temperature={tau}"), teacher=solo.teacher.network)
             for tau in (1e-4, 0.01, 0.05)]
    x = torch.randn(s.batch, 3, s.size, s.size, device=device)

    def together() -> None:
        targets = group[0].targets({"image": group[0].plan.student.input(x)})
        for step in group:
            step(x, targets)

    t = interleaved({"solo": lambda: solo(x), "together": together,
                     "teacher": lambda: solo.targets({"image": x})}, 2 if dry else 10, warmup=1 if dry else 3)
    T, solo_s = t["teacher"].seconds, t["solo"].seconds
    S = max(solo_s - T, 1e-9)
    bound = (T + 3 * S) / (3 * (T + S))
    ratio = t["together"].seconds / (3 * solo_s)
    print(f"  {s.student} <- {s.teacher}, {s.size} px, batch {s.batch}, student bf16, teacher "
          f"{solo.plan.teacher.precision}: {s.batch / solo_s:.0f} images/s; three students from one teacher pass: "
          f"{3 * s.batch / t['together'].seconds:.0f} student-images/s; together / (3 x solo) = {ratio:.3f}, "
          f"bound {bound:.3f}")
    return check("images/s at 224 px" if not dry else "images/s (dry run)", all(v.seconds > 0 for v in t.values()),
                 f"step {1000 * solo_s:.1f} ms, teacher {1000 * T:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny networks, gloo, no compile")
    args = parser.parse_args()
    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on a GPU machine, or pass --dry-run to check the script on CPU")
    if not args.dry_run:
        print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, "
              f"bf16 {torch.cuda.is_bf16_supported(including_emulation=False)}", flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ok = precision_runs(args.dry_run, Path(tmp))
        ok &= compile_runs(args.dry_run, Path(tmp))
        ok &= process_group_run(args.dry_run, Path(tmp))
        ok &= throughput(args.dry_run)
    print(f"{'all checks passed' if ok else 'SOME CHECKS FAILED'} in {time.perf_counter() - start:.0f} s")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
