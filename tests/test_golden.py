"""seedzoo's architectures reproduce the official SEED code's outputs (golden vectors from $SEEDZOO_GOLDEN)."""
from __future__ import annotations

import math

import pytest
import timm
import torch
from safetensors.torch import load_file
from torch import nn

import seedzoo  # noqa: F401  (registers the architectures)
from seedzoo.models import ProjectionHead, remap_official_backbone
from seedzoo.models.efficientnet import Conv2dStaticSame
from tests.conftest import rel_max_err

GOLDEN_STUDENTS = [("seed_mbv3_large", "seed_mobilenetv3_large"), ("seed_effb0", "seed_efficientnet_b0")]
STUDENT_PREFIX = "module.student."


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module", params=GOLDEN_STUDENTS, ids=[g[0] for g in GOLDEN_STUDENTS])
def golden_run(request, golden_dir):
    """The official checkpoint loaded into seedzoo's architecture and head, run on the golden input:
    (features, embedding, expected tensors)."""
    name, arch = request.param
    checkpoint = torch.load(golden_dir / f"{name}.pth.tar", map_location="cpu", weights_only=True)
    student = {k[len(STUDENT_PREFIX):]: v for k, v in checkpoint["state_dict"].items()
               if k.startswith(STUDENT_PREFIX)}
    backbone = {k: v for k, v in student.items() if not k.startswith("fc.")}
    head_state = {k[len("fc."):]: v for k, v in student.items() if k.startswith("fc.")}

    model = timm.create_model(arch, num_classes=0)
    model.load_state_dict(remap_official_backbone(arch, backbone), strict=True)
    head = ProjectionHead(model.head_hidden_size, model.head_hidden_size, 128)
    head.load_state_dict(head_state, strict=True)
    expected = load_file(golden_dir / f"{name}.expected.safetensors")
    with torch.no_grad():
        features = model.eval()(expected["input_224"])
        embedding = head.eval()(features)
    return features, embedding, expected


def test_official_student_features_match_golden(golden_run):
    features, _, expected = golden_run
    assert features.shape == expected["features_224"].shape
    assert rel_max_err(features, expected["features_224"]) <= 1e-4


def test_official_student_embedding_matches_golden(golden_run):
    _, embedding, expected = golden_run
    assert embedding.shape == expected["embedding_224"].shape
    assert rel_max_err(embedding, expected["embedding_224"]) <= 1e-4


# --- EfficientNet-B1: "SAME" padding fixed for 240, as lukemelas' Conv2dStaticSamePadding --------------

def _tf_same(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Reference: TensorFlow SAME padding for one input size, (before, after)."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _applied_padding(conv: nn.Conv2d) -> tuple[int, int]:
    """The (before, after) padding rows a conv applies, whatever its class."""
    if isinstance(conv, Conv2dStaticSame):
        return conv.pad[2], conv.pad[3]
    return conv.padding[0], conv.padding[0]


def _input_heights(model: nn.Module, size: int) -> dict[str, int]:
    """Height of the input each spatial conv sees, traced by running the model at `size`."""
    heights: dict[str, int] = {}

    def record(name: str):
        def hook(module: nn.Module, args: tuple) -> None:
            heights[name] = args[0].shape[-2]
        return hook

    hooks = [m.register_forward_pre_hook(record(n))
             for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.kernel_size[0] > 1]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size, device=next(model.parameters()).device))
    for h in hooks:
        h.remove()
    return heights


@pytest.fixture(scope="module")
def effnet_b1_pair():
    """seed_efficientnet_b1 and timm's tf_efficientnet_b1 (dynamic SAME padding) with the same weights."""
    torch.manual_seed(0)
    static = timm.create_model("seed_efficientnet_b1", num_classes=0).eval()
    for m in static.modules():  # non-trivial BN statistics, so that padding shifts show in the output
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    dynamic = timm.create_model("tf_efficientnet_b1", num_classes=0).eval()
    dynamic.load_state_dict(static.state_dict(), strict=True)
    return static, dynamic


def test_efficientnet_b1_padding_is_static_for_240():
    static = timm.create_model("seed_efficientnet_b1", num_classes=0, device="meta")  # shapes suffice
    convs = dict(static.named_modules())
    at_240, at_224 = _input_heights(static, 240), _input_heights(static, 224)
    strided = [n for n in at_240 if convs[n].stride[0] == 2]
    assert len(strided) == 5  # stem + four stride-2 depthwise convs
    for name in at_240:
        k, s = convs[name].kernel_size[0], convs[name].stride[0]
        assert _applied_padding(convs[name]) == _tf_same(at_240[name], k, s), name
    # at 224 the network keeps the 240 padding, where dynamic SAME padding would differ for some layer
    differ = [n for n in strided if _tf_same(at_224[n], convs[n].kernel_size[0], 2) != _applied_padding(convs[n])]
    assert differ, "static and dynamic padding agree at 224: the B1 difference is gone"


def test_efficientnet_b1_equals_dynamic_same_at_240_only(effnet_b1_pair):
    static, dynamic = effnet_b1_pair
    torch.manual_seed(1)
    with torch.no_grad():
        x240 = torch.randn(1, 3, 240, 240)
        assert rel_max_err(static(x240), dynamic(x240)) < 1e-5
        x224 = torch.randn(1, 3, 224, 224)
        assert rel_max_err(static(x224), dynamic(x224)) > 1e-3
