"""Every seedzoo architecture keeps timm's model contract and accepts the official checkpoint layouts."""
from __future__ import annotations

import json

import pytest
import timm
import torch
from safetensors.torch import save_file
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, resolve_data_config

import seedzoo  # noqa: F401  (registers the architectures)
from seedzoo.models import (
    ProjectionHead,
    UnmappedKeysError,
    list_architectures,
    mocov1_head,
    mocov2_head,
    remap_official_backbone,
    seed_student_head,
    simclr_head,
    swav_head,
)
from seedzoo.zoo import HeadSpec, get_entry, list_entries

ARCHS = list_architectures()
# Too big to run on a shared CPU: checked on the meta device (shapes only).
META_ARCHS = {"seed_resnet101", "seed_resnet152", "seed_resnet50w2", "seed_resnet50w4", "seed_resnet50w5"}
BATCH, SIZE = 2, 64
EXPECTED_WIDTH = {
    "seed_mobilenetv3_large": 1280, "seed_efficientnet_b0": 1280, "seed_efficientnet_b1": 1280,
    "seed_resnet18": 512, "seed_resnet34": 512, "seed_resnet50": 2048, "seed_resnet101": 2048,
    "seed_resnet152": 2048, "seed_resnet50w2": 4096, "seed_resnet50w4": 8192, "seed_resnet50w5": 10240,
    "seed_mobilenetv3_large_lowres": 1280, "seed_efficientnet_b0_lowres": 1280, "seed_efficientnet_b1_lowres": 1280,
    "seed_resnet18_lowres": 512, "seed_resnet34_lowres": 512, "seed_resnet50_lowres": 2048,
}
LOWRES = [a for a in ARCHS if a.endswith("_lowres")]
IMAGENET = [a for a in ARCHS if a not in LOWRES]


pytestmark = pytest.mark.usefixtures("single_thread")


def _device(arch: str) -> str:
    return "meta" if arch in META_ARCHS else "cpu"


def _input(arch: str) -> torch.Tensor:
    return torch.randn(BATCH, 3, SIZE, SIZE).to(_device(arch))


def test_registry_lists_every_architecture_of_the_zoo():
    assert set(ARCHS) == set(EXPECTED_WIDTH)
    assert {e.architecture for e in list_entries()} <= set(ARCHS)


@pytest.mark.parametrize("arch", ARCHS)
def test_timm_contract(arch):
    torch.manual_seed(0)
    model = timm.create_model(arch, num_classes=7, device=_device(arch)).eval()
    x = _input(arch)
    with torch.no_grad():
        logits = model(x)
        feats = model.forward_features(x)
        assert logits.shape == (BATCH, 7)
        assert feats.ndim == 4 and feats.shape[1] == model.num_features
        pre = model.forward_head(feats, pre_logits=True)
        assert pre.shape == (BATCH, model.head_hidden_size)
        assert model.head_hidden_size == EXPECTED_WIDTH[arch]
        assert model.get_classifier().out_features == 7
        assert model.get_submodule(model.pretrained_cfg["classifier"]) is model.get_classifier()

        model.reset_classifier(0)
        out = model.forward_head(feats)
        assert out.shape == (BATCH, model.head_hidden_size)
        assert out.is_meta or torch.equal(out, pre)
        model.reset_classifier(3)
        assert model.forward_head(feats).shape == (BATCH, 3)

    # built with the defaults of its pretrained cfg, which has no classifier: returns the representation
    headless = timm.create_model(arch, device=_device(arch)).eval()
    with torch.no_grad():
        assert headless.forward_head(feats).shape == (BATCH, EXPECTED_WIDTH[arch])


@pytest.mark.parametrize("arch", ARCHS)
def test_features_only_matches_feature_info(arch):
    out_indices = (1, 2, 4)
    model = timm.create_model(arch, features_only=True, out_indices=out_indices, device=_device(arch)).eval()
    info = model.feature_info
    assert len(info.channels()) == len(out_indices)
    with torch.no_grad():
        maps = model(_input(arch))
    assert [m.shape[1] for m in maps] == info.channels()
    assert [SIZE // m.shape[-1] for m in maps] == info.reduction()
    if arch in LOWRES:  # stem at stride 1; the ResNets also drop the max-pool
        assert info.reduction() == ([1, 2, 8] if "resnet" in arch else [2, 4, 16])
    else:
        assert info.reduction() == [4, 8, 32]


@pytest.mark.parametrize("arch", IMAGENET)
def test_data_config_is_imagenet_224_bilinear(arch):
    model = timm.create_model(arch, device="meta")
    config = resolve_data_config({}, model=model)
    assert config["input_size"] == (3, 224, 224)
    assert config["crop_pct"] == 0.875
    assert config["interpolation"] == "bilinear"
    assert config["mean"] == IMAGENET_DEFAULT_MEAN and config["std"] == IMAGENET_DEFAULT_STD


@pytest.mark.parametrize("arch", LOWRES)
def test_lowres_variant_is_its_imagenet_architecture_with_a_stride_1_stem(arch):
    imagenet = timm.create_model(arch.removesuffix("_lowres"), num_classes=0, device="meta")
    lowres = timm.create_model(arch, num_classes=0, device="meta")
    ours, theirs = lowres.state_dict(), imagenet.state_dict()
    assert list(ours) == list(theirs)  # same key names: the same loaders, converters and heads
    first = lowres.pretrained_cfg["first_conv"]
    assert [k for k in ours if ours[k].shape != theirs[k].shape] == (
        [f"{first}.weight"] if "resnet" in arch else [])  # the ResNet stem is 3x3 instead of 7x7
    stem = lowres.get_submodule(first)
    assert stem.stride == (1, 1)
    if "resnet" in arch:
        assert stem.kernel_size == (3, 3) and isinstance(lowres.maxpool, torch.nn.Identity)
    config = resolve_data_config({}, model=lowres)
    assert config["input_size"] == (3, 32, 32) and config["crop_pct"] == 1.0
    x = torch.zeros(1, 3, 32, 32, device="meta")
    assert lowres.forward_features(x).shape[-1] == lowres.pretrained_cfg["pool_size"][-1]


def test_mobilenetv3_drop_rate_and_global_pool():
    model = timm.create_model("seed_mobilenetv3_large", drop_rate=0.3, global_pool="max")
    assert model.classifier[2].p == 0.3
    assert model.global_pool.pool_type == "max"
    with pytest.raises(ValueError, match="classifier.0"):
        model.reset_classifier(0, "catavgmax")  # twice the features classifier.0 takes


def test_mobilenetv3_without_a_pool_runs_its_head_at_every_position():
    """SEED's classifier.0 Linear(960, 1280) applied per position, as timm's 1x1 conv_head: the pooled
    model's output is the mean of the unpooled one's only where the head is linear, so compare maps."""
    torch.manual_seed(0)
    pooled = timm.create_model("seed_mobilenetv3_large", num_classes=0).eval()
    unpooled = timm.create_model("seed_mobilenetv3_large", num_classes=0, global_pool="").eval()
    unpooled.load_state_dict(pooled.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        maps = unpooled(x)
        features = pooled.forward_features(x)
        at_one_position = pooled.classifier(features[:, :, 1, 0])
    assert maps.shape == (2, 1280, 2, 2)
    torch.testing.assert_close(maps[:, :, 1, 0], at_one_position)


def test_efficientnet_keeps_lukemelas_batch_norm():
    model = timm.create_model("seed_efficientnet_b0", device="meta")
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.eps == 1e-3 and m.momentum == 0.01 for m in norms)


# --- weight formats ----------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["seed_mobilenetv3_large", "seed_efficientnet_b0", "seed_resnet18"])
@pytest.mark.parametrize("layout", ["seedzoo", "timm"])
def test_pretrained_file_loads_through_timm(arch, layout, tmp_path):
    torch.manual_seed(0)
    source = timm.create_model(arch, num_classes=0)
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    if layout == "seedzoo":
        width = source.head_hidden_size
        head = {f"head.{k}": v for k, v in seed_student_head(width).state_dict().items()}
        state = {**{f"backbone.{k}": v for k, v in state.items()}, **head}
    save_file(state, tmp_path / "model.safetensors")

    loaded = timm.create_model(arch, pretrained=True, num_classes=5,
                               pretrained_cfg_overlay=dict(file=str(tmp_path / "model.safetensors")))
    loaded_state = loaded.state_dict()
    for k, v in source.state_dict().items():
        assert torch.equal(loaded_state[k], v), k
    assert loaded.get_classifier().out_features == 5


# --- official layouts (official_layouts.json of the golden fixtures) --------------------------------

# layout -> (zoo entry giving architecture and head, container prefix, head prefix, dropped prefixes)
LAYOUTS = {
    "seed_student/resnet18": ("seed_r18.mocov2_r50_200ep", "module.student.", "fc.", ()),
    "seed_student/resnet34": ("seed_r34.mocov2_r50_200ep", "module.student.", "fc.", ()),
    "seed_student/resnet50": ("seed_r50.swav_r50w4_400ep", "module.student.", "fc.", ()),
    "seed_student/efficientnet_b0": ("seed_effb0.swav_r50w2_800ep", "module.student.", "fc.", ()),
    "seed_student/efficientnet_b1": ("seed_effb1.mocov2_r152_200ep", "module.student.", "fc.", ()),
    "seed_student/mobilenetv3_large": ("seed_mbv3_large.mocov2_r50_200ep", "module.student.", "fc.", ()),
    "moco_v2/resnet50": ("mocov2_r50.in1k_200ep", "module.encoder_q.", "fc.", ()),
    "moco_v2/resnet101": ("mocov2_r101.in1k_200ep", "module.encoder_q.", "fc.", ()),
    "moco_v2/resnet152": ("mocov2_r152.in1k_200ep", "module.encoder_q.", "fc.", ()),
    "swav/resnet50": ("swav_r50.in1k_800ep", "module.", "projection_head.", ("prototypes.",)),
    "swav/resnet50w2": ("swav_r50w2.in1k_400ep", "module.", "projection_head.", ("prototypes.",)),
    "swav/resnet50w4": ("swav_r50w4.in1k_400ep", "module.", "projection_head.", ("prototypes.",)),
    "swav/resnet50w5": ("swav_r50w5.in1k_400ep", "module.", "projection_head.", ("prototypes.",)),
    "simclr_seed/resnet50": ("simclr_r50.in1k_200ep", "module.module.module.", "fc.", ()),
}


@pytest.fixture(scope="module")
def official_layouts(golden_dir):
    return json.loads((golden_dir / "official_layouts.json").read_text())


def test_every_official_layout_is_covered(official_layouts):
    assert set(official_layouts) == set(LAYOUTS)


def _shapes(state) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_official_layout_maps_onto_architecture(layout, official_layouts):
    entry_name, prefix, head_prefix, dropped = LAYOUTS[layout]
    entry = get_entry(entry_name)
    backbone, head = {}, {}
    for key, shape in official_layouts[layout]["keys"].items():
        if not key.startswith(prefix):
            continue  # teacher, key encoder, queue
        key = key[len(prefix):]
        if key.startswith(dropped):
            continue
        target = head if key.startswith(head_prefix) else backbone
        target[key.removeprefix(head_prefix)] = torch.empty(shape, device="meta")

    model = timm.create_model(entry.architecture, num_classes=0, device="meta")
    assert _shapes(remap_official_backbone(entry.architecture, backbone)) == _shapes(model.state_dict())
    with torch.device("meta"):
        assert _shapes(head) == _shapes(ProjectionHead.from_spec(entry.head).state_dict())


def test_remap_names_keys_it_cannot_map():
    backbone = {k: torch.empty(v.shape, device="meta") for k, v in
                timm.create_model("seed_resnet18", num_classes=0, device="meta").state_dict().items()}
    backbone["fc.0.weight"] = torch.empty(512, 512, device="meta")
    with pytest.raises(KeyError) as info:
        remap_official_backbone("seed_resnet18", backbone)
    assert isinstance(info.value, UnmappedKeysError)
    assert info.value.keys == ["fc.0.weight"] and "fc.0.weight" in str(info.value)


def test_remap_maps_lukemelas_block_names():
    lukemelas = {"_conv_stem.weight": torch.empty(32, 3, 3, 3), "_blocks.0._depthwise_conv.weight":
                 torch.empty(32, 1, 3, 3), "_blocks.1._expand_conv.weight": torch.empty(96, 16, 1, 1),
                 "_blocks.3._bn1.running_var": torch.empty(144), "_bn1.weight": torch.empty(1280)}
    assert list(remap_official_backbone("seed_efficientnet_b0", lukemelas)) == [
        "conv_stem.weight", "blocks.0.0.conv_dw.weight", "blocks.1.0.conv_pw.weight",
        "blocks.2.0.bn2.running_var", "bn2.weight"]


# --- projection heads ---------------------------------------------------------------------------------

@pytest.mark.parametrize("head, keys", [
    (seed_student_head(512), ["0.weight", "0.bias", "2.weight", "2.bias"]),
    (mocov1_head(), ["0.weight", "0.bias"]),
    (simclr_head(), ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                     "1.num_batches_tracked", "3.weight", "3.bias"]),
])
def test_projection_head_keys(head, keys):
    assert list(head.state_dict()) == keys
    assert head(torch.randn(4, head.in_dim)).shape == (4, 128)


def test_projection_head_specs():
    with torch.device("meta"):
        assert mocov2_head().spec == HeadSpec(2048, 2048, 128)
        assert swav_head(4096, 8192).spec == HeadSpec(4096, 8192, 128, True)
        assert swav_head(10240, 10240, batch_norm=False).spec == HeadSpec(10240, 10240, 128, False)
    assert ProjectionHead.from_spec(HeadSpec(64, 32, 16, True)).spec == HeadSpec(64, 32, 16, True)
    with pytest.raises(ValueError, match="batch_norm=False"):
        ProjectionHead(64, 0, 128, batch_norm=True)


# --- the registry as timm sees it: one name per entry, its preprocessing, its pool size ------------------

def test_recorded_backbone_params_match_the_networks():
    from seedzoo.models import meta_model
    from seedzoo.zoo.architectures import BACKBONE_PARAMS

    assert set(BACKBONE_PARAMS) == set(ARCHS)
    counted = {a: sum(p.numel() for p in meta_model(a).parameters()) for a in ARCHS}
    assert counted == BACKBONE_PARAMS


PRETRAINED = list_entries(pretrained=True)


@pytest.mark.parametrize("entry", PRETRAINED, ids=lambda e: e.name)
def test_every_entry_is_one_timm_tag_with_its_preprocessing_and_pool_size(entry):
    assert get_entry(entry.timm_name) is entry and get_entry(entry.hub_name) is entry  # the alias table
    assert entry.timm_name in timm.list_pretrained(entry.architecture + ".*")
    model = timm.create_model(entry.timm_name, num_classes=0, device="meta").eval()  # not pretrained: no download
    cfg = model.pretrained_cfg
    assert cfg["tag"] == entry.timm_name.split(".", 1)[1] and cfg["architecture"] == entry.architecture
    assert tuple(cfg["input_size"]) == entry.data.input_size and cfg["crop_pct"] == entry.data.crop_pct
    assert tuple(cfg["mean"]) == entry.data.normalization.mean
    features = model.forward_features(torch.zeros(1, *entry.data.input_size, device="meta"))
    assert tuple(features.shape[-2:]) == tuple(cfg["pool_size"])


def test_an_entry_name_is_not_reused_as_another_entrys_timm_tag_or_hub_entrypoint():
    from seedzoo.zoo import names

    spellings = [n for table in names().values() for n in set(table.values())]
    assert len(spellings) == len(set(spellings))


# --- timm's model contract, checked as timm's own tests/test_models.py checks its architectures ---------
# (its checks of each architecture and tag, written here without downloading weights; the shape checks run
# on the meta device, so even the 586M-parameter ResNet-50x5 costs nothing)

SMALL = [a for a in ARCHS if a not in META_ARCHS]
# Every architecture, and the tags whose input size is not their architecture's (the others have the
# architecture's cfg but for preprocessing, which test_every_entry_is_one_timm_tag_... checks).
TAGGED = ARCHS + [e.timm_name for e in PRETRAINED
                  if e.data.input_size != timm.get_pretrained_cfg(e.architecture).input_size]


@pytest.mark.parametrize("name", TAGGED)
def test_default_cfg_contract(name):
    """forward_features unpooled at the cfg's pool_size for the cfg's input size; pre-logits of
    head_hidden_size; reset_classifier(0) pools, reset_classifier(0, '') and global_pool='' do not."""
    model = timm.create_model(name, device="meta").eval()
    cfg = model.pretrained_cfg
    x = torch.zeros(1, *cfg["input_size"], device="meta")
    features = model.forward_features(x)
    assert features.shape == (1, model.num_features, *cfg["pool_size"])
    assert model.forward_head(features, pre_logits=True).shape == (1, model.head_hidden_size)
    model.reset_classifier(0)
    assert model.num_classes == 0 and model(x).shape == (1, model.head_hidden_size)
    model.reset_classifier(0, "")
    assert model(x).shape[-2:] == tuple(cfg["pool_size"]) and model(x).ndim == 4
    unpooled = timm.create_model(name, num_classes=0, global_pool="", device="meta").eval()
    assert unpooled(x).ndim == 4 and unpooled(x).shape[-2:] == tuple(cfg["pool_size"])
    for key in (cfg["first_conv"],):
        assert f"{key}.weight" in model.state_dict()


def _native_size(arch: str) -> int:
    """The small-input variants at 32 px, their size (at 64 px their stride-1 stems make large maps)."""
    return 32 if arch in LOWRES else SIZE


def _feature_shapes(arch: str, size: int) -> list[tuple[int, int, int]]:
    info = timm.models.FeatureInfo(timm.create_model(arch, device="meta").feature_info, 5)
    return [(c, -(-size // r), -(-size // r)) for c, r in zip(info.channels(), info.reduction())]


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_intermediates(arch):
    """Every level of feature_info in order, the final features equal forward_features, and timm's
    arguments: indices (last n, or a list), stop_early, intermediates_only, output_fmt; the same outputs
    with grad checkpointing; prune_intermediate_layers leaves the last kept level as the output."""
    torch.manual_seed(0)
    model = timm.create_model(arch, device=_device(arch)).eval()
    size = _native_size(arch)
    x = torch.randn(BATCH, 3, size, size, device=_device(arch))
    expected = _feature_shapes(arch, size)
    with torch.no_grad():
        final, levels = model.forward_intermediates(x)
        assert [tuple(t.shape[1:]) for t in levels] == expected
        assert final.shape == model.forward_features(x).shape
        last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
        assert [tuple(t.shape[1:]) for t in last_two] == expected[-2:]
        early = model.forward_intermediates(x, indices=[0, 2], stop_early=True, intermediates_only=True)
        assert [tuple(t.shape[1:]) for t in early] == [expected[0], expected[2]]
        if not final.is_meta:
            torch.testing.assert_close(final, model.forward_features(x))
            torch.testing.assert_close(early[1], levels[2])
            model.set_grad_checkpointing(True)
            again, _ = model.forward_intermediates(x)
            torch.testing.assert_close(again, final, rtol=1e-4, atol=1e-5)
        with pytest.raises((AssertionError, ValueError)):
            model.forward_intermediates(x, output_fmt="NHWC")
        kept = model.prune_intermediate_layers([0, 2])
        assert kept == [0, 2]
        assert tuple(model.forward_features(x).shape[1:]) == expected[2]


@pytest.mark.parametrize("feature_cls", [None, "getter"])
@pytest.mark.parametrize("arch", ARCHS)
def test_features_only(arch, feature_cls):
    kwargs = {} if feature_cls is None else {"feature_cls": feature_cls}
    model = timm.create_model(arch, features_only=True, device=_device(arch), **kwargs).eval()
    size = _native_size(arch)
    with torch.no_grad():
        maps = model(torch.randn(1, 3, size, size, device=_device(arch)))
    assert [tuple(m.shape[1:]) for m in maps] == _feature_shapes(arch, size)
    assert model.feature_info.channels() == [c for c, _, _ in _feature_shapes(arch, size)]


# One network of each class seedzoo defines or builds on (the variants of a class script and trace alike);
# EfficientNet-B0 fixes its padding for 224 px, so its stride-2 convolutions are the asymmetric static kind.
EACH_CLASS = ["seed_resnet18", "seed_resnet18_lowres", "seed_mobilenetv3_large", "seed_efficientnet_b0"]


def _widened_resnet() -> torch.nn.Module:
    """A one-block-per-stage WidenedResNet: the class of the ResNet-50x2/x4/x5 teachers, small enough to run."""
    from timm.models.resnet import BasicBlock

    from seedzoo.models.resnet import WidenedResNet

    return WidenedResNet(BasicBlock, (1, 1, 1, 1), widen=2, num_classes=10)


def _network(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return (_widened_resnet() if name == "widened" else timm.create_model(name)).eval()


def test_efficientnet_b0_uses_the_asymmetric_static_padding():
    from seedzoo.models.efficientnet import Conv2dStaticSame

    model = timm.create_model("seed_efficientnet_b0", device="meta")
    assert any(isinstance(m, Conv2dStaticSame) for m in model.modules())  # what the scripting test covers


@pytest.mark.parametrize("name", [*EACH_CLASS, "widened"])
def test_torchscript_gives_the_same_output(name):
    model = _network(name)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(model)(x), model(x))


@pytest.mark.parametrize("name", [*EACH_CLASS, "widened"])
def test_fx_feature_extraction_and_its_torchscript(name):
    """torchvision's FX feature extractor with timm's tracer settings: the traced output is the model's,
    and the traced graph scripts."""
    from timm.models import get_notrace_functions, get_notrace_modules
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

    model = _network(name)
    tracer_kwargs = dict(leaf_modules=get_notrace_modules(), autowrap_functions=get_notrace_functions(),
                         param_shapes_constant=True)
    _, eval_nodes = get_graph_node_names(model, tracer_kwargs=tracer_kwargs)
    traced = create_feature_extractor(model, return_nodes=[eval_nodes[-1]], tracer_kwargs=tracer_kwargs)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        (out,) = traced(x).values()
        assert torch.equal(out, expected)
        (scripted,) = torch.jit.script(traced)(x).values()
    torch.testing.assert_close(scripted, expected)


@pytest.mark.parametrize("name", [*EACH_CLASS, "widened"])
def test_grad_checkpointing_changes_no_output_or_gradient(name):
    model = _network(name).train()
    x = torch.randn(2, 3, 64, 64)
    outputs, grads = [], []
    for checkpointing in (False, True):
        model.set_grad_checkpointing(checkpointing)
        model.zero_grad()
        torch.manual_seed(0)  # the same dropout / drop-path draws
        y = model(x)
        y.square().mean().backward()
        outputs.append(y.detach())
        grads.append([p.grad.clone() for p in model.parameters()])
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-4, atol=1e-5)
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
