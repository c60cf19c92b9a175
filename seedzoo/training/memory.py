"""Whether a run can fit, decided before any work: the networks are built and run on the meta device.

A forward on the meta device computes every shape and allocates nothing, so it answers two questions
cheaply: does the architecture accept this image size at all (a fixed-size ViT does not), and how many
bytes of activations does one image leave for the backward pass. The estimate is a floor: it
counts parameters, gradients, momentum, the activations autograd keeps (one per leaf module output, in
place ones excepted), the teacher's largest activation and the queues, not the allocator's slack or
kernels' workspace. A run whose floor exceeds the memory free on its device is refused.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .config import TrainConfig


@dataclass
class Footprint:
    """One image through an architecture on the meta device."""

    params: int  # parameter count
    activations: int  # bytes (fp32) of the leaf modules' outputs: what the backward pass keeps
    largest: int  # bytes (fp32) of the largest single output: a no-grad forward's peak, roughly


def footprint(arch: str, image_size: int) -> Footprint:
    """Build `arch` on the meta device and pass one `image_size` image through it (raises if it cannot)."""
    import timm

    from .. import models  # noqa: F401 (registers seedzoo's architectures with timm)

    with torch.device("meta"):
        model = timm.create_model(arch, num_classes=0)
    model.eval()  # batch norm in training mode refuses a batch of one; the shapes are the same
    sizes: list[int] = []

    def record(module: nn.Module, inputs: object, output: object) -> None:
        if isinstance(output, torch.Tensor) and not getattr(module, "inplace", False):
            sizes.append(output.numel() * 4)

    hooks = [m.register_forward_hook(record) for m in model.modules() if not any(True for _ in m.children())]
    try:
        with torch.no_grad():
            model(torch.empty(1, 3, image_size, image_size, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return Footprint(sum(p.numel() for p in model.parameters()), sum(sizes), max(sizes, default=0))


def available_bytes(device: torch.device) -> int | None:
    """Memory free for one process on `device` (None when it cannot be read)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        meminfo = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    for line in meminfo.splitlines():
        if line.startswith("MemAvailable:"):
            local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)  # processes on this machine share it
            return int(line.split()[1]) * 1024 // max(local, 1)
    return None


def fit_problems(cfg: TrainConfig, device: torch.device, world_size: int = 1, *, student: bool = True,
                 teacher: bool = True) -> list[str]:
    """What stops `cfg` from running on `device`: an image size outside the architectures' range, or a
    memory floor above what is free. `student`/`teacher`: whether the config's networks are the ones
    trained (False when the caller passes its own modules, which are not estimated)."""
    from .methods import get_method

    d, method = cfg.data, get_method(cfg.method)
    archs = ([("student.arch", cfg.student.arch)] if student else []) + \
        ([("teacher.arch", cfg.teacher.arch)] if teacher and method.needs_teacher else [])
    prints: dict[str, Footprint] = {}
    out = []
    for key, arch in archs:
        try:
            prints[key] = footprint(arch, d.image_size)
        except Exception as err:  # noqa: BLE001 (the network's own error names the mismatch)
            native = _native_size(arch)
            try:
                footprint(arch, native)
            except Exception:  # noqa: BLE001, S112 (not even its own size passes on meta: no estimate)
                continue
            out.append(f"data.image_size={d.image_size} does not pass through {key}={arch} "
                       f"({_first_line(err)}); it takes {native} px")
    if out or not prints:
        return out
    per_process = max(cfg.global_batch // max(world_size, 1), 1)
    low_precision = cfg.precision in ("bf16", "fp16") and device.type == "cuda"
    needs = method.memory(cfg)
    need = needs.state_bytes
    if "student.arch" in prints:
        s = prints["student.arch"]
        need += needs.weight_copies * s.params * 4
        views = {v.name: v for v in method.views(cfg)}
        for name in needs.student_views:
            view = views[name]
            try:
                activations = s.activations if view.size == d.image_size else \
                    footprint(cfg.student.arch, view.size).activations
            except Exception as err:  # noqa: BLE001
                return [f"the view '{name}' of {view.size} px does not pass through student.arch="
                        f"{cfg.student.arch} ({_first_line(err)})"]
            need += per_process * (view.crops or 1) * activations // (2 if low_precision else 1)
    if "teacher.arch" in prints:
        t = prints["teacher.arch"]
        need += t.params * 4 + 2 * per_process * t.largest
    free = available_bytes(device)
    if free is not None and need > free:
        out.append(f"data.image_size={d.image_size} with global_batch={cfg.global_batch}: a step needs at least "
                   f"{_gb(need)} on {device.type} ({per_process} images per process), {_gb(free)} are free: "
                   "lower data.image_size or global_batch")
    return out


def _native_size(arch: str) -> int:
    import timm

    from .. import models  # noqa: F401

    try:
        cfg = timm.models.get_pretrained_cfg(arch)
        return int(cfg.input_size[-1]) if cfg is not None else 224
    except Exception:  # noqa: BLE001 (an architecture without a pretrained cfg)
        return 224


def _gb(n: int) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
