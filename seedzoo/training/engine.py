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
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..data.augment import EvalTransform, sample_generator
from ..data.datasets import ImageSource, KeyedViewDataset, build_source
from ..data.loader import QuietLoader
from ..data.sampler import GlobalBatchSampler
from ..errors import SeedzooError
from ..files import write_atomic
from . import distributed as D
from .checkpoint import (
    NonFiniteStateError,
    ResumePoint,
    checkpoint_step,
    discard_after,
    resolve_resume,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .cohort import check_cohort
from .collapse import RunChecks
from .config import (
    ConfigError,
    TrainConfig,
    config_hash,
    config_problems,
    dump_yaml,
    loader_workers,
    to_dict,
)
from .device_plan import DevicePlan, NetworkPlan, machine, resolve_plan
from .interrupts import Interrupts
from .memory import fit_problems
from .methods import Method, get_method
from .metrics import MetricsLogger, last_knn, truncate_metrics
from .monitor import MonitorSplit, knn_monitor, monitor_split
from .neighbours import run_neighbours
from .networks import (
    Encoder,
    build_student,
    build_teacher,
    create_backbone,
    embedding_width,
    resolve_teacher,
    width_problem,
    with_teacher_width,
)
from .objective import Objective
from .run_folder import (
    CHOICES_FILE,
    CONFIG_FILE,
    PLAN_FILE,
    check_run_folder,
    clear_run,
    export_dir,
    hold_run_folder,
    is_finished,
    mark_finished,
    read_finished,
    remove_leftovers,
)
from .schedule import learning_rate, scaled_lr
from .teacher import TeacherPass
from .views import ViewSet


class NonFiniteLossError(SeedzooError, FloatingPointError):
    """The loss or the weights became NaN or infinite; the run stops, and no checkpoint holds them."""


@dataclass
class RunResult:
    """What a run ended with: every student's loss, last kNN and export, by name. `loss`, `export_dir`
    and `knn_top1` are the first student's (the only one's, for a run of one)."""

    run_dir: Path
    step: int
    epoch: int
    checkpoint: Path | None
    losses: dict[str, float]
    exports: dict[str, Path | None]
    knn: dict[str, float | None]
    wall_s: float = 0.0  # this call's wall time
    already_finished: bool = False  # resumed a run that had finished: nothing was done
    # Each student's export check (`collapse.ExportHealth.record`): its batch-norm statistics, the spread
    # of its features in eval mode against its architecture at random init, and whether they collapsed.
    health: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_record(cls, run_dir: Path, record: dict[str, Any], checkpoint: Path | None, *, wall_s: float = 0.0,
                    already_finished: bool = False) -> RunResult:
        """The result a run's record (what run.json holds) describes."""
        students = record["students"]
        return cls(run_dir, record["step"], record["epoch"], checkpoint,
                   {n: s["loss"] for n, s in students.items()},
                   {n: run_dir / s["export"] if s.get("export") else None for n, s in students.items()},
                   {n: s["knn"] for n, s in students.items()}, wall_s, already_finished,
                   {n: s["health"] for n, s in students.items() if s.get("health")})

    @property
    def loss(self) -> float:
        return next(iter(self.losses.values()))

    @property
    def export_dir(self) -> Path | None:
        return next(iter(self.exports.values()))

    @property
    def knn_top1(self) -> float | None:
        return next(iter(self.knn.values()))

    @property
    def collapsed(self) -> list[str]:
        """The students whose features in eval mode collapsed (`health`)."""
        return [name for name, h in self.health.items() if h.get("collapsed")]


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
    health: dict[str, Any] | None = None  # the export check (`collapse.ExportHealth.record`)

    @property
    def model(self) -> Encoder:
        return self.objective.model

    def state(self) -> dict[str, Any]:
        return {"student": self.model.state_dict(), "objective": self.objective.state(),
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "config": to_dict(self.cfg), "config_hash": config_hash(self.cfg), "loss": self.loss,
                "student_rng": self.rng}

    def load_state(self, state: dict[str, Any]) -> None:
        self.rng = {k: v.cpu() for k, v in state["student_rng"].items()}
        self.model.load_state_dict(state["student"])
        self.objective.load_state(state["objective"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.loss = float(state["loss"])

    @contextmanager
    def own_rng(self, device: torch.device) -> Iterator[None]:
        """Runs the block on this student's RNG stream, leaving the global one as it was."""
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            set_rng_state(self.rng)
            yield
            self.rng = rng_state()


@dataclass
class _Loop:
    """What the run carries from step to step: its students, teacher, data, and where it stands."""

    students: list[_Student]
    teacher: TeacherPass | None
    views: ViewSet
    teacher_views: tuple[str, ...]  # the views the teacher embeds each step, for every student that reads them
    dataset: KeyedViewDataset
    sampler: GlobalBatchSampler
    steps_per_epoch: int
    total: int
    step: int = 0
    last_checkpoint: Path | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # metrics records up to the resume point

    @property
    def epoch(self) -> int:
        return self.step // self.steps_per_epoch

    def checkpoint_state(self) -> dict[str, Any]:
        return {"step": self.step, "epoch": self.epoch, "rng": rng_state(),
                **(self.teacher.state() if self.teacher is not None else {}),
                "students": {m.name: m.state() for m in self.students}}


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
    student as it would train alone (bitwise, on one CPU process). A run of one student is a cohort of one:
    every student exports to `run_dir/export/<name>/` (`run_folder.export_dir`), its checkpoint state is
    under `students.<name>`, its metrics under `students.<name>` of each record.

    `student` (a backbone built with num_classes=0, or one per config) and `teacher` (a network whose
    output is the teacher embedding) replace the networks the configs name; `source` replaces the
    configured data source. `choices`: how the config was made (`seedzoo distill`'s scaling), written with
    it to `choices.json` and into run.json. `resume`: None (fresh run), "auto" (the newest valid checkpoint of
    `run_dir`, if any) or a checkpoint path. A fresh run into a folder that holds a run is refused unless
    `overwrite` (which removes what the earlier run wrote); resuming a finished run changes nothing.
    """

    def __init__(self, cfg: TrainConfig | Sequence[TrainConfig], run_dir: str | Path, *,
                 student: nn.Module | Sequence[nn.Module] | None = None, teacher: nn.Module | None = None,
                 source: ImageSource | None = None, resume: str | None = None, overwrite: bool = False,
                 command: str = "", choices: dict[str, Any] | None = None) -> None:
        # teacher.target resolved (and a features teacher's width given to the students' heads) before
        # anything is recorded: the run's config says what it trained
        self.cfgs = [resolve_teacher(c) for c in ([cfg] if isinstance(cfg, TrainConfig) else cfg)]
        if teacher is not None:  # a given teacher's width is what its students are checked against
            width = embedding_width(teacher, self.cfgs[0].data.image_size)
            self.cfgs = [with_teacher_width(c, width) for c in self.cfgs]
        self.names = check_cohort(self.cfgs)
        self.cfg, self.run_dir = self.cfgs[0], Path(run_dir)  # cfg: the settings all students share
        backbones = student if isinstance(student, Sequence) else [student] * len(self.cfgs)
        if len(backbones) != len(self.cfgs):
            raise ValueError(f"{len(backbones)} student backbones for {len(self.cfgs)} configs: pass one each")
        self._students, self._teacher, self._source = list(backbones), teacher, source
        self.resume, self.overwrite, self.choices = resume, overwrite, choices
        self._checks: RunChecks | None = None  # the export check's images and references (main process)
        self._monitor_splits: dict[tuple[int, int], MonitorSplit | None] = {}
        self.command = command or " ".join(["seedzoo", "train", *sys.argv[1:]])

    # --- set-up ------------------------------------------------------------------------------

    def _build_teacher(self, plans: list[DevicePlan], device: torch.device) -> TeacherPass | None:
        """The teacher of the students that distil one (built once, for all), or None."""
        distilling = [(c, p) for c, p in zip(self.cfgs, plans) if get_method(c.method).needs_teacher]
        if not distilling:
            return None
        cfg, plan = distilling[0]  # the cohort check made the students' teachers agree
        # a random-init teacher is saved in checkpoints to be resumable; a pretrained one is reloaded
        return TeacherPass(self._teacher_network(cfg), plan.teacher, save=not cfg.teacher.pretrained).to(device)

    def _teacher_network(self, cfg: TrainConfig) -> nn.Module:
        if self._teacher is not None:
            return self._teacher
        t = cfg.teacher  # its weights' path was checked with the config (config_problems)
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

    def _write_run_config(self, plans: list[DevicePlan], device: torch.device) -> None:
        """config.yaml (one YAML document per student) and device_plan.json (the teacher's plan, each
        student's by name, and the machine)."""
        choices = self.choices or {}
        made = [f"# {c['key']} = {c['value']}: {c['why']}\n" for c in choices.get("choices", [])]
        if made:  # how the recipe was scaled to the data, as comments (choices.json holds them as data)
            made.insert(0, f"# recipe {choices['recipe']} scaled to {choices['images']:,} images:\n")
            write_atomic(self.run_dir / CHOICES_FILE, json.dumps(choices, indent=2) + "\n")
        write_atomic(self.run_dir / CONFIG_FILE, "".join(made) + "---\n".join(
            f"# config_hash: {config_hash(c)}\n" + dump_yaml(c) for c in self.cfgs))
        record = {"device": plans[0].device, "native_bf16": plans[0].native_bf16,
                  "teacher": next((p.teacher.__dict__ for c, p in zip(self.cfgs, plans)
                                   if get_method(c.method).needs_teacher), None),
                  "students": {n: p.student.__dict__ for n, p in zip(self.names, plans)}}
        record["data_workers"] = workers = loader_workers(self.cfg.data.workers)  # what the loader starts
        record["machine"] = machine(device)
        if workers < self.cfg.data.workers:
            print(f"data.workers={self.cfg.data.workers} is more than the CPUs this process may use: "
                  f"{workers} loader workers (recorded in {PLAN_FILE})", file=sys.stderr)
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

    def _build_loop(self, info: D.DistInfo, plans: list[DevicePlan]) -> _Loop:
        """The students, their teacher and the data, as a fresh run starts them."""
        cfg = self.cfg
        students = self._build_students(info, plans)
        # what the students read: the union of their methods' views, and of the views the teacher embeds
        views = ViewSet([v for m in students for v in m.method.views(m.cfg)])
        teacher_views = tuple(dict.fromkeys(v for m in students for v in m.method.teacher_views(m.cfg)))
        source = self._source if self._source is not None else build_source(
            cfg.data.source, cfg.data.path, cfg.data.subset)
        teacher = self._build_teacher(plans, info.device)
        if views.neighbours and teacher is None:
            raise ValueError("views of a neighbour need a teacher to find the neighbours")
        dataset = KeyedViewDataset(source, views, seed=cfg.seed, on_error=cfg.data.on_error)
        sampler = GlobalBatchSampler(len(dataset), cfg.global_batch, info.rank, info.world_size, cfg.seed)
        steps_per_epoch = len(dataset) // cfg.global_batch
        total = cfg.epochs * steps_per_epoch
        total = min(total, cfg.max_steps) if cfg.max_steps else total
        return _Loop(students, teacher, views, teacher_views, dataset, sampler, steps_per_epoch, total)

    # --- the run: check, restore, run, finish ---------------------------------------------------

    def fit(self) -> RunResult:
        owns_group = not (torch.distributed.is_available() and torch.distributed.is_initialized())
        info = D.init_distributed(self.cfg.device)
        try:
            # One writer per folder: rank 0 holds its lock for the whole run (the other ranks follow it).
            with hold_run_folder(self.run_dir) if info.is_main else nullcontext():
                return self._fit(info)
        finally:
            if owns_group:
                D.cleanup()

    def _fit(self, info: D.DistInfo) -> RunResult:
        t0 = time.perf_counter()
        self._check(info)
        point = self._open_folder(info)
        finished = read_finished(self.run_dir) if point is not None else None
        if point is not None and finished is not None and is_finished(finished, point.step, self._config_hashes()):
            return RunResult.from_record(self.run_dir, finished, point.path, already_finished=True)
        plans = [resolve_plan(c, info.device) for c in self.cfgs]
        if any(c.precision == "fp16" for c in self.cfgs) and info.device.type != "cuda" and info.is_main:
            print("precision=fp16 applies on GPU only: this CPU run trains in fp32 (bf16 is available)",
                  file=sys.stderr)
        for c in self.cfgs if info.is_main else ():
            for warning in get_method(c.method).config_warnings(c):
                print(f"{c.name}: {warning}", file=sys.stderr)
        # Everything that can fail before the first step runs before the first file is written: a run that
        # stops here leaves its folder as it found it.
        loop = self._build_loop(info, plans)
        self._check_built(loop, info)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if info.is_main:
            self._write_run_config(plans, info.device)
        if loop.views.neighbours:  # views of each image's neighbours: the teacher's bags, once per run
            assert loop.teacher is not None
            loop.views.bags = run_neighbours(self.run_dir, loop.teacher.network, loop.dataset.source, self.cfg,
                                             loop.views.neighbours, info.device)
        self._restore(loop, point, info)
        logger = MetricsLogger(self.run_dir, info.is_main, loop.total, loop.step, self.cfg.log_every,
                               loop.steps_per_epoch)
        if info.is_main:
            who = ", ".join(f"{m.name} ({m.method.trained_by})" for m in loop.students)
            logger.info(f"run {who}: {info.world_size} process(es) on {info.device.type}, {loop.total} steps of "
                        f"global batch {self.cfg.global_batch}, into {self.run_dir}")
            teacher = f"teacher {_describe(loop.teacher.plan)}; " if loop.teacher is not None else ""
            logger.info(f"device plan: {teacher}student " + "; ".join(_describe(m.plan) for m in loop.students))
        try:
            self._run(loop, info, logger)
            if self._checks is not None:  # the statistics and the spread of what is about to be exported
                for m in loop.students:
                    self._check_export(m, loop.step, logger)
        finally:
            logger.close()
        return self._finish(loop, info, t0)

    def _check(self, info: D.DistInfo) -> None:
        """Refuse the configs before any work: their values (also here, not only in load_config: a config
        built in Python has not been validated), then the sizes (too small for the networks, or more than
        the device holds)."""
        problems = [(n, p) for n, c in zip(self.names, self.cfgs) for p in config_problems(c, info.world_size)]
        if not problems:
            problems = [(n, p) for n, c, backbone in zip(self.names, self.cfgs, self._students)
                        for p in fit_problems(c, info.device, info.world_size, student=backbone is None,
                                              teacher=self._teacher is None)]
        if problems:
            raise ConfigError(*(f"{name}: {p}" for name, p in problems))

    def _check_built(self, loop: _Loop, info: D.DistInfo) -> None:
        """What the built networks can tell before any work: the width of the teacher the config built
        (against `teacher.embed_dim`, which the methods checked the students against); and each student's
        features at random init, the reference of the export check (before a checkpoint is loaded)."""
        if loop.teacher is not None and self._teacher is None:
            problem = width_problem(self.cfg, embedding_width(loop.teacher.network, self.cfg.data.image_size))
            if problem is not None:
                raise ConfigError(problem)
        if info.is_main:
            d = self.cfg.data
            self._checks = RunChecks(loop.dataset.source, EvalTransform(d.image_size, mean=d.mean, std=d.std),
                                     self.cfg.seed, max(self.cfg.global_batch // info.world_size, 2), info.device)
            for m in loop.students:
                self._checks.add_reference(m.name, self._random_init(m, info.device))

    def _random_init(self, student: _Student, device: torch.device) -> nn.Module:
        """The student's architecture at random init: the student itself before any step, unless it
        starts from weights (then a fresh one, drawn from a stream of its own)."""
        if not student.cfg.student.pretrained:
            return student.model.backbone
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(student.cfg.seed)
            return create_backbone(student.cfg.student.arch).to(device)

    def _open_folder(self, info: D.DistInfo) -> ResumePoint | None:
        """The run folder made ready (an earlier run removed with `overwrite`, leftovers of a kill
        cleared) and the checkpoint to resume from, verified before anything is written."""
        check_run_folder(self.run_dir, self.resume, self.overwrite)
        D.barrier()  # every rank sees the folder as it was before rank 0 clears or writes into it
        if info.is_main:
            if self.overwrite and (removed := clear_run(self.run_dir)):
                print(f"--overwrite: removed the earlier run's {', '.join(removed)} from {self.run_dir}",
                      file=sys.stderr)
            for path, size in remove_leftovers(self.run_dir):
                print(f"removed {path.name} ({size / 1e6:.1f} MB), left by an interrupted save", file=sys.stderr)
        return resolve_resume(self.resume, self.run_dir)

    def _restore(self, loop: _Loop, point: ResumePoint | None, info: D.DistInfo) -> None:
        """Put `loop` where the checkpoint left it, and cut the run's later checkpoints and metrics."""
        if point is not None:
            state = point.state
            if info.is_main:
                for _path, reason in point.damaged:
                    print(f"{reason}; resuming from the older {point.path.name} instead", file=sys.stderr)
            saved = state["students"]
            if sorted(saved) != sorted(self.names):
                raise ValueError(f"{point.path} holds the students {', '.join(map(repr, saved))}, this run "
                                 f"trains {', '.join(map(repr, self.names))}: resume with the same recipes")
            if loop.teacher is not None:
                loop.teacher.load_state(state)
            for m in loop.students:
                m.load_state(saved[m.name])
                if saved[m.name]["config_hash"] != config_hash(m.cfg) and info.is_main:
                    changed = _changed_keys(saved[m.name]["config"], to_dict(m.cfg))
                    print(f"resuming {point.path} with a changed config of {m.name}: {', '.join(changed)}",
                          file=sys.stderr)
            set_rng_state({k: v.cpu() for k, v in state["rng"].items()})
            loop.step, loop.last_checkpoint = int(state["step"]), point.path
        if info.is_main and self.resume:  # also when no checkpoint was found: the run starts from step 0
            for path in discard_after(self.run_dir, loop.step):
                print(f"removed {path.name}, newer than the resume point", file=sys.stderr)
            loop.history = truncate_metrics(self.run_dir, loop.step)  # what follows the resume point runs again
        for m in loop.students:
            m.knn = last_knn(loop.history, m.cfg.monitor.knn_k, m.name)[1]

    def _run(self, loop: _Loop, info: D.DistInfo, logger: MetricsLogger) -> None:
        """The steps from `loop.step` to `loop.total`: checkpoints as configured, the kNN monitor at
        epoch ends. SIGINT and SIGTERM wait for the end of the step they arrive in, which is then saved
        (`interrupts.py`): an interrupted run resumes where it stopped, not at its last periodic save."""
        interrupts = Interrupts()
        try:
            with interrupts.installed():
                self._steps(loop, info, logger, interrupts)
        except KeyboardInterrupt:
            if interrupts.whole and loop.step and (loop.last_checkpoint is None
                                                   or checkpoint_step(loop.last_checkpoint) != loop.step):
                loop.last_checkpoint = self._save(loop, info) or loop.last_checkpoint
                logger.info(f"interrupted: saved checkpoint {loop.last_checkpoint} (step {loop.step})")
            raise

    def _steps(self, loop: _Loop, info: D.DistInfo, logger: MetricsLogger, interrupts: Interrupts) -> None:
        cfg, device = self.cfg, info.device
        if loop.step and loop.step % loop.steps_per_epoch == 0:  # a kill between an epoch's checkpoint and its kNN
            for m in loop.students:
                if last_knn(loop.history, m.cfg.monitor.knn_k, m.name)[0] != loop.step:
                    m.knn = self._monitor(m, loop.step, loop.epoch, info, logger) or m.knn
        while loop.step < loop.total:
            epoch, first_batch = divmod(loop.step, loop.steps_per_epoch)
            loop.sampler.set_epoch(epoch, first_batch)
            loader = QuietLoader(loop.dataset, batch_sampler=loop.sampler,
                                 num_workers=loader_workers(cfg.data.workers),
                                 pin_memory=device.type == "cuda")
            t_prev = time.perf_counter()
            for batch in loader:
                with interrupts.step():
                    t_data = time.perf_counter()
                    views = {k: batch[k].to(device, non_blocking=True) for k in loop.views.names}
                    # The teacher's pass, once for every student that distils it.
                    targets = loop.teacher.targets(views, loop.teacher_views) if loop.teacher is not None else {}
                    skipped = int(D.all_reduce_sum(batch["skipped"].sum().to(device)))
                    for m in loop.students:
                        with m.own_rng(device):
                            self._step(m, views, targets, loop, info)
                    loop.step += 1
                    t_end = time.perf_counter()
                    logger.step({"step": loop.step, "epoch": epoch,
                                 "images_per_s": cfg.global_batch / max(t_end - t_prev, 1e-9),
                                 "data_wait": (t_data - t_prev) / max(t_end - t_prev, 1e-9), "skipped": skipped,
                                 "students": {m.name: {"loss": m.loss, "lr": m.optimizer.param_groups[0]["lr"]}
                                              for m in loop.students}})
                    t_prev = t_end
                    if loop.step % cfg.save_every == 0 or loop.step % loop.steps_per_epoch == 0 \
                            or loop.step == loop.total:
                        loop.last_checkpoint = self._save(loop, info) or loop.last_checkpoint
                        logger.info(f"saved checkpoint {loop.last_checkpoint} (step {loop.step})")
                if loop.step >= loop.total:
                    break
            if loop.step % loop.steps_per_epoch == 0:
                for m in loop.students:
                    m.knn = self._monitor(m, loop.step, loop.epoch, info, logger) or m.knn

    def _finish(self, loop: _Loop, info: D.DistInfo, t0: float) -> RunResult:
        """Each student's export, run.json when the run is complete, and what it ended with."""
        exports = {m.name: self._export(m, loop.step) if info.is_main and m.cfg.export else None
                   for m in loop.students}
        record = {"step": loop.step, "epoch": loop.epoch,
                  "checkpoint": loop.last_checkpoint.name if loop.last_checkpoint is not None else None,
                  **({"choices": self.choices} if self.choices else {}),
                  "students": {m.name: {"config_hash": config_hash(m.cfg), "loss": m.loss, "knn": m.knn,
                                        "export": str(e.relative_to(self.run_dir)) if (e := exports[m.name])
                                        else None, "health": m.health}
                               for m in loop.students}}
        if info.is_main and loop.last_checkpoint is not None and loop.step == loop.total:
            mark_finished(self.run_dir, record)
        D.barrier()
        return RunResult.from_record(self.run_dir, record, loop.last_checkpoint, wall_s=time.perf_counter() - t0)

    def _config_hashes(self) -> dict[str, str]:
        return {name: config_hash(c) for name, c in zip(self.names, self.cfgs)}

    def _save(self, loop: _Loop, info: D.DistInfo) -> Path | None:
        """The checkpoint of `loop`'s step (written by the main process; None elsewhere)."""
        if not info.is_main:
            return None
        try:
            return save_checkpoint(loop.checkpoint_state(), self.run_dir, loop.step, self.cfg.keep_last)
        except NonFiniteStateError as err:
            raise _non_finite(f"the weights became non-finite at step {loop.step} (epoch {loop.epoch}): {err}",
                              loop.last_checkpoint) from None

    def _step(self, m: _Student, views: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], loop: _Loop,
              info: D.DistInfo) -> None:
        """One optimisation step of student `m` on this batch."""
        o, step = m.cfg.optim, loop.step
        lr = learning_rate(step, loop.steps_per_epoch, m.cfg.epochs, o.base_lr, m.cfg.global_batch,
                           o.warmup_epochs, per_step=o.schedule == "step")
        for group in m.optimizer.param_groups:
            group["lr"] = lr
        with m.plan.autocast(info.device.type):
            loss, pending = m.objective.compute(m.net, {k: m.plan.input(v) for k, v in views.items()}, step,
                                                targets, loop.epoch)
        m.loss = float(D.all_reduce_sum(loss.detach().float())) / info.world_size
        if not math.isfinite(m.loss):
            raise _non_finite(f"the loss of student {m.name} is {m.loss} at step {step + 1} (epoch {loop.epoch}), "
                              "before updating anything", loop.last_checkpoint)
        m.optimizer.zero_grad(set_to_none=True)
        m.scaler.scale(loss).backward()
        m.scaler.step(m.optimizer)
        m.scaler.update()
        m.objective.update(pending)

    # --- reporting ---------------------------------------------------------------------------

    def _monitor(self, student: _Student, step: int, epoch: int, info: D.DistInfo,
                 logger: MetricsLogger) -> float | None:
        """The student's kNN monitor at an epoch end, when one is due: recorded and returned."""
        m = student.cfg.monitor
        if not (m.knn_every and epoch % m.knn_every == 0 and info.is_main):
            return None
        seen: dict[str, Any] = {}  # the spread of the features: what an export now would give
        if self._checks is not None:
            spread = self._checks.spread(student.name, student.model.backbone)
            seen = {"spread": spread.trained.spread, "spread_random_init": spread.random_init.spread}
            if spread.collapsed:
                logger.info(f"warning: epoch {epoch} ({student.name}): {spread.describe()}; export_batch_norm="
                            f"{student.cfg.export_batch_norm} decides what the export holds")
        # drawn once per size: every epoch measures the same images, and a student the images it would alone
        sizes = (m.knn_train, m.knn_test)
        if sizes not in self._monitor_splits:
            self._monitor_splits[sizes] = monitor_split(self.cfg.data, m, self.cfg.seed)
        split = self._monitor_splits[sizes]
        if split is None:
            logger.info(f"kNN monitor skipped: data.source={self.cfg.data.source} has no labels")
            if seen:
                logger.write({"step": step, "epoch": epoch, "students": {student.name: seen}})
            return None
        top1 = knn_monitor(student.model.backbone, split, m.knn_k, info.device)
        logger.write({"step": step, "epoch": epoch,
                      "students": {student.name: {f"knn{m.knn_k}_top1": top1, **seen}}})
        logger.info(f"epoch {epoch}: kNN-{m.knn_k} top-1 {top1:.2f}% ({student.name})")
        return top1

    def _check_export(self, student: _Student, step: int, logger: MetricsLogger) -> None:
        """The export check: batch-norm statistics recomputed where needed, then the spread of the features."""
        assert self._checks is not None
        health = self._checks.export(student.name, student.model.backbone, step, student.cfg.export_batch_norm)
        student.health = health.record()
        logger.info(f"export ({student.name}): batch-norm statistics {health.batch_norm}")
        logger.info(f"{'warning: ' if health.collapsed else ''}export ({student.name}): {health.check.describe()}")

    def _export(self, student: _Student, step: int) -> Path:
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
            **({"export_check": student.health} if student.health is not None else {}),
        }
        if student.method.needs_teacher:
            block["teacher"] = {"entry": cfg.teacher.entry, "arch": cfg.teacher.arch,
                                "pretrained": cfg.teacher.pretrained or "random init", "target": cfg.teacher.target,
                                **student.method.lineage(cfg)}
        state = {k: v.detach().cpu().contiguous() for k, v in model.backbone.state_dict().items()}
        head = ({k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}
                if student.method.export_head else None)
        return write_run_export(export_dir(self.run_dir, student.name), architecture=cfg.student.arch,
                                backbone=state, head=head, entry=entry, seedzoo=block, image_size=cfg.data.image_size,
                                mean=cfg.data.mean, std=cfg.data.std)


def _non_finite(what: str, last_checkpoint: Path | None) -> NonFiniteLossError:
    """The one message of a run stopped by a NaN or an infinity."""
    kept = f"the last good checkpoint is {last_checkpoint}" if last_checkpoint else "no checkpoint was written yet"
    return NonFiniteLossError(f"{what}; the run stops and nothing was saved, {kept}. Lower optim.base_lr, use "
                              "precision=bf16 or fp32, or check the data, then continue with --resume auto")


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
