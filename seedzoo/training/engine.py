"""The training engine: one code path from one CPU process to torchrun on many nodes.

What is trained comes from the method registry (`methods/`): the engine builds each student's objective,
makes the views its method declared and runs the teacher on the views it asked for, and names none of
them itself. The trainable network (student + head, or MoCo's query encoder) is wrapped in DDP when there
is more than one process; the teacher, the key encoder and the queues stay outside DDP (identical on every rank:
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from ..data.augment import EvalTransform, sample_generator
from ..data.datasets import ImageSource, KeyedViewDataset, build_source
from ..data.sampler import GlobalBatchSampler
from ..errors import SeedzooError
from ..files import write_atomic
from . import distributed as D
from .checkpoint import (
    NonFiniteStateError,
    discard_after,
    resolve_resume,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .cohort import check_cohort
from .config import (
    ConfigError,
    TrainConfig,
    config_hash,
    config_problems,
    dump_yaml,
    to_dict,
)
from .device_plan import DevicePlan, NetworkPlan, resolve_plan
from .memory import fit_problems
from .methods import Method, get_method
from .metrics import MetricsLogger, knn_top1, last_knn, truncate_metrics
from .neighbours import run_neighbours
from .networks import Encoder, build_student, build_teacher, resolve_teacher
from .objective import Objective
from .run_folder import (
    check_run_folder,
    clear_run,
    is_finished,
    mark_finished,
    read_finished,
    remove_leftovers,
)
from .schedule import learning_rate, scaled_lr
from .teacher import TeacherPass
from .views import ViewSet

PLAN_FILE = "device_plan.json"


class NonFiniteLossError(SeedzooError, FloatingPointError):
    """The loss or the weights became NaN or infinite; the run stops, and no checkpoint holds them."""


@dataclass
class RunResult:
    """What a run ended with. With several students, `loss`, `export_dir` and `knn_top1` are the first
    student's; `losses`, `exports` and `knn` hold every student's, by name."""

    run_dir: Path
    step: int
    epoch: int
    loss: float
    checkpoint: Path | None
    export_dir: Path | None
    knn_top1: float | None = None
    losses: dict[str, float] = field(default_factory=dict)
    exports: dict[str, Path | None] = field(default_factory=dict)
    knn: dict[str, float | None] = field(default_factory=dict)
    wall_s: float = 0.0  # this call's wall time
    already_finished: bool = False  # resumed a run that had finished: nothing was done


@dataclass
class _Student:
    """One trained network of a run and what is its own: objective (queue, temperatures), optimiser,
    scaler, device plan. `net` is what the step calls (`model` wrapped in DDP and/or compiled)."""

    name: str
    cfg: TrainConfig
    method: Method
    plan: NetworkPlan
    objective: Objective
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    net: nn.Module
    # The student's own torch RNG stream (dropout, drop-path), so that it draws the same numbers whether
    # it trains alone or next to others (`own_rng`); saved in its checkpoint for an exact resume.
    rng: dict[str, torch.Tensor]
    loss: float = float("nan")
    knn: float | None = None

    @property
    def model(self) -> Encoder:
        return self.objective.model

    def state(self) -> dict[str, Any]:
        return {"student": self.model.state_dict(), "objective": self.objective.state(),
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "config": to_dict(self.cfg), "config_hash": config_hash(self.cfg), "loss": self.loss,
                "student_rng": self.rng}

    def load_state(self, state: dict[str, Any], run_rng: dict[str, torch.Tensor]) -> None:
        """`run_rng`: the run's global RNG state, the stream of a checkpoint from before students had their own."""
        self.rng = {k: v.cpu() for k, v in state.get("student_rng", run_rng).items()}
        self.model.load_state_dict(state["student"])
        self.objective.load_state(state["objective"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.loss = float(state.get("loss", float("nan")))

    @contextmanager
    def own_rng(self, device: torch.device) -> Iterator[None]:
        """Runs the block on this student's RNG stream, leaving the global one as it was."""
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            set_rng_state(self.rng)
            yield
            self.rng = rng_state()


def _fresh_rng(seed: int, device: torch.device) -> dict[str, torch.Tensor]:
    """A student's initial RNG stream: a function of the run's seed alone, as alone so in a cohort."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(sample_generator(seed, -2, -2).initial_seed())
        return rng_state()


class Trainer:
    """Runs a `TrainConfig` into `run_dir`, or several students together.

    `cfg` may be a sequence of configs that agree on data, batch, epochs and seed, and on the teacher
    among those that distil one (`cohort.check_cohort`); their methods may differ. Every step then makes
    the union of their views once, runs the teacher once on the views they ask it for, and trains each
    student as it would train alone (bitwise, on one CPU process). Each student exports to
    `run_dir/export/<name>/`; a single student to `run_dir/export/`.

    `student` (a backbone built with num_classes=0, or one per config) and `teacher` (a network whose
    output is the teacher embedding) replace the networks the configs name; `source` replaces the
    configured data source. `resume`: None (fresh run), "auto" (the newest valid checkpoint of
    `run_dir`, if any) or a checkpoint path. A fresh run into a folder that holds a run is refused unless
    `overwrite` (which removes what the earlier run wrote); resuming a finished run changes nothing.
    """

    def __init__(self, cfg: TrainConfig | Sequence[TrainConfig], run_dir: str | Path, *,
                 student: nn.Module | Sequence[nn.Module] | None = None, teacher: nn.Module | None = None,
                 source: ImageSource | None = None, resume: str | None = None, overwrite: bool = False,
                 command: str = "") -> None:
        # teacher.target resolved (and a features teacher's width given to the students' heads) before
        # anything is recorded: the run's config says what it trained
        self.cfgs = [resolve_teacher(c) for c in ([cfg] if isinstance(cfg, TrainConfig) else cfg)]
        self.names = check_cohort(self.cfgs)
        self.cfg, self.run_dir = self.cfgs[0], Path(run_dir)  # cfg: the settings all students share
        backbones = student if isinstance(student, Sequence) else [student] * len(self.cfgs)
        if len(backbones) != len(self.cfgs):
            raise ValueError(f"{len(backbones)} student backbones for {len(self.cfgs)} configs: pass one each")
        self._students, self._teacher, self._source = list(backbones), teacher, source
        self.resume, self.overwrite = resume, overwrite
        self.command = command or " ".join(["seedzoo", "train", *sys.argv[1:]])

    # --- set-up ------------------------------------------------------------------------------

    def _build_teacher(self, plan: DevicePlan) -> TeacherPass | None:
        """The teacher of the students that distil one (built once, for all), or None."""
        distilling = [c for c in self.cfgs if get_method(c.method).needs_teacher]
        if not distilling:
            return None
        t = distilling[0].teacher  # the cohort check made the students' teachers agree
        # a random-init teacher is saved in checkpoints to be resumable; a pretrained one is reloaded
        return TeacherPass(self._teacher_network(distilling[0]), plan.teacher, save=not t.pretrained)

    def _teacher_network(self, cfg: TrainConfig) -> nn.Module:
        if self._teacher is not None:
            return self._teacher
        t = cfg.teacher
        if t.pretrained not in ("", "zoo") and not Path(t.pretrained).expanduser().exists():
            # Said here, where it is known to be the config's teacher, rather than as a bare missing path.
            teacher = t.entry or "<teacher entry>"
            raise FileNotFoundError(
                f"teacher.pretrained={t.pretrained!r}: the teacher's weights are missing (no such file or folder). "
                f"Train the teacher first (seedzoo train {teacher} --out DIR, then teacher.pretrained=DIR) or "
                "pass the path of its weights")
        # Its own random stream: a random-init teacher is the same whichever students it teaches.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_generator(cfg.seed, -1, -1).initial_seed())
            return build_teacher(t.arch, t.pretrained, t.head_hidden, t.head_batch_norm, t.embed_dim, t.entry,
                                 target=t.target)

    def _build_objective(self, cfg: TrainConfig, backbone: nn.Module | None, plan: DevicePlan) -> Objective:
        s = cfg.student
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank (DDP also broadcasts them)
        student = build_student(s.arch, s.pretrained, s.head_hidden, s.embed_dim, backbone=backbone)
        if plan.student.channels_last:  # before an objective copies it (MoCo's key encoder)
            student.to(memory_format=torch.channels_last)
        return get_method(cfg.method).objective(student, cfg)

    def _write_run_config(self, plans: list[DevicePlan]) -> None:
        text = "".join(f"# config_hash: {config_hash(c)}\n" + dump_yaml(c) for c in self.cfgs[:1])
        for c in self.cfgs[1:]:  # several students: one YAML document each
            text += f"---\n# config_hash: {config_hash(c)}\n" + dump_yaml(c)
        write_atomic(self.run_dir / "config.yaml", text)
        record = plans[0].record() if len(plans) == 1 else {
            **plans[0].record(), "student": {n: p.student.__dict__ for n, p in zip(self.names, plans)}}
        write_atomic(self.run_dir / PLAN_FILE, json.dumps(record, indent=2) + "\n")

    def _build_students(self, info: D.DistInfo, plans: list[DevicePlan]) -> list[_Student]:
        device = info.device
        out = []
        for name, cfg, backbone, plan in zip(self.names, self.cfgs, self._students, plans):
            objective = self._build_objective(cfg, backbone, plan)
            objective.to(device)
            model = objective.model
            optimizer = torch.optim.SGD(model.parameters(), lr=scaled_lr(cfg.optim.base_lr, cfg.global_batch),
                                        momentum=cfg.optim.momentum, weight_decay=cfg.optim.weight_decay)
            scaler = torch.amp.GradScaler(device.type, enabled=plan.student.precision == "fp16")
            net: nn.Module = model
            if info.distributed:
                # Per-GPU BN as the official code (no SyncBN, buffers not broadcast from rank 0).
                net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                              broadcast_buffers=False)
            if plan.student.compile:
                net = cast(nn.Module, torch.compile(net))
            objective.train()
            out.append(_Student(name, cfg, get_method(cfg.method), plan.student, objective, optimizer, scaler, net,
                                _fresh_rng(cfg.seed, device)))
        return out

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
        # Also here, not only in load_config: a config built in Python has not been validated.
        problems = [(c, p) for c in self.cfgs for p in config_problems(c, info.world_size)]
        if not problems:  # then the sizes: too small for the networks, or more than the device holds
            problems = [(c, p) for c, backbone in zip(self.cfgs, self._students)
                        for p in fit_problems(c, device, info.world_size, student=backbone is None,
                                              teacher=self._teacher is None)]
        if problems:
            raise ConfigError(*(f"{c.name}: {p}" if len(self.cfgs) > 1 else p for c, p in problems))
        t0 = time.perf_counter()
        check_run_folder(self.run_dir, self.resume, self.overwrite)
        D.barrier()  # every rank sees the folder as it was before rank 0 clears or writes into it
        if info.is_main:
            if self.overwrite and (removed := clear_run(self.run_dir)):
                print(f"--overwrite: removed the earlier run's {', '.join(removed)} from {self.run_dir}",
                      file=sys.stderr)
            for path, size in remove_leftovers(self.run_dir):
                print(f"removed {path.name} ({size / 1e6:.1f} MB), left by an interrupted save", file=sys.stderr)
        point = resolve_resume(self.resume, self.run_dir)  # verified before anything is written
        finished = read_finished(self.run_dir) if point is not None else None
        if point is not None and finished is not None and is_finished(finished, point.step, self._config_hashes()):
            return self._finished_result(finished, point.path)
        plans = [resolve_plan(c, device) for c in self.cfgs]
        if any(c.precision == "fp16" for c in self.cfgs) and device.type != "cuda" and info.is_main:
            print("precision=fp16 applies on GPU only: this CPU run trains in fp32 (bf16 is available)",
                  file=sys.stderr)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if info.is_main:
            self._write_run_config(plans)

        students = self._build_students(info, plans)
        teacher = self._build_teacher(plans[0])
        if teacher is not None:
            teacher.to(device)
        # what the students read: the union of their methods' views, and of the views the teacher embeds
        view_set = ViewSet([v for m in students for v in m.method.views(m.cfg)])
        teacher_views = list(dict.fromkeys(v for m in students for v in m.method.teacher_views(m.cfg)))
        source = self._source if self._source is not None else build_source(
            cfg.data.source, cfg.data.path, cfg.data.subset)
        if view_set.neighbours:  # views of each image's neighbours: the teacher's bags, once per run
            if teacher is None:
                raise ValueError("views of a neighbour need a teacher to find the neighbours")
            view_set.bags = run_neighbours(self.run_dir, teacher.network, source, cfg, view_set.neighbours, device)
        dataset = KeyedViewDataset(source, view_set, seed=cfg.seed, on_error=cfg.data.on_error)
        sampler = GlobalBatchSampler(len(dataset), cfg.global_batch, info.rank, info.world_size, cfg.seed)
        steps_per_epoch = len(dataset) // cfg.global_batch
        total = cfg.epochs * steps_per_epoch
        total = min(total, cfg.max_steps) if cfg.max_steps else total

        step, last_ckpt = 0, None
        if point is not None:
            state, resume_from = point.state, point.path
            if info.is_main:
                for _path, reason in point.damaged:
                    print(f"{reason}; resuming from the older {resume_from.name} instead", file=sys.stderr)
            # One student: the checkpoint holds its state at the top level; several: under "students".
            saved = state["students"] if "students" in state else {students[0].name: state}
            if len(saved) != len(students) or (len(students) > 1 and sorted(saved) != sorted(self.names)):
                raise ValueError(f"{resume_from} holds the students {', '.join(map(repr, saved))}, this run "
                                 f"trains {', '.join(map(repr, self.names))}: resume with the same recipes")
            if teacher is not None:
                teacher.load_state(state)
            for m, part in zip(students, [saved[m.name] for m in students] if len(students) > 1 else saved.values()):
                m.load_state(part, state["rng"])
                if part["config_hash"] != config_hash(m.cfg) and info.is_main:
                    changed = _changed_keys(part["config"], to_dict(m.cfg))
                    print(f"resuming {resume_from} with a changed config: {', '.join(changed)}", file=sys.stderr)
            set_rng_state({k: v.cpu() for k, v in state["rng"].items()})
            step, last_ckpt = int(state["step"]), resume_from
        history = []
        if info.is_main and self.resume:  # also when no checkpoint was found: the run starts from step 0
            for path in discard_after(self.run_dir, step):
                print(f"removed {path.name}, newer than the resume point", file=sys.stderr)
            history = truncate_metrics(self.run_dir, step)  # what follows the resume point runs again
        for m in students:
            m.knn = last_knn(history, m.cfg.monitor.knn_k, m.name if len(students) > 1 else None)[1]

        logger = MetricsLogger(self.run_dir, info.is_main, total, step, cfg.log_every, steps_per_epoch)
        if info.is_main:
            who = ", ".join(f"{m.name or '(unnamed)'} ({m.method.trained_by})" for m in students)
            logger.info(f"run {who}: {info.world_size} process(es) on "
                        f"{device.type}, {total} steps of global batch {cfg.global_batch}, into {self.run_dir}")
            logger.info(f"device plan: teacher {_describe(plans[0].teacher)}; student "
                        + "; ".join(_describe(p.student) for p in plans))

        def checkpoint() -> Path | None:
            if not info.is_main:
                return None
            state = {"step": step, "epoch": step // steps_per_epoch, "rng": rng_state(),
                     **(teacher.state() if teacher is not None else {})}
            if len(students) == 1:
                state.update(students[0].state())
            else:
                state["students"] = {m.name: m.state() for m in students}
            try:
                return save_checkpoint(state, self.run_dir, step, cfg.keep_last)
            except NonFiniteStateError as err:
                kept = f"the last good checkpoint is {last_ckpt}" if last_ckpt else "no checkpoint was written yet"
                raise NonFiniteLossError(
                    f"the weights became non-finite at step {step} (epoch {step // steps_per_epoch}): {err}; "
                    f"nothing was saved, {kept}. Lower optim.base_lr, use precision=bf16 or fp32, or check "
                    "the data, then continue with --resume auto") from None

        try:
            if step and step % steps_per_epoch == 0:  # a kill between an epoch's checkpoint and its kNN
                for m in students:
                    if last_knn(history, m.cfg.monitor.knn_k, m.name if len(students) > 1 else None)[0] != step:
                        m.knn = self._monitor(m, step, step // steps_per_epoch, device, info, logger) or m.knn
            while step < total:
                epoch, first_batch = divmod(step, steps_per_epoch)
                sampler.set_epoch(epoch, first_batch)
                loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.data.workers,
                                    pin_memory=device.type == "cuda")
                t_prev = time.perf_counter()
                for batch in loader:
                    t_data = time.perf_counter()
                    views = {k: batch[k].to(device, non_blocking=True) for k in view_set.names}
                    # The teacher's pass, once for every student that distils it.
                    targets = teacher.targets(views, teacher_views) if teacher is not None else {}
                    skipped = int(D.all_reduce_sum(batch["skipped"].sum().to(device)))
                    for m in students:
                        with m.own_rng(device):
                            lr = self._step(m, views, targets, step, steps_per_epoch, epoch, info, last_ckpt)
                    step += 1
                    t_end = time.perf_counter()
                    record: dict[str, Any] = {"step": step, "epoch": epoch, "loss": students[0].loss, "lr": lr}
                    if len(students) > 1:  # loss, lr: the first student's; every student's by name
                        record["students"] = {m.name: {"loss": m.loss, "lr": m.optimizer.param_groups[0]["lr"]}
                                              for m in students}
                    logger.step({**record, "images_per_s": cfg.global_batch / max(t_end - t_prev, 1e-9),
                                 "data_wait": (t_data - t_prev) / max(t_end - t_prev, 1e-9), "skipped": skipped})
                    t_prev = t_end
                    if step % cfg.save_every == 0 or step % steps_per_epoch == 0 or step == total:
                        last_ckpt = checkpoint() or last_ckpt
                        logger.info(f"saved checkpoint {last_ckpt} (step {step})")
                    if step >= total:
                        break
                if step % steps_per_epoch == 0:
                    for m in students:
                        m.knn = self._monitor(m, step, step // steps_per_epoch, device, info, logger) or m.knn
        finally:
            logger.close()

        exports: dict[str, Path | None] = {}
        for m in students:
            folder = self.run_dir / "export" / (m.name if len(students) > 1 else "")
            exports[m.name] = self._export(m, step, folder) if info.is_main and m.cfg.export else None
        if info.is_main and last_ckpt is not None and step == total:
            mark_finished(self.run_dir, {
                "step": step, "epoch": step // steps_per_epoch, "checkpoint": last_ckpt.name,
                "students": {m.name: {"config_hash": config_hash(m.cfg), "loss": m.loss, "knn": m.knn,
                                      "export": str(e.relative_to(self.run_dir)) if (e := exports[m.name]) else None}
                             for m in students}})
        D.barrier()
        first = students[0]
        return RunResult(self.run_dir, step, step // steps_per_epoch, first.loss, last_ckpt, exports[first.name],
                         first.knn, {m.name: m.loss for m in students}, exports,
                         {m.name: m.knn for m in students}, wall_s=time.perf_counter() - t0)

    def _config_hashes(self) -> dict[str, str]:
        return {name: config_hash(c) for name, c in zip(self.names, self.cfgs)}

    def _finished_result(self, record: dict[str, Any], checkpoint: Path) -> RunResult:
        """What a finished run ended with, from its run.json: resuming it does nothing."""
        students = record["students"]
        exports = {n: self.run_dir / s["export"] if s.get("export") else None for n, s in students.items()}
        first = self.names[0]
        return RunResult(self.run_dir, record["step"], record["epoch"], students[first]["loss"], checkpoint,
                         exports[first], students[first]["knn"], {n: s["loss"] for n, s in students.items()},
                         exports, {n: s["knn"] for n, s in students.items()}, already_finished=True)

    def _step(self, m: _Student, views: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], step: int,
              steps_per_epoch: int,
              epoch: int, info: D.DistInfo, last_ckpt: Path | None) -> float:
        """One optimisation step of student `m` on this batch; returns its learning rate."""
        o = m.cfg.optim
        lr = learning_rate(step, steps_per_epoch, m.cfg.epochs, o.base_lr, m.cfg.global_batch, o.warmup_epochs,
                           per_step=o.schedule == "step")
        for group in m.optimizer.param_groups:
            group["lr"] = lr
        with m.plan.autocast(info.device.type):
            loss, pending = m.objective.compute(m.net, {k: m.plan.input(v) for k, v in views.items()}, step,
                                                targets, epoch)
        m.loss = float(D.all_reduce_sum(loss.detach().float())) / info.world_size
        if not math.isfinite(m.loss):
            kept = f"the last good checkpoint is {last_ckpt}" if last_ckpt else "no checkpoint was written yet"
            who = f" of student {m.name}" if len(self.cfgs) > 1 else ""
            raise NonFiniteLossError(
                f"loss{who} is {m.loss} at step {step + 1} (epoch {epoch}); the run stops before "
                f"updating anything, {kept}. Lower optim.base_lr, use precision=bf16 or fp32, or "
                "check the data, then continue with --resume auto")
        m.optimizer.zero_grad(set_to_none=True)
        m.scaler.scale(loss).backward()
        m.scaler.step(m.optimizer)
        m.scaler.update()
        m.objective.update(pending)
        return lr

    # --- reporting ---------------------------------------------------------------------------

    def _monitor(self, student: _Student, step: int, epoch: int, device: torch.device, info: D.DistInfo,
                 logger: MetricsLogger) -> float | None:
        m, d = student.cfg.monitor, self.cfg.data
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
        top1 = knn_top1(student.model.backbone, train_src, test_src,
                        EvalTransform(d.image_size, mean=d.mean, std=d.std), device, m.knn_train, m.knn_test, m.knn_k)
        several = len(self.cfgs) > 1
        logger.write({"step": step, "epoch": epoch, f"knn{m.knn_k}_top1": top1,
                      **({"student": student.name} if several else {})})
        logger.info(f"epoch {epoch}: kNN-{m.knn_k} top-1 {top1:.2f}%{f' ({student.name})' if several else ''}")
        return top1

    def _export(self, student: _Student, step: int, folder: Path) -> Path | None:
        from ..weights.publish import write_run_export
        from ..zoo import UnknownModelError, get_entry

        cfg, model, knn = student.cfg, student.model, student.knn
        try:
            entry = get_entry(cfg.name) if cfg.name else None
        except UnknownModelError:
            entry = None
        if entry is not None and entry.architecture != cfg.student.arch:
            entry = None  # the run trained another architecture than the entry's
        metrics = []
        if knn is not None:
            metrics.append({"value": knn, "metric": f"knn{cfg.monitor.knn_k}_top1", "dataset": cfg.data.source,
                            "protocol": "knn_monitor", "kind": "measured", "source": self.command})
        block: dict[str, Any] = {
            "entry": cfg.name,
            "trained_by": {"method": student.method.trained_by, "epochs": cfg.epochs, "steps": step},
            "recipe": {"config_hash": config_hash(cfg), "config": to_dict(cfg), "command": self.command},
            "measured": metrics,
        }
        if student.method.needs_teacher:
            block["teacher"] = {"entry": cfg.teacher.entry, "arch": cfg.teacher.arch,
                                "pretrained": cfg.teacher.pretrained or "random init", "target": cfg.teacher.target,
                                **student.method.lineage(cfg)}
        state = {k: v.detach().cpu().contiguous() for k, v in model.backbone.state_dict().items()}
        head = ({k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}
                if student.method.export_head else None)
        return write_run_export(folder, architecture=cfg.student.arch, backbone=state, head=head, entry=entry,
                                seedzoo=block, image_size=cfg.data.image_size, mean=cfg.data.mean, std=cfg.data.std)


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


def train(cfg: TrainConfig | Sequence[TrainConfig], run_dir: str | Path, **kwargs: Any) -> RunResult:
    """Run `cfg` (or several students, together) into `run_dir` (see `Trainer`)."""
    return Trainer(cfg, run_dir, **kwargs).fit()
