"""The parts `seedzoo distill` is built from: a recipe scaled to the data, the data source a path needs,
batch-norm statistics recomputed for the final weights, and the spread check of exported features."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from PIL import Image
from torch import nn

from seedzoo.data.datasets import detect_source, source_mismatch
from seedzoo.training.collapse import (
    COLLAPSE_FRACTION,
    check_spread,
    feature_spread,
    recompute_batch_norm,
    steps_to_settle,
)
from seedzoo.training.config import TrainConfig, config_problems, load_config
from seedzoo.training.scaling import MIN_STEPS_PER_EPOCH, scale_to_data


def write_images(root, n, classes=2, flat=False, size=12):
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        folder = root if flat else root / f"c{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = torch.randint(0, 256, (size, size, 3), generator=g, dtype=torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{i}.jpg")
    return root


# --- scaling -----------------------------------------------------------------------------------

FMNIST_SEED = "seed_mbv3_large.fmnist_mocov2_r18"


def test_the_fmnist_recipe_on_2000_images_gets_a_queue_it_fills_and_more_steps():
    recipe = load_config(FMNIST_SEED)
    assert (recipe.global_batch, recipe.epochs, recipe.distill.queue_size) == (256, 4, 16384)  # the case
    cfg, choices = scale_to_data(recipe, 2000)
    steps_per_epoch = 2000 // cfg.global_batch
    total = cfg.epochs * steps_per_epoch
    assert steps_per_epoch >= MIN_STEPS_PER_EPOCH and cfg.global_batch & (cfg.global_batch - 1) == 0
    assert cfg.epochs * 2000 == recipe.epochs * 60_000  # as many images seen as the recipe on Fashion-MNIST
    assert cfg.distill.queue_size % cfg.global_batch == 0
    assert cfg.distill.queue_size <= steps_per_epoch * cfg.global_batch <= total * cfg.global_batch // 2
    assert {c.key for c in choices} >= {"global_batch", "epochs", "optim.warmup_epochs", "distill.queue_size"}
    assert all(c.why for c in choices)


def test_scaling_keeps_what_the_user_gave_and_builds_on_it():
    recipe = dataclasses.replace(load_config(FMNIST_SEED), epochs=3)
    cfg, choices = scale_to_data(recipe, 2000, given={"epochs"})
    by_key = {c.key: c for c in choices}
    assert cfg.epochs == 3 and by_key["epochs"].why == "given"
    total = 3 * (2000 // cfg.global_batch)
    assert cfg.distill.queue_size <= total * cfg.global_batch // 2  # the queue fits the user's 3 epochs
    assert cfg.optim.schedule == "step"


def test_the_batch_is_never_larger_than_the_data_and_splits_over_the_processes():
    for images in (2, 7, 40, 100_000):
        cfg, _ = scale_to_data(TrainConfig(), images, world_size=2)
        assert 2 <= cfg.global_batch <= images and cfg.global_batch % 2 == 0
        assert cfg.distill.queue_size >= cfg.global_batch
    with pytest.raises(ValueError, match="at least 2"):
        scale_to_data(TrainConfig(), 1)


def test_warm_up_keeps_the_recipes_share_of_the_schedule():
    recipe = load_config("seed_r18.mocov2_r50_200ep")  # 5 of 200 epochs
    cfg, _ = scale_to_data(recipe, 5000)
    assert cfg.epochs == 200 and cfg.optim.warmup_epochs == 5  # 256 M images seen is capped at 200 epochs


# --- data sources ------------------------------------------------------------------------------

def test_detect_source_tells_a_class_tree_a_flat_folder_and_a_file_list_apart(tmp_path):
    tree = write_images(tmp_path / "tree", 6, classes=3)
    flat = write_images(tmp_path / "flat", 4, flat=True)
    listing = tmp_path / "list.txt"
    listing.write_text("flat/0.jpg\nflat/1.jpg\n")
    assert detect_source(tree)[0] == "image_folder"
    assert detect_source(flat)[0] == "unlabeled_folder"
    assert detect_source(listing)[0] == "file_list"
    assert source_mismatch("image_folder", str(flat)).endswith(
        "add data.source=unlabeled_folder (a folder of images, searched recursively, no labels)")
    assert source_mismatch("unlabeled_folder", str(tree)) is None  # every image, without labels
    assert "data.source=file_list" in source_mismatch("image_folder", str(listing))


def test_a_recipe_whose_source_cannot_read_data_path_names_the_source_in_one_line(tmp_path, capsys):
    from seedzoo.cli import main

    tree = write_images(tmp_path / "my_images", 4)
    out = tmp_path / "run"
    assert main(["train", FMNIST_SEED, f"data.path={tree}", "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"seedzoo: error: data.path={tree} is a folder of 2 class folders, which "
                     "data.source=fashion_mnist cannot read: add data.source=image_folder (a folder of class "
                     "folders, ROOT/<class>/<image> (the labels feed the kNN monitor))"]
    assert not out.exists()


# --- config checks before work -----------------------------------------------------------------

def test_a_teacher_arch_that_is_not_its_entrys_is_refused_before_work():
    cfg = load_config(FMNIST_SEED)
    problems = config_problems(dataclasses.replace(cfg, teacher=dataclasses.replace(cfg.teacher, arch="resnet50")))
    assert any(p.startswith("teacher.arch='resnet50' is not the architecture of teacher.entry='mocov2_r18.fmnist' "
                            "(seed_resnet18_lowres): set teacher.arch=seed_resnet18_lowres") for p in problems)


def test_hub_ids_stand_where_a_path_may_and_missing_paths_are_named(tmp_path):
    cfg = load_config(FMNIST_SEED)

    def problems(pretrained):
        teacher = dataclasses.replace(cfg.teacher, pretrained=pretrained)
        return config_problems(dataclasses.replace(cfg, teacher=teacher))

    assert problems("hf-hub:org/teacher") == [] and problems(str(tmp_path)) == []
    missing = problems(str(tmp_path / "nope"))
    assert len(missing) == 1 and missing[0].startswith(f"teacher.pretrained='{tmp_path / 'nope'}': no such file")


# --- batch norm and the spread of features ------------------------------------------------------

def test_identical_features_have_no_spread_and_random_ones_nearly_full():
    same = torch.ones(200, 64) + 1e-9 * torch.randn(200, 64, generator=torch.Generator().manual_seed(0))
    spread = torch.randn(200, 64, generator=torch.Generator().manual_seed(1))
    assert feature_spread(same).spread < 1e-6
    assert feature_spread(spread).spread == pytest.approx(1.0, abs=0.02)
    check = check_spread(same, spread)
    assert check.collapsed and check.describe().startswith("COLLAPSED: ") and check.record()["collapsed"] is True
    assert not check_spread(spread, spread).collapsed
    assert check_spread(spread * 0.5, spread).ratio == pytest.approx(1.0)
    assert COLLAPSE_FRACTION < 1


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, momentum=0.1)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(self.bn(self.conv(x))).mean((2, 3))


def test_recomputed_statistics_are_the_average_over_the_images_and_nothing_else_changes():
    torch.manual_seed(0)
    net = _Net().train()
    batches = [torch.randn(8, 3, 4, 4) * 3 + 5 for _ in range(3)]
    weights = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k and "num_batches" not in k}
    assert recompute_batch_norm(net, batches) == 24
    with torch.no_grad():
        acts = [net.conv(x) for x in batches]
    expected_mean = torch.stack([a.mean((0, 2, 3)) for a in acts]).mean(0)
    expected_var = torch.stack([a.var((0, 2, 3), unbiased=True) for a in acts]).mean(0)
    assert torch.allclose(net.bn.running_mean, expected_mean, atol=1e-5)
    assert torch.allclose(net.bn.running_var, expected_var, atol=1e-4)
    assert net.training and net.bn.momentum == 0.1
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in weights.items())
    mean = net.bn.running_mean.clone()
    assert recompute_batch_norm(net, []) == 0 and torch.equal(net.bn.running_mean, mean)  # no images: kept


def test_steps_to_settle_follows_the_slowest_momentum():
    net = nn.Sequential(nn.BatchNorm2d(2, momentum=0.1), nn.BatchNorm2d(2, momentum=0.01))
    assert steps_to_settle(net) == 459  # 0.99 ** 459 < 0.01 <= 0.99 ** 458
    assert steps_to_settle(nn.Linear(2, 2)) == 0


def _stale_net():
    torch.manual_seed(0)
    net = _Net()
    with torch.no_grad():
        net.conv.bias.fill_(50.0)  # activations far from the initial 0/1 statistics: eval mode maps all alike
    return net


def test_an_export_gets_statistics_that_fit_its_weights_when_the_run_is_short_or_collapsed():
    from seedzoo.training.collapse import export_health

    batches = [torch.randn(16, 3, 4, 4, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    reference = torch.randn(16, 4, generator=torch.Generator().manual_seed(9))
    short = export_health(_stale_net(), reference, batches[:1], batches[1:], steps=3)
    assert short.before is not None and short.before.collapsed and not short.collapsed
    assert short.batch_norm == ("recomputed over 48 training images (eval transform): the run's 3 steps are fewer "
                                "than the 44 its batch norm needs to settle")
    long = export_health(_stale_net(), reference, batches[:1], batches[1:], steps=10_000)
    assert not long.collapsed and long.batch_norm.endswith("had collapsed with the running statistics the run left")
    kept = export_health(_stale_net(), reference, batches[:1], batches[1:], steps=3, mode="keep")
    assert kept.collapsed and kept.record()["collapsed"] is True and kept.record()["batch_norm"].startswith("kept")
