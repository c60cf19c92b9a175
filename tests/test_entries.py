"""One contract test per registry entry (as timm tests every model): it builds, its projection head
builds and fits the backbone, it has a model card and a torch.hub entrypoint, and its recipe loads."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import seedzoo
from seedzoo.training.config import load_config
from seedzoo.training.methods import get_method
from seedzoo.zoo import ENTRIES, ZooEntry
from seedzoo.zoo.schema import Recipe

REPO = Path(__file__).resolve().parents[1]
# Networks too big to initialise quickly on a shared CPU are built on the meta device (shapes, no storage);
# tests/test_models.py runs every architecture on real tensors.
META_ARCHS = {"seed_resnet50", "seed_resnet101", "seed_resnet152", "seed_resnet50w2", "seed_resnet50w4",
              "seed_resnet50w5"}

pytestmark = pytest.mark.usefixtures("single_thread")


def _device(entry: ZooEntry) -> torch.device:
    return torch.device("meta" if entry.architecture in META_ARCHS else "cpu")


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_entry_builds_with_its_head(entry):
    device = _device(entry)
    with device:  # every tensor created in here lives on `device`
        model = seedzoo.create_model(entry.name, num_classes=0).eval()
        head = seedzoo.load_projection_head(entry.name).eval()
        x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        features = model(x)
        z = head(features)
    assert features.shape == (1, entry.head.in_dim)  # the representation the head was trained on
    assert z.shape == (1, entry.head.out_dim) and z.device.type == device.type


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_entry_has_a_card_and_a_hub_entrypoint(entry, hubconf):
    card = REPO / "model_cards" / f"{entry.name}.md"
    assert card.is_file(), f"no model card for {entry.name}: run `seedzoo cards`"
    assert entry.name in card.read_text()
    entrypoint = getattr(hubconf, entry.name.replace(".", "__"), None)
    assert callable(entrypoint), f"hubconf.py has no entrypoint for {entry.name}"


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.recipe is not None], ids=lambda e: e.name)
def test_entry_recipe_loads_and_trains_the_entry(entry):
    """The registry's recipe record (what the card and `seedzoo info` print) states what its YAML trains."""
    cfg, r = load_config(entry.name), entry.recipe
    assert cfg.name == entry.name and cfg.student.arch == entry.architecture
    distils = get_method(cfg.method).needs_teacher
    trained = Recipe(config=r.config, epochs=cfg.epochs, method=cfg.method, global_batch=cfg.global_batch,
                     student_temperature=cfg.distill.student_temperature if distils else cfg.moco.temperature,
                     teacher_temperature=cfg.distill.teacher_temperature if distils else None,
                     queue_size=cfg.distill.queue_size if distils else cfg.moco.queue_size,
                     small_patches=distils and cfg.distill.small_patches, note=r.note)
    assert r == trained


def test_entries_without_a_recipe_are_the_released_teachers_and_the_reference():
    """A recipe is what reproduces an entry; only networks seedzoo does not train may lack one."""
    without = [e for e in ENTRIES if e.recipe is None]
    assert all(e.role in ("teacher", "reference") for e in without), [e.name for e in without]
    assert all(e.role == "reference" or e.source is not None for e in without)
