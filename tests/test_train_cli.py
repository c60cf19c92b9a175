"""`seedzoo train` / `seedzoo plot` end to end: a SIGKILLed run resumed with `--resume auto` ends as the
uninterrupted run; the smoke preset's export loads with `seedzoo.create_model`."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import seedzoo
from seedzoo.cli import main
from seedzoo.data import fashion_mnist
from seedzoo.training.checkpoint import load_checkpoint

from test_train import assert_same_state, write_image_folder

REPO = Path(__file__).resolve().parents[1]

RECIPE = """\
method: seed
device: cpu
epochs: 4
global_batch: 8
student: {{arch: test_efficientnet, embed_dim: 16, head_hidden: 16}}
teacher: {{arch: test_resnet, head_hidden: 32, embed_dim: 16}}
data: {{source: image_folder, path: {images}, image_size: 16, workers: 0}}
distill: {{queue_size: 32}}
optim: {{warmup_epochs: 1}}
save_every: 4
keep_last: 10
log_every: 1
export: false
"""


def _train_cmd(recipe: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "seedzoo", "train", str(recipe), "--out", str(out), *extra]


@pytest.mark.slow
def test_sigkilled_run_resumes_to_the_uninterrupted_result(tmp_path):
    images = write_image_folder(tmp_path / "train", n=64)  # 8 steps per epoch, 32 in all
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(RECIPE.format(images=images))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = subprocess.run(_train_cmd(recipe, tmp_path / "full"), cwd=REPO, env=env, capture_output=True, text=True)
    assert full.returncode == 0, full.stderr[-2000:]

    child = subprocess.Popen(_train_cmd(recipe, tmp_path / "cut"), cwd=REPO, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    for line in child.stdout:  # kill as soon as a mid-run checkpoint is on disk
        if line.startswith("saved checkpoint") and "(step 12)" in line:
            child.send_signal(signal.SIGKILL)
            break
    child.wait()
    assert child.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert load_checkpoint(tmp_path / "cut")["step"] < 32

    resumed = subprocess.run(_train_cmd(recipe, tmp_path / "cut", "--resume", "auto"), cwd=REPO, env=env,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_same_state(load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "cut"), "tiny")


@pytest.mark.slow
@pytest.mark.skipif(not fashion_mnist.available(), reason="Debian's dataset-fashion-mnist is not installed")
def test_smoke_preset_exports_weights_that_create_model_loads_and_plots(tmp_path):
    out = tmp_path / "smoke"
    code = main(["train", "--preset", "smoke", "--out", str(out), "device=cpu", "data.subset=64",
                 "data.image_size=16", "data.workers=0", "global_batch=16", "distill.queue_size=64", "epochs=1",
                 "monitor.knn_train=64", "monitor.knn_test=32"])
    assert code == 0
    state = load_checkpoint(out)["students"]["smoke"]
    model = seedzoo.create_model("seed_resnet18", pretrained=out)  # the run folder: its one student's export
    assert model.seedzoo_weights.path == out / "export" / "smoke" / "model.safetensors"
    (health,) = [s["health"] for s in json.loads((out / "run.json").read_text())["students"].values()]
    assert health["batch_norm"].startswith("recomputed over 64 training images")  # 4 steps: too few to settle
    for key, value in model.state_dict().items():
        if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue  # the statistics recomputed for the final weights
        assert torch.equal(value, state["student"][f"backbone.{key}"]), key
    head = seedzoo.load_projection_head("seed_resnet18", pretrained=out / "export" / "smoke")
    assert torch.equal(head[2].weight, state["student"]["head.2.weight"])
    assert "knn20_top1" in (out / "metrics.jsonl").read_text()

    assert main(["plot", str(out)]) == 0
    assert (out / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
