"""`seedzoo embed` (features of a folder of images) and `seedzoo export --onnx`, on a shipped entry."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import seedzoo
from seedzoo.cli import main
from seedzoo.zoo import get_entry

MODEL = "mocov2_r18.fmnist"  # shipped inside the package: no network, 32 px, 512-d features
pytestmark = pytest.mark.skipif(not get_entry(MODEL).weights.embedded, reason="no weights shipped yet")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("SEEDZOO_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture()
def images(tmp_path):
    """Three images of different modes and sizes (one in a sub-folder) and a file that is not an image."""
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8), "L").save(root / "b_gray.png")
    Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8), "RGB").save(root / "a_rgb.jpg")
    Image.fromarray(rng.integers(0, 255, (36, 36), dtype=np.uint8), "L").convert("P").save(root / "sub" / "c.png")
    (root / "notes.txt").write_text("not an image")
    return root


def _expected(root, names) -> torch.Tensor:
    """Each image's features computed directly with the library: what the command must reproduce."""
    model = seedzoo.create_model(MODEL, pretrained=True, num_classes=0).eval()
    transform = seedzoo.get_transform(MODEL)
    with Image.open(root / names[0]) as im:
        assert im.mode in ("RGB", "L", "P")
    batch = torch.stack([transform(Image.open(root / n).convert("RGB")) for n in names])
    with torch.no_grad():
        return model(batch)


@pytest.mark.parametrize("suffix", [".npy", ".pt", ".safetensors"])
def test_embed_writes_n_by_d_features_with_the_file_list_beside(images, tmp_path, capsys, suffix):
    out = tmp_path / f"features{suffix}"
    assert main(["embed", MODEL, str(images), "--out", str(out), "--device", "cpu", "--quiet"]) == 0
    names = (tmp_path / "features.files.txt").read_text().splitlines()
    assert names == ["a_rgb.jpg", "b_gray.png", "sub/c.png"]  # sorted, recursive, no text file
    if suffix == ".npy":
        features = torch.from_numpy(np.load(out))
    elif suffix == ".pt":
        features = torch.load(out, weights_only=True)
    else:
        features = load_file(str(out))["features"]
    assert features.shape == (3, 512) and features.dtype == torch.float32
    torch.testing.assert_close(features, _expected(images, names), rtol=1e-4, atol=1e-4)
    assert f"3 x 512 features of {MODEL}" in capsys.readouterr().out


def test_embed_refuses_a_bad_image_naming_it(images, tmp_path, capsys):
    (images / "broken.png").write_bytes(b"\x89PNG not really")
    code = main(["embed", MODEL, str(images), "--out", str(tmp_path / "f.npy"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("seedzoo: error: cannot read image") and "broken.png" in err and "remove" in err
    assert not (tmp_path / "f.npy").exists()


def test_embed_refuses_an_unknown_output_format_and_an_empty_folder(images, tmp_path, capsys):
    assert main(["embed", MODEL, str(images), "--out", str(tmp_path / "f.csv"), "--quiet"]) == 2
    assert ".npy, .pt, .safetensors" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["embed", MODEL, str(tmp_path / "empty"), "--out", str(tmp_path / "f.npy"), "--quiet"]) == 2
    assert "holds no image files" in capsys.readouterr().err


def test_export_onnx_writes_a_graph_that_matches_pytorch(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    path = tmp_path / "model.onnx"
    assert main(["export", MODEL, "--onnx", str(path)]) == 0
    assert "onnxruntime matches PyTorch" in capsys.readouterr().out
    model = seedzoo.create_model(MODEL, pretrained=True, num_classes=0).eval()
    images = torch.randn(3, 3, 32, 32)  # the entry's own input size, a batch the trace never saw
    (onnx_out,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        ["features"], {"images": images.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(onnx_out), model(images), rtol=1e-4, atol=1e-4)


def test_embed_and_verify_take_the_path_of_an_exported_model_folder(images, tmp_path, capsys):
    from seedzoo.weights.io import load_weights
    from seedzoo.weights.publish import write_model_folder

    entry = get_entry(MODEL)
    loaded = load_weights(seedzoo.create_model(MODEL, pretrained=True).seedzoo_weights.path,
                          expected_sha256=entry.weights.sha256)
    folder = write_model_folder(tmp_path / "export", architecture=entry.architecture, backbone=loaded.backbone,
                                head=None, data=entry.data)  # no entry named: the folder speaks for itself
    out = tmp_path / "f.safetensors"
    assert main(["embed", str(folder), str(images), "--out", str(out), "--quiet"]) == 0
    names = (tmp_path / "f.files.txt").read_text().splitlines()
    torch.testing.assert_close(load_file(str(out))["features"], _expected(images, names), rtol=1e-4, atol=1e-4)
    capsys.readouterr()
    assert main(["verify", str(folder), "--json", "-"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["entry"] is None and report["sha256"]["ok"] is True
