"""Distributed training: two gloo processes with half the batch each equal one process with all of it;
`torchrun -m seedzoo train` completes."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from seedzoo.data import fashion_mnist
from seedzoo.training.checkpoint import load_checkpoint
from seedzoo.training.cohort import UNNAMED

from test_train import run, tiny_config, write_image_folder

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, images: str, run_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    run(tiny_config(images, "max_steps=6"), run_dir)


def _losses(run_dir: Path) -> list[float]:
    """The losses of the run's students, step by step."""
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [s["loss"] for r in records for s in r.get("students", {}).values() if "loss" in s]


def test_two_gloo_processes_with_half_batches_equal_one_process(tmp_path):
    images = write_image_folder(tmp_path / "train")
    single = run(tiny_config(images, "max_steps=6"), tmp_path / "single")
    mp.spawn(_worker, args=(2, _free_port(), str(images), str(tmp_path / "ddp")), nprocs=2, join=True)
    x, y = load_checkpoint(single.checkpoint), load_checkpoint(tmp_path / "ddp")
    assert x["step"] == y["step"] == 6
    a, b = x["students"][UNNAMED], y["students"][UNNAMED]
    # The queue holds teacher embeddings gathered in rank order: the same rows as one process.
    assert torch.equal(a["objective"]["queue"]["queue"], b["objective"]["queue"]["queue"])
    assert torch.equal(a["objective"]["queue"]["ptr"], b["objective"]["queue"]["ptr"])
    assert _losses(tmp_path / "single") == pytest.approx(_losses(tmp_path / "ddp"), rel=1e-6)
    for key, value in a["student"].items():
        assert torch.allclose(value, b["student"][key], rtol=0, atol=1e-5), key


@pytest.mark.slow
@pytest.mark.skipif(not fashion_mnist.available(), reason="Debian's dataset-fashion-mnist is not installed")
def test_torchrun_two_processes_runs_the_smoke_preset(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    out = tmp_path / "run"
    cmd = [torchrun, "--standalone", "--nproc-per-node=2", "-m", "seedzoo", "train", "--preset", "smoke",
           "--out", str(out), "device=cpu", "data.subset=32", "data.image_size=16", "data.workers=0",
           "global_batch=8", "distill.queue_size=32", "max_steps=2", "monitor.knn_every=0",
           "student.arch=test_efficientnet", "teacher.arch=test_resnet", "teacher.head_hidden=96"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_checkpoint(out)["step"] == 2
    assert len(_losses(out)) == 2 and (out / "export" / "smoke" / "model.safetensors").is_file()
