"""The public API: golden reproduction from official files, seedzoo's weight format, timm options, names."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import seedzoo
from seedzoo.weights.io import (
    BackboneMismatchError,
    ChecksumError,
    WeightsFormatError,
    load_weights,
    read_header,
    save_weights,
    sha256_file,
)
from seedzoo.weights.resolve import PretrainedError
from seedzoo.zoo import UnknownModelError

from conftest import rel_max_err

GOLDEN = {"seed_mbv3_large": "seed_mbv3_large", "seed_effb0": "seed_effb0"}


@pytest.fixture(scope="module")
def mbv3_folder(golden_dir: Path, tmp_path_factory) -> Path:
    """The golden MobileNetV3 converted to a seedzoo model folder (config.json + model.safetensors)."""
    from seedzoo.weights.official import read_checkpoint, split_official

    entry = seedzoo.model_info("seed_mbv3_large")
    split = split_official(read_checkpoint(golden_dir / "seed_mbv3_large.pth.tar"), entry.architecture, entry.head)
    out = tmp_path_factory.mktemp("mbv3")
    sha = save_weights(out / "model.safetensors", split.backbone, split.head,
                       {"entry": entry.name, "architecture": entry.architecture})
    (out / "config.json").write_text(json.dumps({"architecture": entry.architecture, "seedzoo": {"sha256": sha}}))
    return out


@pytest.mark.parametrize("alias", sorted(GOLDEN))
def test_official_golden_checkpoint_reproduces_features_and_embedding(alias, golden_dir):
    expected = load_file(golden_dir / f"{GOLDEN[alias]}.expected.safetensors")
    ckpt = golden_dir / f"{GOLDEN[alias]}.pth.tar"
    model = seedzoo.create_model(alias, pretrained=ckpt, num_classes=0).eval()
    head = seedzoo.load_projection_head(alias, pretrained=ckpt)
    with torch.no_grad():
        features = model(expected["input_224"])
        embedding = head(features)
    assert rel_max_err(features, expected["features_224"]) <= 1e-4
    assert rel_max_err(embedding, expected["embedding_224"]) <= 1e-4
    assert model.seedzoo_entry.name == seedzoo.model_info(alias).name
    assert model.seedzoo_weights.format == "seed_student"
    assert model.pretrained_cfg["interpolation"] == "bilinear" and model.pretrained_cfg["crop_pct"] == 0.875


def test_seedzoo_folder_reproduces_golden(mbv3_folder, golden_dir):
    expected = load_file(golden_dir / "seed_mbv3_large.expected.safetensors")
    model = seedzoo.create_model("seed_mbv3_large", pretrained=mbv3_folder).eval()
    head = seedzoo.load_projection_head("seed_mbv3_large", pretrained=mbv3_folder / "model.safetensors")
    with torch.no_grad():
        features = model(expected["input_224"])
        embedding = head(features)
    assert rel_max_err(features, expected["features_224"]) <= 1e-4
    assert rel_max_err(embedding, expected["embedding_224"]) <= 1e-4
    assert model.seedzoo_weights.sha256 == sha256_file(mbv3_folder / "model.safetensors")


def test_weight_file_format(mbv3_folder):
    header = read_header(mbv3_folder / "model.safetensors")
    assert header.metadata["format"] == "seedzoo"
    assert header.metadata["architecture"] == "seed_mobilenetv3_large"
    assert header.metadata["entry"] == "seed_mbv3_large.mocov2_r50_200ep"
    assert all(k.startswith(("backbone.", "head.")) for k in header.shapes)
    assert set(header.head_shapes) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    weights = load_weights(mbv3_folder)
    assert weights.sha256 == sha256_file(mbv3_folder / "model.safetensors")
    assert weights.backbone.keys() == header.backbone_shapes.keys()


def _flip_byte(path: Path, offset_from_end: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0x01
    path.write_bytes(bytes(data))


def test_flipped_byte_raises_checksum_error(mbv3_folder, tmp_path):
    folder = tmp_path / "damaged"
    folder.mkdir()
    for name in ("model.safetensors", "config.json"):
        (folder / name).write_bytes((mbv3_folder / name).read_bytes())
    good = sha256_file(folder / "model.safetensors")
    _flip_byte(folder / "model.safetensors")

    with pytest.raises(ChecksumError) as err:
        load_weights(folder / "model.safetensors", expected_sha256=good)
    message = str(err.value)
    assert "model.safetensors" in message and good in message and "download it again" in message
    with pytest.raises(ChecksumError):
        load_weights(folder)  # the sha256 pinned in config.json
    with pytest.raises(ChecksumError):
        seedzoo.create_model("seed_mbv3_large", pretrained=folder)


def test_truncated_and_foreign_files_are_clear_errors(mbv3_folder, tmp_path):
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes((mbv3_folder / "model.safetensors").read_bytes()[:50_000])
    with pytest.raises(WeightsFormatError, match="truncated"):
        load_weights(truncated)
    text = tmp_path / "weights.safetensors"
    text.write_text("hello")
    with pytest.raises(WeightsFormatError, match="not a safetensors file"):
        load_weights(text)


def test_missing_backbone_key_is_an_error_even_when_timm_would_relax(mbv3_folder, tmp_path):
    weights = load_weights(mbv3_folder)
    dropped = sorted(weights.backbone)[3]
    del weights.backbone[dropped]
    path = tmp_path / "model.safetensors"
    save_weights(path, weights.backbone, weights.head, weights.metadata)
    # num_classes=10 makes timm's loader non-strict (classifier mismatch): seedzoo still refuses.
    with pytest.raises(BackboneMismatchError, match=dropped.replace(".", r"\.")):
        seedzoo.create_model("seed_mbv3_large", pretrained=path, num_classes=10)


def test_weights_of_another_architecture_are_refused(mbv3_folder):
    with pytest.raises(ValueError, match="seed_mobilenetv3_large"):
        seedzoo.create_model("seed_r18", pretrained=mbv3_folder)


def test_timm_options_with_pretrained_path(mbv3_folder):
    x = torch.randn(2, 3, 64, 64)
    base = seedzoo.create_model("seed_mbv3_large", pretrained=mbv3_folder).eval()
    clf = seedzoo.create_model("seed_mbv3_large", pretrained=mbv3_folder, num_classes=10).eval()
    assert clf(x).shape == (2, 10)
    shared = [k for k in base.state_dict() if k in clf.state_dict()]
    assert len(shared) == len(base.state_dict())
    assert all(torch.equal(base.state_dict()[k], clf.state_dict()[k]) for k in shared)

    with torch.no_grad():
        pooled = base(x)
        assert pooled.shape == (2, seedzoo.model_info("seed_mbv3_large").head.in_dim)
        assert torch.allclose(clf.forward_head(clf.forward_features(x), pre_logits=True), pooled, atol=1e-5)

    feats = seedzoo.create_model("seed_mbv3_large", pretrained=mbv3_folder, features_only=True, out_indices=(1, 3))
    with torch.no_grad():
        maps = feats(x)
    assert [m.shape[1] for m in maps] == feats.feature_info.channels()
    assert [64 // m.shape[-1] for m in maps] == feats.feature_info.reduction()
    first_conv = next(k for k in base.state_dict() if k.endswith("weight"))
    assert any(torch.equal(v, base.state_dict()[first_conv]) for v in feats.state_dict().values())


def test_unknown_name_suggests_close_names():
    with pytest.raises(UnknownModelError) as err:
        seedzoo.create_model("seed_mbv3_lrge")
    assert "seed_mbv3_large" in err.value.suggestions
    with pytest.raises(UnknownModelError, match="seed_resnet18"):
        seedzoo.create_model("seed_resnet81")


def test_names_entries_aliases_and_architectures():
    assert seedzoo.create_model("seed_r18.mocov2_r50_200ep").seedzoo_entry.name == "seed_r18.mocov2_r50_200ep"
    model = seedzoo.create_model("seed_resnet18")
    assert model.seedzoo_entry is None and model.num_classes == 0
    assert seedzoo.model_info("seed_r18").architecture == "seed_resnet18"
    assert "seed_mbv3_large.mocov2_r50_200ep" in seedzoo.list_models("seed_mbv3*", pretrained=True)
    assert "seed_mbv3_large.swav_r50w2_800ep" not in seedzoo.list_models(pretrained=True)
    assert set(seedzoo.list_models(teacher="mocov2_r50*")) >= {"seed_r18.mocov2_r50_200ep", "seed_r34.mocov2_r50_200ep"}


def test_pretrained_true_without_weights_explains_how_to_pass_a_file():
    with pytest.raises(ValueError, match=r"pretrained='path/to/official\.pth\.tar'"):
        seedzoo.create_model("seed_r34.mocov2_r50_200ep", pretrained=True)
    with pytest.raises(ValueError, match="architecture"):
        seedzoo.create_model("seed_resnet18", pretrained=True)
    with pytest.raises(FileNotFoundError, match="no_such_file"):
        seedzoo.create_model("seed_r18", pretrained="no_such_file.pth.tar")


def test_eval_and_train_transforms():
    from torchvision import transforms as T

    image = Image.new("RGB", (400, 300), (120, 30, 200))
    tf = seedzoo.get_transform("seed_mbv3_large")
    resize = next(t for t in tf.transforms if isinstance(t, T.Resize))
    assert resize.size == 256 and resize.interpolation == T.InterpolationMode.BILINEAR
    out = tf(image)
    assert out.shape == (3, 224, 224)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    pixel = torch.tensor([120, 30, 200], dtype=torch.float32).view(3, 1, 1) / 255
    assert torch.allclose(out[:, 112:113, 112:113], (pixel - mean) / std, atol=1e-4)
    # SimCLR's teacher takes raw [0, 1] pixels: its transform does not normalise.
    raw = seedzoo.get_transform("simclr_r50.in1k_200ep")(image)
    assert torch.allclose(raw[:, 112, 112], pixel.flatten(), atol=1e-4)
    assert seedzoo.get_transform("seed_r18", train=True)(image).shape == (3, 224, 224)


def test_training_run_folder_loads_its_export(mbv3_folder, tmp_path):
    export = tmp_path / "run" / "export" / "my_run"
    export.mkdir(parents=True)
    for name in ("model.safetensors", "config.json"):
        (export / name).write_bytes((mbv3_folder / name).read_bytes())
    model = seedzoo.create_model("seed_mbv3_large", pretrained=tmp_path / "run")
    assert model.seedzoo_weights.path == export / "model.safetensors"
    other = tmp_path / "run" / "export" / "other"  # a run of two students: which one must be said
    other.mkdir()
    for name in ("model.safetensors", "config.json"):
        (other / name).write_bytes((mbv3_folder / name).read_bytes())
    with pytest.raises(PretrainedError, match="a run of 2 students \\(my_run, other\\): pass one export"):
        seedzoo.create_model("seed_mbv3_large", pretrained=tmp_path / "run")


def test_seedzoo_file_of_a_plain_timm_architecture(tmp_path):
    """A user's own student (a timm architecture without seedzoo's key filter) round-trips."""
    import timm

    source = timm.create_model("mobilenetv3_small_050", num_classes=0)
    path = tmp_path / "model.safetensors"
    save_weights(path, source.state_dict(), None, {"architecture": "mobilenetv3_small_050"})
    model = seedzoo.create_model("mobilenetv3_small_050", pretrained=path, num_classes=0)
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in model.state_dict().items())
    assert model.seedzoo_entry is None and model.seedzoo_weights.format == "seedzoo"


def test_truncated_file_through_create_model(mbv3_folder, tmp_path):
    truncated = tmp_path / "model.safetensors"
    truncated.write_bytes((mbv3_folder / "model.safetensors").read_bytes()[:-1000])
    with pytest.raises(WeightsFormatError, match="truncated"):
        seedzoo.create_model("seed_mbv3_large", pretrained=truncated)


def test_save_weights_is_byte_deterministic_and_round_trips(tmp_path):
    backbone = {"conv.weight": torch.randn(4, 3).t(), "bn.num_batches_tracked": torch.tensor(7),
                "half": torch.randn(5).half(), "flag": torch.tensor([True, False]), "empty": torch.zeros(0)}
    head = {"0.weight": torch.randn(2, 3)}
    a = save_weights(tmp_path / "a.safetensors", backbone, head, {"architecture": "x", "entry": "y"})
    b = save_weights(tmp_path / "b.safetensors", dict(reversed(list(backbone.items()))), head,
                     {"entry": "y", "architecture": "x"})
    assert a == b == sha256_file(tmp_path / "a.safetensors")
    loaded = load_file(tmp_path / "a.safetensors")  # safetensors' own reader
    assert all(torch.equal(loaded[f"backbone.{k}"], v) for k, v in backbone.items())
    assert torch.equal(loaded["head.0.weight"], head["0.weight"])
