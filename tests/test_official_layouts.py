"""Every official checkpoint layout splits with every key accounted for; foreign keys and pickles are refused.

Checkpoints are built by the tests from `official_layouts.json` (the authors' exact keys and shapes):
with real tensors for the light ones (loaded end to end through `create_model`), on the meta
device for the others (split only).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import seedzoo
from seedzoo.weights.io import BackboneMismatchError
from seedzoo.weights.official import (
    OfficialLayoutError,
    UnsafeCheckpointError,
    detect_layout,
    read_checkpoint,
    split_official,
)
from seedzoo.zoo import HeadSpec, get_entry

# layout key in official_layouts.json -> (seedzoo architecture, head spec)
CASES = {
    "seed_student/resnet18": ("seed_resnet18", HeadSpec(512, 512)),
    "seed_student/resnet34": ("seed_resnet34", HeadSpec(512, 512)),
    "seed_student/resnet50": ("seed_resnet50", HeadSpec(2048, 2048)),
    "seed_student/efficientnet_b0": ("seed_efficientnet_b0", HeadSpec(1280, 1280)),
    "seed_student/efficientnet_b1": ("seed_efficientnet_b1", HeadSpec(1280, 1280)),
    "seed_student/mobilenetv3_large": ("seed_mobilenetv3_large", HeadSpec(1280, 1280)),
    "moco_v2/resnet50": ("seed_resnet50", HeadSpec(2048, 2048)),
    "moco_v2/resnet101": ("seed_resnet101", HeadSpec(2048, 2048)),
    "moco_v2/resnet152": ("seed_resnet152", HeadSpec(2048, 2048)),
    "swav/resnet50": ("seed_resnet50", HeadSpec(2048, 2048, batch_norm=True)),
    "swav/resnet50w2": ("seed_resnet50w2", HeadSpec(4096, 8192, batch_norm=True)),
    "swav/resnet50w4": ("seed_resnet50w4", HeadSpec(8192, 8192, batch_norm=True)),
    "swav/resnet50w5": ("seed_resnet50w5", HeadSpec(10240, 10240, batch_norm=False)),
    "simclr_seed/resnet50": ("seed_resnet50", HeadSpec(2048, 2048, batch_norm=True)),
}
# Light enough to materialise, save with torch.save and load through create_model.
REAL = ("seed_student/resnet18", "moco_v2/resnet50", "swav/resnet50", "simclr_seed/resnet50")
TEACHER_KEYS = {"module.teacher.conv1.weight": [64, 3, 7, 7], "module.teacher.fc.2.bias": [128]}


@pytest.fixture(scope="module")
def layouts(golden_dir: Path) -> dict:
    return json.loads((golden_dir / "official_layouts.json").read_text())


# Keys every layout drops: stored as one broadcast zero (a one-element storage) to keep files small.
_DROPPED = ("module.encoder_k.", "module.queue", "module.small_queue", "module.teacher.", "module.prototypes.")


def _state(keys: dict[str, list[int]], device: str, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in keys.items():
        counter = k.endswith(("num_batches_tracked", "queue_ptr"))  # integer buffers, as in the real files
        if device == "meta":
            out[k] = torch.empty(shape, device="meta", dtype=torch.long if counter else torch.float32)
        elif counter:
            out[k] = torch.zeros(shape, dtype=torch.long)
        elif k.startswith(_DROPPED):
            out[k] = torch.zeros(1).expand(shape)
        else:
            out[k] = torch.randn(shape, generator=g)
    return out


def _checkpoint(layout_name: str, layouts: dict, device: str = "meta") -> dict:
    """A checkpoint in the container of the official layout."""
    keys = dict(layouts[layout_name]["keys"])
    layout = layout_name.split("/")[0]
    if layout == "seed_student":  # a released file also holds the teacher
        keys.update(TEACHER_KEYS)
    state = _state(keys, device)
    if layout in ("seed_student", "moco_v2"):
        return {"epoch": 200, "arch": layout_name.split("/")[1], "state_dict": state,
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.0}]}}
    if layout == "simclr_seed":
        return {"model": state}
    return state


@pytest.mark.parametrize("layout_name", sorted(CASES))
def test_every_layout_splits_with_every_key_accounted_for(layout_name, layouts):
    architecture, head = CASES[layout_name]
    ckpt = _checkpoint(layout_name, layouts)
    layout = layout_name.split("/")[0]
    assert detect_layout(ckpt) == layout

    split = split_official(ckpt, architecture, head)

    state = ckpt.get("state_dict", ckpt.get("model", ckpt))
    used = len(split.backbone) + len(split.head)
    dropped_in_state = [k for k in split.dropped if k in state]
    assert used + len(dropped_in_state) == len(state)
    assert set(split.dropped) - set(state) == set(ckpt) - {"state_dict", "model"} - set(state)
    assert all(split.dropped.values())
    # Backbone: exactly the architecture's keys and shapes (split_official checks; recheck directly).
    with torch.device("meta"):
        import timm
        expected = {k: v.shape for k, v in timm.create_model(architecture, num_classes=0).state_dict().items()}
    assert {k: v.shape for k, v in split.backbone.items()} == expected
    # Head: exactly the ProjectionHead of the spec.
    with torch.device("meta"):
        head_shapes = {k: v.shape for k, v in seedzoo.models.ProjectionHead.from_spec(head).state_dict().items()}
    assert {k: v.shape for k, v in split.head.items()} == head_shapes


def test_drop_rules_name_what_they_drop(layouts):
    moco = split_official(_checkpoint("moco_v2/resnet50", layouts), "seed_resnet50", HeadSpec(2048, 2048))
    assert moco.dropped["module.encoder_k.conv1.weight"].startswith("MoCo's momentum")
    assert "queue" in moco.dropped["module.queue"]
    assert "optimizer" in moco.dropped["optimizer"]
    swav = split_official(_checkpoint("swav/resnet50", layouts), "seed_resnet50")
    assert "prototypes" in swav.dropped["module.prototypes.weight"]
    seed = split_official(_checkpoint("seed_student/resnet18", layouts), "seed_resnet18")
    assert "teacher" in seed.dropped["module.teacher.conv1.weight"]
    assert swav.head.keys() >= {"1.running_mean"}  # inferred head spec kept the batch norm


def test_single_process_seed_checkpoint_without_module_prefix(layouts):
    ckpt = _checkpoint("seed_student/resnet18", layouts)
    ckpt["state_dict"] = {k.removeprefix("module."): v for k, v in ckpt["state_dict"].items()}
    split = split_official(ckpt, "seed_resnet18", HeadSpec(512, 512))
    assert split.layout == "seed_student" and "teacher.conv1.weight" in split.dropped


def test_mocov1_single_linear_head(layouts):
    ckpt = _checkpoint("moco_v2/resnet50", layouts)
    sd = ckpt["state_dict"]
    for enc in ("encoder_q", "encoder_k"):
        for k in [k for k in sd if k.startswith(f"module.{enc}.fc.")]:
            del sd[k]
        sd[f"module.{enc}.fc.weight"] = torch.empty(128, 2048, device="meta")
        sd[f"module.{enc}.fc.bias"] = torch.empty(128, device="meta")
    split = split_official(ckpt, "seed_resnet50", get_entry("mocov1_r50.in1k_200ep").head)
    assert set(split.head) == {"0.weight", "0.bias"}


def test_unknown_key_beside_the_layout_is_named(layouts):
    ckpt = _checkpoint("seed_student/resnet18", layouts)
    ckpt["state_dict"]["module.extra_buffer"] = torch.empty(3, device="meta")
    with pytest.raises(OfficialLayoutError, match="module.extra_buffer") as err:
        split_official(ckpt, "seed_resnet18")
    assert "seed_student" in str(err.value)


def test_unknown_backbone_key_is_named(layouts):
    ckpt = _checkpoint("swav/resnet50", layouts)
    ckpt["module.layer5.0.conv1.weight"] = torch.empty(8, 8, 1, 1, device="meta")
    with pytest.raises(OfficialLayoutError, match="layer5.0.conv1.weight"):
        split_official(ckpt, "seed_resnet50")


def test_unknown_container_field_is_named(layouts):
    ckpt = _checkpoint("moco_v2/resnet50", layouts)
    ckpt["ema_state"] = {}
    with pytest.raises(OfficialLayoutError, match="ema_state"):
        split_official(ckpt, "seed_resnet50")


def test_missing_backbone_key_is_an_error(layouts):
    ckpt = _checkpoint("seed_student/resnet18", layouts)
    del ckpt["state_dict"]["module.student.layer4.1.bn2.running_var"]
    with pytest.raises(BackboneMismatchError, match="layer4.1.bn2.running_var"):
        split_official(ckpt, "seed_resnet18")


def test_wrong_architecture_is_an_error(layouts):
    with pytest.raises((BackboneMismatchError, OfficialLayoutError)):
        split_official(_checkpoint("seed_student/resnet34", layouts), "seed_resnet18")


def test_head_that_does_not_match_the_entry_is_an_error(layouts):
    with pytest.raises(OfficialLayoutError, match="projection head"):
        split_official(_checkpoint("swav/resnet50", layouts), "seed_resnet50", HeadSpec(2048, 2048))


def test_undetectable_layout_names_its_keys():
    with pytest.raises(OfficialLayoutError, match="cannot tell"):
        detect_layout({"state_dict": {"something.weight": torch.zeros(1)}})


@pytest.mark.parametrize("layout_name", REAL)
def test_official_file_loads_end_to_end(layout_name, layouts, tmp_path):
    """torch.save in the official layout -> create_model(pretrained=path) -> the same tensors."""
    architecture, head = CASES[layout_name]
    ckpt = _checkpoint(layout_name, layouts, device="cpu")
    path = tmp_path / "official.pth.tar"
    torch.save(ckpt, path)
    split = split_official(read_checkpoint(path), architecture, head)

    model = seedzoo.create_model(architecture, pretrained=path, num_classes=0)
    state = model.state_dict()
    assert state.keys() == split.backbone.keys()
    assert all(torch.equal(state[k], v) for k, v in split.backbone.items())
    assert model.seedzoo_weights.format == layout_name.split("/")[0]

    if layout_name == "seed_student/resnet18":  # the head path reads the whole file again: once is enough
        proj = seedzoo.load_projection_head(architecture, pretrained=path)
        assert all(torch.equal(proj.state_dict()[k], v) for k, v in split.head.items())


class _Payload:
    """A pickle that would create a file when unpickled without `weights_only`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": {"module.student.conv1.weight": torch.zeros(1)}, "arch": _Payload(marker)}, path)
    assert not marker.exists()

    with pytest.raises(UnsafeCheckpointError, match="not a plain-tensor checkpoint"):
        read_checkpoint(path)
    with pytest.raises(UnsafeCheckpointError):
        seedzoo.create_model("seed_resnet18", pretrained=path)
    assert not marker.exists()


def test_file_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("not a checkpoint at all\n")
    with pytest.raises(OfficialLayoutError, match="not a"):
        read_checkpoint(path)
