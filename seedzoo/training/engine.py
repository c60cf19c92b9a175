"""The training engine: one code path from one CPU process to torchrun on many nodes.

The trainable network (student + head, or MoCo's query encoder) is wrapped in DDP when there is more
than one process; the teacher, the key encoder and the queues stay outside DDP (identical on every rank:
the queues are filled with embeddings gathered from all ranks). Per-process batch = global batch / world
size, lr = base_lr x global_batch / 256, SGD (momentum 0.9, weight decay 1e-4 on every parameter, as the
official code), warm-up then cosine (`schedule.py`). Each network runs in the layout and precision of
its device plan (`device_plan.py`: channels_last, bf16 autocast for the frozen teacher where the hardware
has bf16, the student in `precision`), recorded in RUN_DIR/device_plan.json; the loss is always fp32.
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from ..data.augment import EvalTransform
from ..data.datasets import ImageSource, KeyedViewDataset, build_source
from ..data.sampler import GlobalBatchSampler
from . import distributed as D
from .checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .config import TrainConfig, config_hash, dump_yaml, to_dict
from .device_plan import DevicePlan, NetworkPlan, resolve_plan
from .metrics import METRICS_FILE, MetricsLogger, knn_top1
from .networks import build_student, build_teacher, unwrap
from .queue import check_queue_size
from .schedule import learning_rate, scaled_lr

PLAN_FILE = "device_plan.json"


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the run stops before the bad step updates anything."""


@dataclass
class RunResult:
    run_dir: Path
    step: int
    epoch: int
    loss: float
    checkpoint: Path | None
    export_dir: Path | None
    knn_top1: float | None = None


class Trainer:
    """Runs a `TrainConfig` into `run_dir`.

    `student` (a backbone built with num_classes=0) and `teacher` (a network whose output is the teacher
    embedding) replace the networks the config names; `source` replaces the configured data source.
    `resume`: None (fresh run), "auto" (the newest checkpoint of `run_dir`, if any) or a checkpoint path.
    """

    def __init__(self, cfg: TrainConfig, run_dir: str | Path, *, student: nn.Module | None = None,
                 teacher: nn.Module | None = None, source: ImageSource | None = None,
                 resume: str | None = None, command: str = "") -> None:
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self._student, self._teacher, self._source = student, teacher, source
        self.resume, self.command = resume, command or " ".join(["seedzoo", "train", *sys.argv[1:]])

    # --- set-up ------------------------------------------------------------------------------

    def _build_objective(self, plan: DevicePlan) -> nn.Module:
        cfg = self.cfg
        s = cfg.student
        student = build_student(s.arch, s.pretrained, s.head_hidden, s.embed_dim, backbone=self._student)
        if plan.student.channels_last:  # before MoCo copies it into its key encoder
            student.to(memory_format=torch.channels_last)
        if cfg.method == "moco":
            from .moco import MocoObjective

            return MocoObjective(student, cfg)
        from .seed import SeedObjective

        t = cfg.teacher
        teacher = self._teacher if self._teacher is not None else build_teacher(
            t.arch, t.pretrained, t.head_hidden, t.head_batch_norm, t.embed_dim, t.entry)
        return SeedObjective(student, teacher, cfg, plan.teacher)

    def _views(self):
        if self.cfg.method == "moco":
            from .moco import TwoViews

            return TwoViews(self.cfg)
        from .seed import SeedViews

        return SeedViews(self.cfg)

    def _resume_path(self) -> Path | None:
        if not self.resume:
            return None
        if self.resume == "auto":
            return latest_checkpoint(self.run_dir)
        return Path(self.resume)

    # --- the run -----------------------------------------------------------------------------

    def fit(self) -> RunResult:
        owns_group = not (torch.distributed.is_available() and torch.distributed.is_initialized())
        info = D.init_distributed(self.cfg.device)
        try:
            return self._fit(info)
        finally:
            if owns_group:
                D.cleanup()

    def _fit(self, info: D.DistInfo) -> RunResult:
        cfg, device = self.cfg, info.device
        if cfg.global_batch % info.world_size:
            raise ValueError(f"global_batch={cfg.global_batch} is not divisible by the {info.world_size} "
                             "processes: use a multiple of the number of processes")
        check_queue_size(cfg.moco.queue_size if cfg.method == "moco" else cfg.distill.queue_size, cfg.global_batch)
        plan = resolve_plan(cfg, device)
        if cfg.precision == "fp16" and device.type != "cuda" and info.is_main:
            print("precision=fp16 applies on GPU only: this CPU run trains in fp32 (bf16 is available)",
                  file=sys.stderr)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        chash = config_hash(cfg)
        if info.is_main:
            (self.run_dir / "config.yaml").write_text(f"# config_hash: {chash}\n" + dump_yaml(cfg))
            (self.run_dir / PLAN_FILE).write_text(json.dumps(plan.record(), indent=2) + "\n")

        torch.manual_seed(cfg.seed)  # identical initial weights on every rank (DDP also broadcasts them)
        objective = self._build_objective(plan).to(device)
        model = objective.model
        optimizer = torch.optim.SGD(model.parameters(), lr=scaled_lr(cfg.optim.base_lr, cfg.global_batch),
                                    momentum=cfg.optim.momentum, weight_decay=cfg.optim.weight_decay)
        scaler = torch.amp.GradScaler(device.type, enabled=plan.student.precision == "fp16")

        source = self._source if self._source is not None else build_source(
            cfg.data.source, cfg.data.path, cfg.data.subset)
        dataset = KeyedViewDataset(source, self._views(), seed=cfg.seed, on_error=cfg.data.on_error)
        sampler = GlobalBatchSampler(len(dataset), cfg.global_batch, info.rank, info.world_size, cfg.seed)
        steps_per_epoch = len(dataset) // cfg.global_batch
        total = cfg.epochs * steps_per_epoch
        total = min(total, cfg.max_steps) if cfg.max_steps else total

        step, last_ckpt = 0, None
        resume_from = self._resume_path()
        if resume_from is not None:
            state = load_checkpoint(resume_from, map_location=device)
            model.load_state_dict(state["student"])
            objective.load_state(state["objective"])
            optimizer.load_state_dict(state["optimizer"])
            scaler.load_state_dict(state["scaler"])
            set_rng_state({k: v.cpu() for k, v in state["rng"].items()})
            step, last_ckpt = int(state["step"]), resume_from
            if state["config_hash"] != chash and info.is_main:
                changed = _changed_keys(state["config"], to_dict(cfg))
                print(f"resuming {resume_from} with a changed config: {', '.join(changed)}", file=sys.stderr)
            if info.is_main:
                _truncate_metrics(self.run_dir / METRICS_FILE, step)

        net: nn.Module = model
        if info.distributed:
            # Per-GPU BN as the official code (no SyncBN, buffers not broadcast from rank 0).
            net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                          broadcast_buffers=False)
        if plan.student.compile:
            net = torch.compile(net)
        objective.train()
        logger = MetricsLogger(self.run_dir, info.is_main, total, step, cfg.log_every)
        if info.is_main:
            logger.info(f"{cfg.method} run {cfg.name or '(unnamed)'}: {info.world_size} process(es) on "
                        f"{device.type}, {total} steps of global batch {cfg.global_batch}, into {self.run_dir}")
            logger.info(f"device plan: student {_describe(plan.student)}; teacher {_describe(plan.teacher)}")

        def checkpoint() -> Path | None:
            if not info.is_main:
                return None
            return save_checkpoint({
                "step": step, "epoch": step // steps_per_epoch, "student": model.state_dict(),
                "objective": objective.state(), "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(), "rng": rng_state(), "config": to_dict(cfg), "config_hash": chash,
            }, self.run_dir, step, cfg.keep_last)

        loss_value, knn = float("nan"), None
        try:
            while step < total:
                epoch, first_batch = divmod(step, steps_per_epoch)
                sampler.set_epoch(epoch, first_batch)
                loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.data.workers,
                                    pin_memory=device.type == "cuda")
                t_prev = time.perf_counter()
                for batch in loader:
                    t_data = time.perf_counter()
                    lr = learning_rate(step, steps_per_epoch, cfg.epochs, cfg.optim.base_lr, cfg.global_batch,
                                       cfg.optim.warmup_epochs, per_step=cfg.optim.schedule == "step")
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    views = {k: v.to(device, non_blocking=True) for k, v in batch.items()
                             if k in ("image", "small", "key_image")}
                    views = {k: plan.student.input(v) for k, v in views.items()}
                    with plan.student.autocast(device.type):
                        loss, pending = objective.compute(net, views, step)
                    # One collective for both numbers: the mean loss and the images skipped as unreadable.
                    stats = D.all_reduce_sum(torch.stack([loss.detach().float(),
                                                          batch["skipped"].sum().float().to(device)]))
                    loss_value, skipped = float(stats[0]) / info.world_size, int(stats[1])
                    if not math.isfinite(loss_value):
                        kept = (f"the last good checkpoint is {last_ckpt}" if last_ckpt
                                else "no checkpoint was written yet")
                        raise NonFiniteLossError(
                            f"loss is {loss_value} at step {step + 1} (epoch {epoch}); the run stops before "
                            f"updating anything, {kept}. Lower optim.base_lr, use precision=bf16 or fp32, or "
                            "check the data, then continue with --resume auto")
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                    objective.update(pending)
                    step += 1
                    t_end = time.perf_counter()
                    logger.step({"step": step, "epoch": epoch, "loss": loss_value, "lr": lr,
                                 "images_per_s": cfg.global_batch / max(t_end - t_prev, 1e-9),
                                 "data_wait": (t_data - t_prev) / max(t_end - t_prev, 1e-9), "skipped": skipped})
                    t_prev = t_end
                    if step % cfg.save_every == 0 or step % steps_per_epoch == 0 or step == total:
                        last_ckpt = checkpoint() or last_ckpt
                        logger.info(f"saved checkpoint {last_ckpt} (step {step})")
                    if step >= total:
                        break
                if step % steps_per_epoch == 0:
                    knn = self._monitor(unwrap(model).backbone, step, step // steps_per_epoch, device, info,
                                        logger) or knn
        finally:
            logger.close()

        export_dir = self._export(model, step, knn) if info.is_main and cfg.export else None
        D.barrier()
        return RunResult(self.run_dir, step, step // steps_per_epoch, loss_value, last_ckpt, export_dir, knn)

    # --- reporting ---------------------------------------------------------------------------

    def _monitor(self, backbone: nn.Module, step: int, epoch: int, device: torch.device, info: D.DistInfo,
                 logger: MetricsLogger) -> float | None:
        m, d = self.cfg.monitor, self.cfg.data
        if not (m.knn_every and epoch % m.knn_every == 0 and info.is_main):
            return None
        if d.source == "fashion_mnist":
            train_src = build_source(d.source, d.path, split="train")
            test_src = build_source(d.source, d.path, split="test")
        elif d.source == "image_folder":
            train_src = test_src = build_source(d.source, d.path)
        else:
            logger.info(f"kNN monitor skipped: data.source={d.source} has no labels")
            return None
        top1 = knn_top1(backbone, train_src, test_src, EvalTransform(d.image_size, mean=d.mean, std=d.std),
                        device, m.knn_train, m.knn_test, m.knn_k)
        logger.write({"step": step, "epoch": epoch, f"knn{m.knn_k}_top1": top1})
        logger.info(f"epoch {epoch}: kNN-{m.knn_k} top-1 {top1:.2f}%")
        return top1

    def _export(self, model: nn.Module, step: int, knn: float | None) -> Path | None:
        from ..weights.export import write_model_folder
        from ..zoo import UnknownModelError, get_entry

        cfg = self.cfg
        try:
            entry = get_entry(cfg.name) if cfg.name else None
        except UnknownModelError:
            entry = None
        if entry is not None and entry.architecture != cfg.student.arch:
            entry = None  # the run trained another architecture than the entry's
        model = unwrap(model)
        metrics = []
        if knn is not None:
            metrics.append({"value": knn, "metric": f"knn{cfg.monitor.knn_k}_top1", "dataset": cfg.data.source,
                            "protocol": "knn_monitor", "kind": "measured", "source": self.command})
        block: dict[str, Any] = {
            "entry": cfg.name,
            "trained_by": {"method": "SEED" if cfg.method == "seed" else "MoCo-v2", "epochs": cfg.epochs,
                           "steps": step},
            "recipe": {"config_hash": config_hash(cfg), "config": to_dict(cfg), "command": self.command},
            "measured": metrics,
        }
        if cfg.method == "seed":
            block["teacher"] = {"entry": cfg.teacher.entry, "arch": cfg.teacher.arch,
                                "pretrained": cfg.teacher.pretrained or "random init",
                                "teacher_temperature": cfg.distill.teacher_temperature}
        state = {k: v.detach().cpu().contiguous() for k, v in model.backbone.state_dict().items()}
        head = {k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}
        return write_model_folder(self.run_dir / "export", architecture=cfg.student.arch, backbone=state,
                                  head=head, entry=entry, seedzoo=block)


def _describe(p: NetworkPlan) -> str:
    return (f"{p.precision}, {'channels_last' if p.channels_last else 'NCHW'}"
            f"{', compiled' if p.compile else ''}")


def _changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _changed_keys(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return out


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop records of steps after the resume point (they are about to be run again)."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in keep))


def train(cfg: TrainConfig, run_dir: str | Path, **kwargs: Any) -> RunResult:
    """Run `cfg` into `run_dir` (see `Trainer` for the keyword arguments)."""
    return Trainer(cfg, run_dir, **kwargs).fit()
