"""detectron2 checkpoints of ResNet students and ONNX export of any backbone."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

import seedzoo
from seedzoo.evaluation.export import (
    OnnxExportError,
    check_onnx,
    export_onnx,
    read_detectron2,
    save_detectron2,
    to_detectron2,
)


def test_detectron2_export_uses_detectron2_key_names_for_basic_blocks(tmp_path):
    model = seedzoo.create_model("seed_resnet18")
    path = save_detectron2(model, tmp_path / "r18.pkl")
    data = read_detectron2(path)
    assert data["__author__"] == "seedzoo" and data["matching_heuristics"] is True
    keys = set(data["model"])
    for key in ("stem.conv1.weight", "stem.conv1.norm.weight", "stem.conv1.norm.running_mean",
                "res2.0.conv1.weight", "res2.0.conv1.norm.bias", "res2.1.conv2.norm.running_var",
                "res3.0.shortcut.weight", "res3.0.shortcut.norm.weight", "res5.1.conv2.weight"):
        assert key in keys, key
    assert not any(k.startswith(("fc", "layer", "stem.bn")) or ".bn" in k or "downsample" in k for k in keys)
    assert all(isinstance(v, np.ndarray) for v in data["model"].values())
    np.testing.assert_array_equal(data["model"]["res4.0.conv1.weight"],
                                  model.state_dict()["layer3.0.conv1.weight"].numpy())


def test_detectron2_export_of_bottleneck_resnet_and_refusal_of_others():
    state = seedzoo.create_model("seed_resnet50").state_dict()
    names = to_detectron2(state)
    assert {"res2.0.conv3.norm.weight", "res2.0.shortcut.norm.running_mean", "res5.2.conv3.weight"} <= set(names)
    with pytest.raises(ValueError, match="ResNet"):
        to_detectron2(seedzoo.create_model("seed_mobilenetv3_large").state_dict())


def test_read_detectron2_refuses_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"model": {"x": np.zeros(2)}, "hook": print}))
    with pytest.raises(pickle.UnpicklingError, match="builtins.print"):
        read_detectron2(path)


@pytest.mark.parametrize("name", ["seed_resnet18", "seed_mobilenetv3_large"])
def test_onnx_output_matches_pytorch(tmp_path, name):
    torch.manual_seed(0)
    model = seedzoo.create_model(name).eval()
    done = export_onnx(model, tmp_path / f"{name}.onnx", input_size=64)
    assert done.difference <= done.rtol * done.scale
    path = done.path
    images = torch.randn(3, 3, 64, 64)  # batch 3 against an export traced at batch 1: dynamic axis
    with torch.no_grad():
        scale = float(model(images).abs().max())
    assert check_onnx(model, path, images) <= 1e-4 * max(scale, 1.0)


def test_an_onnx_graph_that_fails_its_check_never_takes_the_target_name(tmp_path):
    model = seedzoo.create_model("seed_resnet18").eval()
    target = tmp_path / "model.onnx"
    target.write_bytes(b"the previous export")
    with pytest.raises(OnnxExportError, match="was not written"):
        export_onnx(model, target, input_size=32, rtol=1e-30)  # no graph can be that close
    assert target.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no temporary file left
