"""A fine-tuned model leaves something to load: plain state dicts through `pretrained=`, `save_model`
folders, their classifier through `seedzoo export --onnx`, and timm's own `local-dir:` loader."""
from __future__ import annotations

import json

import pytest
import timm
import torch
from safetensors.torch import save_file

import seedzoo
from seedzoo.cli import main
from seedzoo.weights.io import HEAD_NAME, BackboneMismatchError, ChecksumError, load_weights, sha256_file
from seedzoo.weights.publish import write_run_export

# one seedzoo architecture (reads `backbone.`/`head.`) and one of timm's own (reads its own key names)
ARCHITECTURES = ("seed_resnet18_lowres", "mobilenetv3_small_050")


def _fine_tuned(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = seedzoo.create_model(arch, num_classes=10)
    with torch.no_grad():  # a "trained" classifier: anything but timm's fresh initialisation
        model.get_classifier().weight.normal_()
    return model.eval()


def _images() -> torch.Tensor:
    return torch.randn((2, 3, 32, 32), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_a_plain_state_dict_loads_through_pretrained_with_its_classifier_and_sha256(arch, suffix, tmp_path):
    model, x = _fine_tuned(arch), _images()
    file = tmp_path / f"fine_tuned{suffix}"
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save(state, file) if suffix == ".pth" else save_file(state, str(file))

    loaded = seedzoo.create_model(arch, pretrained=file, num_classes=10).eval()
    assert torch.equal(loaded(x), model(x))
    assert loaded.seedzoo_weights.format == "plain" and loaded.seedzoo_weights.sha256 == sha256_file(file)
    headless = seedzoo.create_model(arch, pretrained=file).eval()  # without num_classes: the representation
    assert torch.equal(headless(x), model.forward_head(model.forward_features(x), pre_logits=True))


def test_a_state_dict_of_another_architecture_is_refused_naming_its_keys(tmp_path):
    file = tmp_path / "other.pth"
    torch.save(_fine_tuned("mobilenetv3_small_050").state_dict(), file)
    with pytest.raises(BackboneMismatchError, match="do not fit architecture 'seed_resnet18_lowres': missing"):
        seedzoo.create_model("seed_resnet18_lowres", pretrained=file)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_save_model_writes_a_folder_seedzoo_and_timm_local_dir_load_with_its_classifier(arch, tmp_path):
    model, x = _fine_tuned(arch), _images()
    folder = seedzoo.save_model(model, tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == arch and config["num_classes"] == 10
    assert config["seedzoo"]["sha256"] == sha256_file(folder / "model.safetensors")

    ours = seedzoo.create_model(folder, pretrained=True, num_classes=10).eval()
    theirs = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    assert theirs.num_classes == 10
    assert torch.equal(ours(x), model(x)) and torch.equal(theirs(x), model(x))


def test_export_onnx_keeps_the_classifier_of_a_saved_model(tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    model, x = _fine_tuned("mobilenetv3_small_050"), _images()
    folder = seedzoo.save_model(model, tmp_path / "model")
    assert main(["export", str(folder), "--onnx", str(tmp_path / "model.onnx"), "--input-size", "32"]) == 0
    assert "'logits' (10 classes)" in capsys.readouterr().out
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    features, logits = session.run(["features", "logits"], {"images": x.numpy()})
    assert logits.shape == (2, 10) and features.shape == (2, 1024)
    assert torch.allclose(torch.from_numpy(logits), model(x), atol=1e-4)


def test_a_timm_architecture_run_export_loads_with_timm_local_dir_and_keeps_its_head(tmp_path):
    torch.manual_seed(0)
    backbone = timm.create_model("mobilenetv3_small_050", num_classes=0).eval()
    head = torch.nn.Sequential(torch.nn.Linear(1024, 64), torch.nn.ReLU(), torch.nn.Linear(64, 16))
    folder = write_run_export(tmp_path / "export", architecture="mobilenetv3_small_050",
                              backbone=backbone.state_dict(), head=head.state_dict(), entry=None,
                              seedzoo={"entry": "my_run"}, image_size=32, mean=(0.5,) * 3, std=(0.25,) * 3)
    assert (folder / HEAD_NAME).is_file()
    x = _images()
    theirs = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    ours = seedzoo.create_model(folder, pretrained=True).eval()
    assert torch.equal(theirs(x), backbone(x)) and torch.equal(ours(x), backbone(x))
    assert theirs.pretrained_cfg["mean"] == [0.5] * 3  # the run's preprocessing travels with it
    projection = seedzoo.load_projection_head(folder, pretrained=True)
    assert all(torch.equal(projection.state_dict()[k], v) for k, v in head.state_dict().items())
    assert set(load_weights(folder).backbone) == set(backbone.state_dict())
    config = json.loads((folder / "config.json").read_text())
    config["seedzoo"]["head_file"]["sha256"] = "0" * 64  # the folder pins its head file too
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ChecksumError):
        seedzoo.load_projection_head(folder, pretrained=True)
