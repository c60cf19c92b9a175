"""torch.hub entrypoints generated from the registry, loaded from this checkout with source="local"."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from seedzoo.zoo import aliases, list_entries

from conftest import rel_max_err

REPO = Path(__file__).resolve().parents[1]
# Entries whose file holds the head trained with the backbone: `_lc` for a classifier, `_head` otherwise.
HEADS = {e.hub_name + ("_lc" if e.ships_classifier else "_head"): e
         for e in list_entries(pretrained=True) if e.weights.with_head}


def test_one_entrypoint_per_alias_and_entry(hubconf):
    # torch.hub's own rule (torch.hub.list lists GitHub repos only): public callables are entrypoints.
    names = {f for f in dir(hubconf) if callable(getattr(hubconf, f)) and not f.startswith("_")}
    expected = set(aliases()) | {e.hub_name for e in list_entries()} | set(HEADS)
    assert names == expected  # no helper leaks in as an entrypoint


def test_docstrings_name_teacher_and_metric(hubconf):
    doc = hubconf.seed_r18__mocov2_r50_200ep.__doc__
    assert "MoCo-v2 ResNet-50" in doc and "57.6" in doc and "reported" in doc.lower()
    alias_doc = hubconf.seed_mbv3_large.__doc__
    assert "seed_mbv3_large.mocov2_r50_200ep" in alias_doc and "55.2" in alias_doc


def test_docstrings_render_the_teacher_as_the_cards_do(hubconf):
    for entry in list_entries():
        if entry.teacher is not None:
            doc = getattr(hubconf, entry.name.replace(".", "__")).__doc__
            assert f"Teacher: {entry.teacher.describe()}." in doc.splitlines()


def test_load_without_weights():
    model = torch.hub.load(str(REPO), "seed_mbv3_large", source="local", pretrained=False)
    assert model.seedzoo_entry.name == "seed_mbv3_large.mocov2_r50_200ep"
    assert model.pretrained_cfg["interpolation"] == "bilinear"


def test_load_official_file_with_timm_kwargs(golden_dir):
    expected = load_file(golden_dir / "seed_mbv3_large.expected.safetensors")
    model = torch.hub.load(str(REPO), "seed_mbv3_large__mocov2_r50_200ep", source="local",
                           pretrained=str(golden_dir / "seed_mbv3_large.pth.tar"), num_classes=0).eval()
    with torch.no_grad():
        features = model(expected["input_224"])
    assert rel_max_err(features, expected["features_224"]) <= 1e-4


def test_hubconf_imports_nothing_heavier_than_seedzoo():
    code = ("import sys; import seedzoo; before = set(sys.modules); sys.path.insert(0, sys.argv[1]); "
            "import hubconf; print(','.join(sorted(set(sys.modules) - before - {'hubconf'})))")
    out = subprocess.run([sys.executable, "-c", code, str(REPO)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_head_entrypoints_cover_every_file_with_a_head_and_state_its_numbers(hubconf):
    assert "supervised_mbv3_large__fmnist_lc" in HEADS and "seed_r18__mocov2_r50_200ep_head" in HEADS
    for name, entry in HEADS.items():
        doc = getattr(hubconf, name).__doc__
        assert entry.name in doc and entry.head.describe() in doc
        assert all(f"{m.value:.2f} {m.metric} on {m.dataset} ({m.protocol}, {m.kind}" in doc for m in entry.metrics)


def test_projection_head_entrypoint_is_the_backbone_then_its_head():
    import seedzoo

    name = "mocov2_r18.fmnist"  # shipped in the package, head included
    model = torch.hub.load(str(REPO), "mocov2_r18__fmnist_head", source="local", pretrained=True).eval()
    backbone = seedzoo.create_model(name, pretrained=True, num_classes=0).eval()
    head = seedzoo.load_projection_head(name, pretrained=True)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 128)
        assert torch.equal(out, head(backbone(x)))


def test_classifier_entrypoint_gives_the_trained_logits():
    import seedzoo

    name = "supervised_mbv3_large.fmnist"
    model = torch.hub.load(str(REPO), "supervised_mbv3_large__fmnist_lc", source="local", pretrained=True).eval()
    classifier = seedzoo.load_projection_head(name, pretrained=True)
    assert torch.equal(model.get_classifier().weight, classifier[0].weight)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert model(x).shape == (2, 10)


def test_student_head_entrypoint_reads_an_official_release_file(golden_dir):
    model = torch.hub.load(str(REPO), "seed_mbv3_large__mocov2_r50_200ep_head", source="local",
                           pretrained=str(golden_dir / "seed_mbv3_large.pth.tar")).eval()
    assert list(dict(model.named_children())) == ["backbone", "head"]
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 128)
