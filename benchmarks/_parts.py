"""What the benchmarks share: the settings, the trainer's step and its best parts, the authors' SEED
module re-implemented from its published description, and interleaved timing.

Every benchmark times its candidates interleaved in each repeat (A, B, C, A, B, C, ...) and compares
medians, so that load from other processes hits every candidate alike; the ratios are the result, the
absolute images/s depend on the machine.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seedzoo.training.config import TrainConfig, apply_overrides
from seedzoo.training.device_plan import NetworkPlan, resolve_plan
from seedzoo.training.loss import seed_loss
from seedzoo.training.methods.seed import SeedObjective
from seedzoo.training.networks import build_student, build_teacher
from seedzoo.training.schedule import scaled_lr
from seedzoo.training.teacher import TeacherPass


@dataclass(frozen=True)
class Setting:
    student: str
    teacher: str
    teacher_head: int
    size: int
    batch: int
    queue: int


SETTINGS = {
    # The Fashion-MNIST SEED recipe (seed_mbv3_large.fmnist_mocov2_r18).
    "fmnist": Setting("seed_mobilenetv3_large", "seed_resnet18_lowres", 512, 32, 256, 16384),
    # The ImageNet-like setting of the issue: MobileNetV3-Large from ResNet-50, 64 px, batch 32.
    "imagenet64": Setting("seed_mobilenetv3_large", "seed_resnet50", 2048, 64, 32, 4096),
    # The check of students trained together: a ResNet-50 teacher at 32 px.
    "r50_32": Setting("seed_mobilenetv3_large", "seed_resnet50", 2048, 32, 128, 4096),
}


def quick(s: Setting) -> Setting:
    """A size that runs in seconds on a busy 2-core machine (checks the script, not the figures). It
    also runs on one thread: on an oversubscribed machine two spinning threads are many times slower."""
    torch.set_num_threads(1)
    return dataclasses.replace(s, batch=min(s.batch, 8), queue=256)


def setting_config(s: Setting, *overrides: str) -> TrainConfig:
    return apply_overrides(TrainConfig(), [
        "device=cpu", f"student.arch={s.student}", f"teacher.arch={s.teacher}", f"teacher.head_hidden={s.teacher_head}",
        f"global_batch={s.batch}", f"distill.queue_size={s.queue}", f"data.image_size={s.size}", *overrides])


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@dataclass(frozen=True)
class Timing:
    seconds: float  # median
    spread: float  # (max - min) / median over the repeats: how noisy the machine was

    def rate(self, images: int) -> float:
        return images / self.seconds


def interleaved(parts: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, Timing]:
    """Each part's median time, the parts run in turn in every repeat."""
    times: dict[str, list[float]] = {k: [] for k in parts}
    for i in range(warmup + repeats):
        for name, fn in parts.items():
            t = timed(fn)
            if i >= warmup:
                times[name].append(t)
    out = {}
    for k, v in times.items():
        med = statistics.median(v)
        out[k] = Timing(med, (max(v) - min(v)) / med)
    return out


class SeedStep:
    """The trainer's SEED step (`TeacherPass` and `SeedObjective` under the device plan the trainer resolves): teacher
    pass, student forward, loss, backward, SGD update, enqueue."""

    def __init__(self, cfg: TrainConfig, teacher: nn.Module | None = None) -> None:
        self.device = torch.device("cuda" if cfg.device == "cuda" else "cpu")
        self.plan = resolve_plan(cfg, self.device)
        torch.manual_seed(cfg.seed)
        c, t = cfg.student, cfg.teacher
        student = build_student(c.arch, c.pretrained, c.head_hidden, c.embed_dim)
        if self.plan.student.channels_last:
            student.to(memory_format=torch.channels_last)
        teacher = teacher if teacher is not None else build_teacher(
            t.arch, t.pretrained, t.head_hidden, t.head_batch_norm, t.embed_dim, t.entry)
        self.teacher = TeacherPass(teacher, self.plan.teacher).to(self.device)
        self.objective = SeedObjective(student, cfg).to(self.device).train()
        self.model = self.objective.model
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=scaled_lr(0.03, cfg.global_batch),
                                         momentum=0.9, weight_decay=1e-4)

    def targets(self, views: dict[str, Tensor]) -> dict[str, Tensor]:
        """The teacher's pass: what several students of one teacher share."""
        return self.teacher.targets(views, ("image",))

    def __call__(self, x: Tensor, targets=None) -> None:
        views = {"image": self.plan.student.input(x)}
        targets = targets if targets is not None else self.targets(views)
        with self.plan.student.autocast(self.device.type):
            loss, pending = self.objective.compute(self.model, views, 0, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.objective.update(pending)


def best_teacher(teacher: nn.Module, plan: NetworkPlan) -> Callable[[Tensor], Tensor]:
    """The frozen teacher's forward alone, in `plan` (the trainer's choice for this device)."""
    fn = plan.prepare(teacher)

    @torch.no_grad()
    def forward(x: Tensor) -> Tensor:
        with plan.autocast(x.device.type):
            return fn(plan.input(x)).float()

    return forward


def student_update(step: SeedStep, targets: Tensor) -> Callable[[Tensor], None]:
    """The student's forward-backward-update alone against fixed targets, in the trainer's plan."""
    plan, model, queue = step.plan.student, step.model, step.objective.queue.queue

    def update(x: Tensor) -> None:
        with plan.autocast(x.device.type):
            loss = seed_loss(model(plan.input(x)), targets, queue)
        step.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        step.optimizer.step()

    return update


class AuthorsSEED(nn.Module):
    """SEED as the authors' `seed/builder.py` computes it (our code, from the paper and that file's
    description): L2-normalised student and teacher embeddings, a D x K queue, logits by einsum with
    the positive first, student logits / t, teacher softmax at `temp`; the caller applies the soft
    cross-entropy. NCHW, fp32, as the official training script runs it on CPU."""

    def __init__(self, student: nn.Module, teacher: nn.Module, dim: int = 128, K: int = 65536, t: float = 0.2,
                 temp: float = 1e-4) -> None:
        super().__init__()
        self.student, self.teacher, self.K, self.t, self.temp = student, teacher, K, t, temp
        for p in self.teacher.parameters():
            p.requires_grad = False
        self.register_buffer("queue", F.normalize(torch.randn(dim, K), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def _enqueue(self, keys: Tensor) -> None:
        ptr, n = int(self.queue_ptr), keys.shape[0]
        self.queue[:, ptr:ptr + n] = keys.T
        self.queue_ptr[0] = (ptr + n) % self.K

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        s = F.normalize(self.student(image), dim=1)
        with torch.no_grad():
            t = F.normalize(self.teacher(image), dim=1)
        queue = self.queue.clone().detach()
        logit_s = torch.cat([torch.einsum("nc,nc->n", s, t)[:, None], torch.einsum("nc,ck->nk", s, queue)], 1)
        logit_t = torch.cat([torch.einsum("nc,nc->n", t, t)[:, None], torch.einsum("nc,ck->nk", t, queue)], 1)
        self._enqueue(t)
        return logit_s / self.t, F.softmax(logit_t / self.temp, dim=1)


def authors_step(s: Setting, teacher: nn.Module | None = None) -> Callable[[Tensor], None]:
    """One training step of `AuthorsSEED` on the same networks: soft cross-entropy, backward, SGD."""
    torch.manual_seed(0)
    teacher = teacher if teacher is not None else build_teacher(s.teacher, head_hidden=s.teacher_head)
    module = AuthorsSEED(build_student(s.student), teacher.eval(), K=s.queue).train()
    module.teacher.eval()
    optimizer = torch.optim.SGD(module.student.parameters(), lr=scaled_lr(0.03, s.batch), momentum=0.9,
                                weight_decay=1e-4)

    def step(x: Tensor) -> None:
        logit_s, p_t = module(x)
        loss = -(p_t * F.log_softmax(logit_s, dim=1)).sum(1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def threads_line() -> str:
    return f"{torch.get_num_threads()} threads, torch {torch.__version__}"
