"""One resolution path: model folders as names, the preprocessing the weights record, timm tags,
shipped classifiers, gray images, dtype and metadata refusals, partial downloads."""
from __future__ import annotations

import os

import pytest
import timm
import torch
from PIL import Image

import seedzoo
from seedzoo.errors import SeedzooError
from seedzoo.weights.cache import remove_stale_parts
from seedzoo.weights.io import BackboneMismatchError, WeightsFormatError, save_weights
from seedzoo.weights.publish import write_run_export


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("SEEDZOO_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def run_export(tmp_path_factory):
    """A run's export as the trainer writes it: 32 px, Fashion-MNIST mean/std."""
    model = timm.create_model("seed_resnet18", num_classes=0)
    head = seedzoo.models.ProjectionHead(512, 512, 128).state_dict()
    out = tmp_path_factory.mktemp("run") / "export" / "my_run"
    return write_run_export(out, architecture="seed_resnet18", backbone=model.state_dict(), head=head, entry=None,
                            seedzoo={"entry": "my_run"}, image_size=32, mean=(0.286,) * 3, std=(0.353,) * 3), model


def test_an_export_folder_is_a_name_and_carries_its_preprocessing(run_export):
    from timm.data import resolve_data_config

    folder, source = run_export
    model = seedzoo.create_model(folder, pretrained=True)
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in model.state_dict().items())
    run = folder.parent.parent  # the run folder names its only student's export
    assert seedzoo.create_model(run, pretrained=True).seedzoo_weights.path == folder / "model.safetensors"
    data = resolve_data_config({}, model=model)
    assert data["input_size"] == (3, 32, 32) and data["crop_pct"] == 1.0 and data["mean"] == (0.286,) * 3
    out = seedzoo.get_transform(folder)(Image.new("RGB", (50, 40)))
    assert out.shape == (3, 32, 32)
    # The same record when the export is passed as weights of an architecture name.
    assert seedzoo.get_transform("seed_resnet18", pretrained=folder)(Image.new("RGB", (50, 40))).shape == (3, 32, 32)
    assert seedzoo.load_projection_head(folder, pretrained=True)[0].weight.shape == (512, 512)


def test_entry_transforms_accept_grayscale_images():
    gray = Image.new("L", (28, 28), 128)
    out = seedzoo.get_transform("seed_mbv3_large.fmnist_mocov2_r18")(gray)
    assert out.shape == (3, 32, 32) and torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
    assert seedzoo.get_transform("seed_r18", train=True)(gray).shape == (3, 224, 224)


def test_timm_pretrained_tags_give_seedzoos_weights():
    names = timm.list_pretrained("seed_*")
    assert "seed_mobilenetv3_large.fmnist_mocov2_r18" in names
    assert {e.timm_name for e in seedzoo.zoo.list_entries(pretrained=True)} <= set(names)
    a = timm.create_model("seed_mobilenetv3_large.fmnist_mocov2_r18", pretrained=True)
    b = seedzoo.create_model("seed_mbv3_large.fmnist_mocov2_r18", pretrained=True)
    assert a.state_dict().keys() == b.state_dict().keys()
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert a.pretrained_cfg["input_size"] == (3, 32, 32) == b.pretrained_cfg["input_size"]


def test_timm_tag_of_a_shipped_classifier_gives_the_same_trained_classifier():
    entry = seedzoo.model_info("supervised_mbv3_large.fmnist")
    classes = entry.head.out_dim
    ours = seedzoo.create_model(entry.name, pretrained=True, num_classes=classes).eval()
    theirs = timm.create_model(entry.timm_name, pretrained=True, num_classes=classes).eval()
    head = seedzoo.load_projection_head(entry.name, pretrained=True)
    for model in (ours, theirs):
        assert torch.equal(model.get_classifier().weight, head[0].weight)
        assert torch.equal(model.get_classifier().bias, head[0].bias)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))
    # Other class counts, or none, keep a fresh classifier (or none) on both paths.
    other = timm.create_model(entry.timm_name, pretrained=True, num_classes=3)
    assert other.get_classifier().weight.shape == (3, 1280)
    assert seedzoo.create_model(entry.name, pretrained=True).num_classes == 0


def test_a_shipped_classifier_comes_with_its_class_count():
    entry = seedzoo.model_info("supervised_mbv3_large.fmnist")
    model = seedzoo.create_model(entry.name, pretrained=True, num_classes=entry.head.out_dim)
    head = seedzoo.load_projection_head(entry.name, pretrained=True)
    assert torch.equal(model.get_classifier().weight, head[0].weight)
    other = seedzoo.create_model(entry.name, pretrained=True, num_classes=3)
    assert other.get_classifier().weight.shape == (3, 1280)


def test_integer_weights_are_refused_not_cast(tmp_path):
    state = timm.create_model("seed_resnet18", num_classes=0).state_dict()
    state["conv1.weight"] = state["conv1.weight"].to(torch.int8)
    path = tmp_path / "int.safetensors"
    save_weights(path, state, None, {"architecture": "seed_resnet18"})
    with pytest.raises(BackboneMismatchError, match=r"wrong dtype \(1\): conv1\.weight: int8 vs float32"):
        seedzoo.create_model("seed_resnet18", pretrained=path)


def test_a_file_whose_entry_contradicts_its_architecture_is_refused(tmp_path):
    state = timm.create_model("seed_resnet18", num_classes=0).state_dict()
    path = tmp_path / "liar.safetensors"
    save_weights(path, state, None, {"architecture": "seed_resnet18", "entry": "seed_mbv3_large.fmnist_mocov2_r18"})
    with pytest.raises(WeightsFormatError, match="contradicts"):
        seedzoo.create_model("seed_resnet18", pretrained=path)


def test_pretrained_none_is_refused_with_the_three_meanings():
    with pytest.raises(SeedzooError, match="True .* False .* or a path"):
        seedzoo.create_model("seed_r18", pretrained=None)


def test_partial_downloads_of_dead_processes_are_removed(tmp_path):
    dest = tmp_path / "model.safetensors"
    dead = tmp_path / "model.safetensors.999999999.abc.part"
    live = tmp_path / f"model.safetensors.{os.getpid()}.def.part"
    for p in (dead, live):
        p.write_bytes(b"partial")
    assert remove_stale_parts(dest) == [dead]
    assert live.exists() and not dead.exists()


def test_a_shipped_file_verifies_itself_when_copied_bare(tmp_path):
    import shutil

    from seedzoo.weights.io import load_weights

    for entry in (e for e in seedzoo.zoo.list_entries() if e.weights.embedded):
        source = seedzoo.create_model(entry.name, pretrained=True).seedzoo_weights.path
        copy = tmp_path / source.name
        shutil.copyfile(source, copy)
        assert load_weights(copy).sha256 == entry.weights.sha256  # no pin: its own content hash


@pytest.mark.skipif(not __import__("seedzoo.data.fashion_mnist", fromlist=["available"]).available(),
                    reason="needs Debian's dataset-fashion-mnist")
def test_seedzoo_eval_takes_an_export_folder_alone_and_its_preprocessing(run_export, tmp_path):
    import json

    from seedzoo.cli import main

    folder, _ = run_export
    out = tmp_path / "result.json"
    assert main(["eval", str(folder), "--limit", "40", "--batch-size", "40", "--device", "cpu", "--quiet",
                 "--json", str(out)]) == 0
    prep = json.loads(out.read_text())["settings"]["preprocessing"]
    assert prep["input_size"] == 32 and prep["crop_pct"] == 1.0 and prep["mean"] == [0.286] * 3


def test_a_killed_conversions_work_folder_is_removed_by_the_next(tmp_path):
    hidden = tmp_path / ".some_entry"
    dead = tmp_path / ".some_entry.999999999.abc.tmp"
    (dead / "converted").mkdir(parents=True)
    (dead / "release.pth.tar.999999999.x.part").write_bytes(b"partial")
    assert remove_stale_parts(hidden, suffix=".tmp") == [dead] and not dead.exists()


def test_a_published_classifier_folder_loads_its_classifier_through_timm_local_dir(tmp_path):
    """config.json's top-level num_classes agrees with its pretrained_cfg: timm's folder loading, which
    reads the top-level value, keeps the trained classifier instead of dropping it."""
    from seedzoo.weights.io import load_weights
    from seedzoo.weights.publish import write_model_folder
    from seedzoo.weights.resolve import resolve

    entry = seedzoo.model_info("supervised_mbv3_large.fmnist")
    resolved = resolve(entry.name, True)
    assert resolved.weights is not None and resolved.weights.file is not None
    shipped = load_weights(resolved.weights.file)
    assert shipped.head is not None
    folder = write_model_folder(tmp_path / "m", architecture=entry.architecture, backbone=shipped.backbone,
                                head=shipped.head, entry=entry)
    model = timm.create_model(f"local-dir:{folder}", pretrained=True)
    assert model.num_classes == entry.head.out_dim
    assert torch.equal(model.get_classifier().weight, shipped.head["0.weight"].float())
