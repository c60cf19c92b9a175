"""The device plan: "auto" resolves per device, explicit config values win, the run folder records it."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from seedzoo.training.config import TrainConfig, apply_overrides
from seedzoo.training.device_plan import NetworkPlan, native_bf16, resolve_plan

from test_train import run, tiny_config, write_image_folder

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("data") / "train")


def test_auto_runs_the_teacher_in_bf16_only_where_the_cpu_has_it_and_both_networks_channels_last():
    plan = resolve_plan(TrainConfig(), CPU)
    assert plan.teacher.precision == ("bf16" if native_bf16(CPU) else "fp32")
    assert plan.student.precision == "fp32"  # the student trains in the configured precision
    assert plan.student.channels_last and plan.teacher.channels_last
    assert not plan.student.compile and not plan.teacher.compile


def test_explicit_values_override_auto():
    cfg = apply_overrides(TrainConfig(), ["teacher.precision=fp32", "teacher.channels_last=false",
                                          "channels_last=false", "precision=bf16", "teacher.compile=true"])
    plan = resolve_plan(cfg, CPU)
    assert plan.teacher == NetworkPlan("fp32", channels_last=False, compile=True)
    assert plan.student == NetworkPlan("bf16", channels_last=False, compile=False)


def test_fp16_falls_back_to_fp32_on_cpu():
    cfg = apply_overrides(TrainConfig(), ["teacher.precision=fp16", "precision=fp16"])
    plan = resolve_plan(cfg, CPU)
    assert plan.teacher.precision == plan.student.precision == "fp32"


def test_bf16_teacher_gives_fp32_embeddings_close_to_fp32():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten(), torch.nn.LazyLinear(16)).eval()
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        ref = net(x)
        plan = NetworkPlan("bf16", channels_last=True)
        with plan.autocast("cpu"):
            out = net(plan.input(x))
    assert out.dtype == torch.bfloat16 and plan.input(x).is_contiguous(memory_format=torch.channels_last)
    assert torch.nn.functional.cosine_similarity(out.float(), ref).min() > 0.99


def test_run_folder_records_the_resolved_plan(images, tmp_path):
    run(tiny_config(images, "max_steps=1", "teacher.precision=fp32"), tmp_path / "r")
    record = json.loads((tmp_path / "r" / "device_plan.json").read_text())
    assert record["device"] == "cpu"
    assert record["teacher"] == {"precision": "fp32", "channels_last": True, "compile": False}
    assert record["students"] == {"student": {"precision": "fp32", "channels_last": True, "compile": False}}


def test_run_folder_records_the_machine_that_ran_it(images, tmp_path):
    run(tiny_config(images, "max_steps=1"), tmp_path / "r")
    record = json.loads((tmp_path / "r" / "device_plan.json").read_text())
    machine = record["machine"]
    assert machine["cpu"] and machine["gpu"] is None and machine["torch"] == torch.__version__
    assert machine["cpus"] == (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    assert (machine["cpu_bf16"] is not None) == record["native_bf16"]
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():  # the kernel's flags, independent of torch's probe
        flags = set(cpuinfo.read_text().split())
        expected = "amx" if "amx_bf16" in flags else "avx512_bf16" if "avx512_bf16" in flags else None
        assert machine["cpu_bf16"] == expected
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        assert machine["cpu"] == (names[0] if names else machine["cpu"])
