"""How each network of a run executes on its device: memory layout, autocast dtype, torch.compile.

A config field set to "auto" is resolved here, per device; explicit values win. The resolved plan is
written to `RUN_DIR/device_plan.json`. What "auto" picks, and why:

- channels_last, both networks: convolutions run in NHWC on oneDNN CPUs and on tensor-core GPUs (NCHW
  inputs are reordered on every call); `benchmarks/distill_throughput.py` measures it.
- the frozen teacher's forward in bf16 autocast where the hardware computes bf16 natively (CPUs with
  AVX512-BF16 or AMX, GPUs that support bf16); its embeddings are cast to fp32 before the loss, where
  logits, softmax and loss stay fp32. `benchmarks/teacher_precision.py` measures what it does to the
  embeddings and to SEED's target.
- the student trains in the configured `precision` (fp32 unless asked): its gradients are the result.
- torch.compile: off unless asked. On CPU its compile time exceeds what it saves on the runs this
  machine can afford; on GPU it has not been measured yet (`benchmarks/gpu_check.sh` does).
"""
from __future__ import annotations

import dataclasses
import platform
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from .config import TrainConfig, usable_cpus

_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _cpu_model() -> str:
    try:  # Linux names the model; platform.processor() there is only the architecture
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_bf16() -> str | None:
    """The CPU's bf16 units: "amx" (AMX tiles), "avx512_bf16", or None (bf16 emulated through fp32)."""
    if hasattr(torch.cpu, "_is_avx512_bf16_supported"):
        flags = {"amx": getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)(),
                 "avx512_bf16": torch.cpu._is_avx512_bf16_supported()}
    else:  # older torch: the kernel's own flags
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
        flags = {"amx": " amx_bf16" in text, "avx512_bf16": " avx512_bf16" in text}
    return next((name for name, present in flags.items() if present), None)


def machine(device: torch.device) -> dict[str, Any]:
    """What ran a run, for its records: one seed of the strategies trained different distilled students on
    an AVX512-BF16 CPU and on an AMX one, while MoCo-v2 alone (no teacher) trained the same to the last
    digit; the bf16 teacher is the likely cause, so a number is only comparable with its machine named."""
    return {"cpu": _cpu_model(), "cpus": usable_cpus(), "cpu_bf16": _cpu_bf16(),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "torch": torch.__version__}


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bf16 in hardware (not by emulation through fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "cpu" and _cpu_bf16() is not None


@dataclass(frozen=True)
class NetworkPlan:
    """How one network runs: `precision` of its autocast ("fp32": none), NHWC or not, compiled or not."""

    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False

    @property
    def dtype(self) -> torch.dtype | None:
        return _DTYPES[self.precision]

    def autocast(self, device_type: str) -> AbstractContextManager:
        """This network's autocast state, whatever the enclosing one (explicitly on or off)."""
        dtype = self.dtype
        return torch.autocast(device_type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)

    def prepare(self, model: nn.Module) -> nn.Module:
        """`model` in this plan's memory format (in place); the callable to run it with."""
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        # torch.compile of a module returns a module (typed as a plain callable)
        return cast(nn.Module, torch.compile(model)) if self.compile else model

    def input(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x


@dataclass(frozen=True)
class DevicePlan:
    device: str
    native_bf16: bool
    student: NetworkPlan
    teacher: NetworkPlan

    def record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _choose(value: Any, auto: bool) -> bool:
    return auto if value == "auto" else bool(value)


def resolve_plan(cfg: TrainConfig, device: torch.device) -> DevicePlan:
    """The plan of `cfg` on `device`: "auto" fields resolved as the module docstring says."""
    bf16 = native_bf16(device)
    student_precision = cfg.precision
    if student_precision == "fp16" and device.type != "cuda":
        student_precision = "fp32"  # fp16 autocast without a GradScaler-backed GPU path: not offered on CPU
    teacher_precision = cfg.teacher.precision
    if teacher_precision == "auto":
        teacher_precision = "bf16" if bf16 else "fp32"
    elif teacher_precision == "fp16" and device.type != "cuda":
        teacher_precision = "fp32"
    return DevicePlan(
        device=device.type, native_bf16=bf16,
        student=NetworkPlan(student_precision, _choose(cfg.channels_last, True), _choose(cfg.compile, False)),
        teacher=NetworkPlan(teacher_precision, _choose(cfg.teacher.channels_last, True),
                            _choose(cfg.teacher.compile, False)),
    )
