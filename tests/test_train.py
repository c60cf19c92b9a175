"""The engine on one CPU process: exact resume, worker independence, NaN handling, checkpoints,
small patches, MoCo-v2, the schedule. Tiny BN-free networks on 16 px images."""
from __future__ import annotations

import math

import pytest
import torch
from PIL import Image
from torch import nn

from seedzoo.training.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from seedzoo.training.cohort import UNNAMED
from seedzoo.training.config import TrainConfig, apply_overrides
from seedzoo.training.engine import NonFiniteLossError, train
from seedzoo.training.schedule import learning_rate


class TinyNet(nn.Module):
    """BN-free conv backbone; `num_features` as timm's backbones."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, stride=2, padding=1)
        self.num_features = width

    def forward(self, x):
        return torch.relu(self.conv(x)).mean((2, 3))


def tiny_teacher(out_dim: int = 16) -> nn.Module:
    torch.manual_seed(123)
    return nn.Sequential(TinyNet(8), nn.Linear(8, out_dim))


class NaNAfter(nn.Module):
    """A teacher whose output turns NaN from its `n`-th call on (a diverged network, on cue)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.net, self.n, self.calls = tiny_teacher(), n, 0

    def forward(self, x):
        self.calls += len(x) > 1  # a step's batch; the one-image width check before any work is not one
        out = self.net(x)
        return out * float("nan") if self.calls >= self.n else out


def write_image_folder(root, n: int = 32, size: int = 16):
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        folder = root / f"c{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = torch.randint(0, 256, (size, size, 3), generator=g, dtype=torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("data") / "train")


def tiny_config(images, *overrides: str) -> TrainConfig:
    return apply_overrides(TrainConfig(), [
        "device=cpu", "epochs=2", "global_batch=8", "data.source=image_folder", f"data.path={images}",
        "data.image_size=16", "data.workers=0", "student.embed_dim=16", "student.head_hidden=8",
        "distill.queue_size=32", "moco.queue_size=32", "optim.warmup_epochs=1", "save_every=2", "keep_last=10",
        "log_every=1000", "export=false", *overrides])


def run(cfg, run_dir, teacher=None, **kw):
    torch.manual_seed(0)
    return train(cfg, run_dir, student=TinyNet(8), teacher=teacher or tiny_teacher(), **kw)


def tensors(obj, prefix=""):
    """Every tensor of a nested checkpoint, by path."""
    if isinstance(obj, torch.Tensor):
        return {prefix: obj}
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else []
    out = {}
    for k, v in items:
        out.update(tensors(v, f"{prefix}/{k}"))
    return out


def student_state(checkpoint, name: str = UNNAMED):
    """One student's part of a checkpoint (every run keeps its students under `students`)."""
    return checkpoint["students"][name]


def assert_same_state(a, b, *names: str):
    """Two checkpoints hold the same network, objective and optimiser of the students `names` (default: the
    one unnamed student), bitwise, at the same step."""
    for name in names or (UNNAMED,):
        x, y = student_state(a, name), student_state(b, name)
        ta, tb = (tensors({k: s[k] for k in ("student", "objective", "optimizer")}) for s in (x, y))
        assert ta.keys() == tb.keys() and len(ta) > 5
        for k in ta:
            assert torch.equal(ta[k], tb[k]), (name, k)
    assert a["step"] == b["step"]


def test_resume_mid_epoch_is_bit_identical(images, tmp_path):
    full = run(tiny_config(images), tmp_path / "full")
    stopped = run(tiny_config(images, "max_steps=3"), tmp_path / "cut")  # epoch 0 has 4 steps
    assert stopped.step == 3 and stopped.epoch == 0
    resumed = run(tiny_config(images), tmp_path / "cut", resume="auto")
    assert resumed.step == full.step == 8
    assert_same_state(load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint))


def test_zero_and_two_workers_give_identical_runs(images, tmp_path):
    a = run(tiny_config(images, "max_steps=3", "data.workers=0"), tmp_path / "w0")
    b = run(tiny_config(images, "max_steps=3", "data.workers=2"), tmp_path / "w2")
    assert_same_state(load_checkpoint(a.checkpoint), load_checkpoint(b.checkpoint))


def test_checkpoint_loads_with_weights_only_and_holds_the_run_state(images, tmp_path):
    result = run(tiny_config(images, "max_steps=2", "optim.schedule=step"), tmp_path / "r")
    state = torch.load(result.checkpoint, weights_only=True)
    assert {"rng", "step", "epoch", "students"} <= set(state) and list(state["students"]) == [UNNAMED]
    own = state["students"][UNNAMED]
    assert {"student", "objective", "optimizer", "scaler", "student_rng", "config", "config_hash"} <= set(own)
    assert int(own["objective"]["queue"]["ptr"]) == 16 and state["step"] == 2
    assert own["config"]["optim"]["schedule"] == "step"
    assert any(k.startswith("head.") for k in own["student"])
    assert "teacher" in state  # teacher.pretrained "": saved once, for every student, to be resumable
    assert (tmp_path / "r" / "config.yaml").read_text().startswith(f"# config_hash: {own['config_hash']}")


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(images, tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"loss of student student is nan at step 5 \(epoch 1\).*"
                                                  r"step_000000004\.pt"):
        run(tiny_config(images), tmp_path / "nan", teacher=NaNAfter(5))
    last = latest_checkpoint(tmp_path / "nan")
    assert last.name == "step_000000004.pt"
    state = load_checkpoint(last)
    assert all(torch.isfinite(t).all() for t in tensors(student_state(state)["student"]).values())


def test_keep_last_prunes_old_checkpoints(images, tmp_path):
    run(tiny_config(images, "save_every=1", "keep_last=2", "max_steps=5"), tmp_path / "k")
    assert [p.name for p in list_checkpoints(tmp_path / "k")] == ["step_000000004.pt", "step_000000005.pt"]


def test_metrics_jsonl_records_every_step(images, tmp_path):
    import json

    run(tiny_config(images, "max_steps=3"), tmp_path / "m")
    lines = [json.loads(x) for x in (tmp_path / "m" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3]
    assert {"images_per_s", "data_wait", "epoch", "students"} <= set(lines[0])
    assert set(lines[0]["students"][UNNAMED]) == {"loss", "lr"}
    assert all(0 <= r["data_wait"] <= 1 and math.isfinite(r["students"][UNNAMED]["loss"]) for r in lines)


def test_small_patches_fill_their_own_queue_with_one_crop_per_image(images, tmp_path):
    cfg = tiny_config(images, "max_steps=2", "distill.small_patches=true", "distill.small_crops=3",
                      "distill.small_size=8")
    state = student_state(load_checkpoint(run(cfg, tmp_path / "sp").checkpoint))
    assert int(state["objective"]["small_queue"]["ptr"]) == 16  # 2 steps x 8 images
    assert not torch.equal(state["objective"]["small_queue"]["queue"], state["objective"]["queue"]["queue"])


def test_moco_trains_the_query_and_moves_the_key_encoder(images, tmp_path):
    cfg = tiny_config(images, "method=moco", "max_steps=3", "moco.bn_splits=2", "moco.momentum=0.9")
    torch.manual_seed(0)
    result = train(cfg, tmp_path / "moco", student=TinyNet(8))
    state = student_state(load_checkpoint(result.checkpoint))
    q, k = state["student"], state["objective"]["key_encoder"]
    assert q.keys() == k.keys() and int(state["objective"]["queue"]["ptr"]) == 24
    assert not torch.equal(q["backbone.conv.weight"], k["backbone.conv.weight"])


def test_schedule_warms_up_then_follows_the_official_cosine():
    kw = dict(steps_per_epoch=10, epochs=20, base_lr=0.03, global_batch=512, warmup_epochs=5)
    assert learning_rate(0, **kw) == pytest.approx(0.03)
    assert learning_rate(25, **kw) == pytest.approx(0.03 + 0.03 * 2 / 5)  # epoch 2 of the warm-up
    assert learning_rate(100, **kw) == pytest.approx(0.06 * 0.5 * (1 + math.cos(math.pi * 10 / 20)))
    assert learning_rate(15, per_step=True, **kw) == pytest.approx(0.03 + 0.03 * 1.5 / 5)
