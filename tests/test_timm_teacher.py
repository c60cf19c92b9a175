"""Any timm model as a SEED teacher: a plain timm or torchvision state dict, no SSL head; its pooled
features (L2-normalised by the loss) are the target space and the students' heads output their width."""
from __future__ import annotations

import json

import pytest
import timm
import torch
import torchvision
import yaml
from PIL import Image
from safetensors.torch import save_file

from seedzoo.training.config import TrainConfig, apply_overrides
from seedzoo.training.engine import train
from seedzoo.training.networks import build_teacher, resolve_teacher

pytestmark = pytest.mark.usefixtures("single_thread")

WIDTH = 96  # timm's test_resnet: a 0.5M-parameter ResNet with a 96-d representation


@pytest.fixture(scope="module")
def timm_files(tmp_path_factory):
    """test_resnet's state dict (classifier included, as timm saves it) as .pth and .safetensors."""
    root = tmp_path_factory.mktemp("teacher")
    torch.manual_seed(7)
    model = timm.create_model("test_resnet", num_classes=10)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, root / "test_resnet.pth")
    save_file(state, root / "test_resnet.safetensors")
    return state, root


@pytest.mark.parametrize("suffix", ["pth", "safetensors"])
def test_timm_file_gives_a_features_teacher_with_its_weights(timm_files, suffix):
    state, root = timm_files
    teacher = build_teacher("test_resnet", str(root / f"test_resnet.{suffix}"), target="auto")
    backbone = teacher.backbone
    assert isinstance(teacher.head, torch.nn.Identity) and not teacher.training
    for k, v in backbone.state_dict().items():
        assert torch.equal(v, state[k]), k
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(teacher(x), backbone(x)) and teacher(x).shape == (2, WIDTH)


def test_torchvision_resnet_file_loads_into_timm_names(tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.resnet18().eval()
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    teacher = build_teacher("resnet18", str(tmp_path / "resnet18.pth"), target="features")
    reference.fc = torch.nn.Identity()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(teacher(x), reference(x), atol=1e-5)


def test_a_file_of_another_architecture_is_refused_naming_its_keys(timm_files):
    _, root = timm_files
    with pytest.raises(ValueError, match=r"does not fit 'resnet10t'.*unexpected.*of another shape"):
        build_teacher("resnet10t", str(root / "test_resnet.pth"), target="features")


def test_plain_timm_weights_have_no_head_to_distil(timm_files):
    _, root = timm_files
    with pytest.raises(ValueError, match="teacher.target=features"):
        build_teacher("test_resnet", str(root / "test_resnet.pth"), target="head")


def test_target_resolves_by_name_and_sets_the_students_width():
    seed = apply_overrides(TrainConfig(), ["teacher.arch=seed_resnet18"])
    assert resolve_teacher(seed).teacher.target == "head" and resolve_teacher(seed).student.embed_dim == 128
    timm_cfg = resolve_teacher(apply_overrides(TrainConfig(), ["teacher.arch=test_resnet"]))
    assert timm_cfg.teacher.target == "features"
    assert timm_cfg.student.embed_dim == timm_cfg.teacher.embed_dim == WIDTH
    explicit = resolve_teacher(apply_overrides(TrainConfig(), ["teacher.arch=seed_resnet18",
                                                               "teacher.target=features"]))
    assert explicit.student.embed_dim == 512


def test_a_run_distils_a_timm_teacher_and_records_it(timm_files, tmp_path):
    _, root = timm_files
    g = torch.Generator().manual_seed(0)
    for i in range(16):
        folder = tmp_path / "data" / f"c{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = torch.randint(0, 256, (16, 16, 3), generator=g, dtype=torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{i}.png")
    cfg = apply_overrides(TrainConfig(), [
        "device=cpu", "epochs=1", "global_batch=8", "data.source=image_folder", f"data.path={tmp_path / 'data'}",
        "data.image_size=16", "data.workers=0", "student.arch=test_resnet", "distill.queue_size=16",
        "teacher.arch=test_resnet", f"teacher.pretrained={root / 'test_resnet.safetensors'}", "log_every=1000"])
    result = train(cfg, tmp_path / "run")
    assert result.step == 2
    recorded = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert recorded["teacher"]["target"] == "features" and recorded["student"]["embed_dim"] == WIDTH
    block = json.loads((result.export_dir / "config.json").read_text())["seedzoo"]
    assert block["teacher"]["target"] == "features" and block["teacher"]["arch"] == "test_resnet"
    assert block["recipe"]["config"]["student"]["embed_dim"] == WIDTH  # the student's head: the teacher's width
