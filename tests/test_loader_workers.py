"""The loader worker count is bounded by the CPUs a process may use; the bound is recorded."""
from __future__ import annotations

import json
import os

from seedzoo.training.config import loader_workers

from test_train import run, tiny_config, write_image_folder


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def test_workers_are_bounded_by_the_machine_and_shared_by_local_processes(monkeypatch):
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert loader_workers(100_000) == _cpus()
    assert loader_workers(0) == 0 and loader_workers(1) == 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(4 * _cpus()))  # more processes than CPUs: one worker each
    assert loader_workers(100_000) == 1


def test_a_run_with_too_many_workers_records_what_it_started(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    images = write_image_folder(tmp_path / "train")
    result = run(tiny_config(images, "max_steps=1", "data.workers=100000"), tmp_path / "run")
    assert result.step == 1
    assert json.loads((tmp_path / "run" / "device_plan.json").read_text())["data_workers"] == _cpus()
    assert f"data.workers=100000 is more than the CPUs this process may use: {_cpus()}" in capsys.readouterr().err
