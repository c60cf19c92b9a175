"""The objectives beside SEED as training methods: each trains through `seedzoo train` and exports a model
`create_model` loads; all the distillation methods train together from one teacher pass, each student
bitwise as alone; BINGO's bags are computed once per run and read back on resume."""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

import seedzoo
from seedzoo.cli import main
from seedzoo.data.datasets import ImageFolderSource, Subset
from seedzoo.training import distributed as D
from seedzoo.training.checkpoint import load_checkpoint
from seedzoo.training.config import ConfigError, apply_overrides
from seedzoo.training.engine import train
from seedzoo.training.methods import get_method, list_methods
from seedzoo.training.neighbours import compute_neighbours
from seedzoo.training.run_folder import BAGS_FILE

from test_train import TinyNet, assert_same_state, tiny_config, tiny_teacher, write_image_folder

NEW = ["l2", "simreg", "compress", "disco", "bingo"]
DISTILLERS = ["seed", *NEW]
# Small queues, and BINGO's bag weights switched on after the first of the two epochs.
SMALL = ["teacher.embed_dim=16", "compress.queue_size=32", "bingo.queue_size=32", "bingo.warmup_epochs=1",
         "bingo.neighbours=3"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("data") / "train")


def student() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet(8)


def config(images, method: str, *overrides: str):
    return tiny_config(images, f"method={method}", f"name={method}", *SMALL, *overrides)


def test_the_new_objectives_are_registered_distillers():
    assert set(NEW) <= set(list_methods())
    for name in NEW:
        assert get_method(name).needs_teacher


@pytest.mark.slow
@pytest.mark.parametrize("method", list_methods())
def test_smoke_preset_trains_every_method_into_an_export_create_model_loads(method, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--preset", "smoke", f"method={method}", "max_steps=1", "data.subset=32",
                 "global_batch=8", "distill.queue_size=32", "moco.queue_size=32", "compress.queue_size=32",
                 "bingo.queue_size=32", "data.workers=0", "device=cpu", "--out", str(run)]) == 0
    model = seedzoo.create_model("seed_resnet18", pretrained=run).eval()  # the run folder: its one export
    with torch.no_grad():
        features = model(torch.randn(2, 3, 32, 32))
    assert features.shape == (2, 512) and torch.isfinite(features).all()
    stored = load_file(run / "export" / "smoke" / "model.safetensors")
    has_head = any(k.startswith("head.") for k in stored)
    assert has_head == get_method(method).export_head  # SimReg's prediction head is dropped


def test_a_bingo_run_that_never_leaves_its_warm_up_says_so(images, tmp_path, capsys):
    bingo = get_method("bingo")
    assert bingo.config_warnings(config(images, "bingo")) == []  # warm-up 1 of 2 epochs: the bags count
    train(config(images, "bingo", "bingo.warmup_epochs=2", "max_steps=1"), tmp_path / "run")
    assert "bingo.warmup_epochs=2 is not below epochs=2" in capsys.readouterr().err
    assert bingo.config_warnings(config(images, "bingo", "bingo.warmup_epochs=5", "bingo.weights=[1.0,0.0]")) == []


def test_all_distillers_train_together_each_bitwise_as_alone(images, tmp_path):
    cfgs = [config(images, m, "export=true") for m in DISTILLERS]
    alone = {c.name: train(c, tmp_path / c.name, student=student(), teacher=tiny_teacher()) for c in cfgs}
    cohort = train(cfgs, tmp_path / "all", student=[student() for _ in cfgs], teacher=tiny_teacher())
    assert cohort.step == 8 and set(cohort.exports) == set(DISTILLERS)
    for name, result in alone.items():
        mine = load_file(cohort.exports[name] / "model.safetensors")
        ref = load_file(result.export_dir / "model.safetensors")
        assert mine.keys() == ref.keys()
        for key in ref:
            assert torch.equal(mine[key], ref[key]), (name, key)
        assert cohort.losses[name] == result.loss
    state = load_checkpoint(cohort.checkpoint)
    for name, result in alone.items():  # queues, anchors, key encoders, optimiser: each student's own
        assert_same_state(state, load_checkpoint(result.checkpoint), name)


def test_bingo_resumes_mid_run_bit_identically_reading_its_bags_back(images, tmp_path):
    cfg = config(images, "bingo")
    full = train(cfg, tmp_path / "full", student=student(), teacher=tiny_teacher())
    cut = train(apply_overrides(cfg, ["max_steps=3"]), tmp_path / "cut", student=student(), teacher=tiny_teacher())
    bags = tmp_path / "cut" / BAGS_FILE
    written = bags.stat().st_mtime_ns, bags.read_bytes()
    assert cut.step == 3 and load_file(bags)["bags"].shape == (32, 3)
    resumed = train(cfg, tmp_path / "cut", student=student(), teacher=tiny_teacher(), resume="auto")
    assert (bags.stat().st_mtime_ns, bags.read_bytes()) == written  # read back, not computed again
    assert resumed.step == full.step == 8
    assert_same_state(load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint), "bingo")


def test_bags_made_of_other_settings_are_computed_again(images, tmp_path):
    cfg = config(images, "bingo", "max_steps=1")
    train(cfg, tmp_path / "run", student=student(), teacher=tiny_teacher())
    first = load_file(tmp_path / "run" / BAGS_FILE)["bags"]
    assert first.shape == (32, 3) and not (first == torch.arange(32)[:, None]).any()  # never the image itself
    fewer = apply_overrides(cfg, ["bingo.neighbours=2", "max_steps=2"])
    train(fewer, tmp_path / "run", student=student(), teacher=tiny_teacher(), resume="auto")
    again = load_file(tmp_path / "run" / BAGS_FILE)["bags"]
    assert torch.equal(again, first[:, :2])  # the same teacher's ranking, two neighbours each


@pytest.mark.parametrize("override, message", [
    (["method=bingo", "bingo.neighbours=0"], "bingo.neighbours=0"),
    (["method=compress", "compress.queue_size=30"], "compress.queue_size=30"),
    (["method=l2", "student.embed_dim=8"], "student.embed_dim=8"),
    (["method=disco", "moco.temperature=0"], "moco.temperature=0"),
])
def test_each_method_checks_its_settings_before_any_work(images, tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        train(tiny_config(images, *override), tmp_path / "run", student=student(), teacher=tiny_teacher())
    assert not (tmp_path / "run").exists()


def _bags_worker(rank: int, world: int, port: int, images: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    info = D.init_distributed("cpu")
    try:
        bags = compute_neighbours(tiny_teacher(), Subset(ImageFolderSource(images), 31), config(images, "bingo"), 3,
                                  info.device)
        if rank == 0:
            save_file({"bags": bags}, out)
    finally:
        D.cleanup()


@pytest.mark.slow
def test_processes_share_the_bags_work_and_get_the_bags_of_one(images, tmp_path):
    one = compute_neighbours(tiny_teacher(), Subset(ImageFolderSource(images), 31), config(images, "bingo"), 3,
                             torch.device("cpu"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "bags.safetensors"  # two processes: shares of 16 and 15 of the 31 images
    mp.spawn(_bags_worker, args=(2, port, str(images), str(out)), nprocs=2, join=True)
    assert torch.equal(load_file(out)["bags"], one)
