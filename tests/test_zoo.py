"""The registry: one record per entry, every usable official file covered, only published numbers."""
from __future__ import annotations

import json
import re

import pytest

from seedzoo.zoo import ENTRIES, EXCLUDED_RELEASES, UnknownModelError, aliases, get_entry, list_entries
from seedzoo.zoo.releases import Release, official_releases
from seedzoo.zoo.reported import published_metrics


@pytest.fixture(scope="module")
def release_rows() -> tuple[Release, ...]:
    return official_releases()


def test_every_usable_release_is_an_entry_and_faulty_rows_are_explained(release_rows):
    faulty = [r for r in release_rows if r.note and ("broken" in r.note or "likely" in r.note)]
    assert len(release_rows) == 19 and len(faulty) == 2
    assert len(EXCLUDED_RELEASES) == 2
    for row in faulty:
        assert any(row.arch in why or row.arch in key for key, why in EXCLUDED_RELEASES.items())
    by_url = {e.source.url: e for e in ENTRIES if e.source}
    usable = [r for r in release_rows if r not in faulty]
    assert len(usable) == 17
    for row in usable:
        assert row.url in by_url, f"release {row.filename} has no entry"
        entry = by_url[row.url]
        assert entry.role == row.role
        epochs = entry.trained_by.epochs
        assert epochs == row.epochs, entry.name
    assert len(by_url) == 17


def test_names_follow_arch_tag_and_aliases_point_at_entries():
    for e in ENTRIES:
        assert re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", e.name), e.name
    al = aliases()
    for short in ("seed_mbv3_large", "seed_effb0", "seed_effb1", "seed_r18", "seed_r34", "seed_r50",
                  "mocov2_r50", "swav_r50w2"):
        assert get_entry(short).name == al[short]
    assert get_entry("seed_mbv3_large").name == "seed_mbv3_large.mocov2_r50_200ep"


def test_reported_numbers_are_cells_of_the_published_tables():
    """A card may only state numbers from the papers (`zoo/reported.py`) or numbers seedzoo measured."""
    published = {(m.value, m.metric, m.dataset, m.protocol, m.source) for m in published_metrics()}
    for e in ENTRIES:
        for m in e.metrics:
            if m.kind == "reported":
                cell = (m.value, m.metric, m.dataset, m.protocol, m.source)
                assert cell in published, f"{e.name}: {m} is not a published number"
            else:
                assert m.source.startswith("seedzoo ") or "python" in m.source, f"{e.name}: no command for {m}"


def test_students_have_teacher_lineage_and_recipe():
    for e in list_entries(role="student"):
        assert e.teacher is not None and e.teacher.entry, e.name
        assert get_entry(e.teacher.entry).role == "teacher"
        assert e.recipe is not None and e.recipe.config.endswith(".yaml")
        assert e.head.in_dim == e.head.hidden_dim and e.head.out_dim == 128


def test_recipe_only_entries_cover_the_papers_rows_without_a_file():
    recipe_only = {e.name for e in list_entries(pretrained=False)}
    assert {"seed_mbv3_large.swav_r50w2_800ep", "seed_r18.mocov2_r152_200ep", "seed_r34.mocov2_r50_200ep",
            "seed_r34.mocov2_r152_200ep", "seed_r34.swav_r50w2_800ep"} <= recipe_only
    assert get_entry("seed_mbv3_large.swav_r50w2_800ep").metric("top1").value == 68.2


def test_unknown_name_suggests_close_ones():
    with pytest.raises(UnknownModelError) as err:
        get_entry("seed_mbv3_lage")
    assert "seed_mbv3_large" in str(err.value)
    assert "seed_mbv3_large" in err.value.suggestions


def test_list_filters():
    assert {e.name for e in list_entries("swav_*")} == {e.name for e in ENTRIES if e.name.startswith("swav_")}
    assert all(e.teacher and e.teacher.entry.startswith("mocov2_r152") for e in list_entries(teacher="mocov2_r152"))
    assert all(e.has_file for e in list_entries(pretrained=True))


def test_the_zoo_imports_nothing_above_it():
    """The registry reads its records as data: importing it loads no experiment, trainer or weights code."""
    import json
    import subprocess
    import sys

    code = ("import json, sys, seedzoo.zoo; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('seedzoo.'))))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {m.split(".")[1] for m in json.loads(run.stdout)}
    assert "zoo" in loaded
    assert not loaded & {"experiments", "training", "evaluation", "weights", "factory", "cards", "cli"}, loaded


def test_the_measured_record_keeps_its_reference_rows_through_json():
    from seedzoo.zoo.measured import MeasuredNumber, MeasuredRecord, ShippedEntry

    numbers = (MeasuredNumber(84.1, "knn20_top1", "Fashion-MNIST", "knn"),
               MeasuredNumber(83.0, "top1", "Fashion-MNIST", "linear_fast"))
    record = MeasuredRecord("cmd", {"a": ShippedEntry("0" * 64, numbers[:1])}, {"raw pixels": numbers})
    data = record.to_json()
    assert MeasuredRecord.from_json(json.loads(json.dumps(data))) == record
    assert [m.value for m in record.reference("raw pixels")] == [84.1, 83.0]
    assert record.reference("raw pixels")[0].kind == "measured" and record.reference("other") == ()
    # a record written before the reference rows existed reads as one without them
    del data["references"]
    assert MeasuredRecord.from_json(data).references == {}
    assert "references" not in MeasuredRecord("cmd", record.entries).to_json()


def test_the_measured_record_keeps_every_seeds_number_and_their_spread():
    from seedzoo.zoo.measured import MeasuredNumber, MeasuredRecord, ShippedEntry

    seeded = MeasuredNumber(84.1, "knn20_top1", "Fashion-MNIST", "knn", (84.1, 83.5, 85.0))
    once = MeasuredNumber(88.0, "knn20_top1", "Fashion-MNIST", "knn")
    entries = {"student": ShippedEntry("0" * 64, (seeded,)), "teacher": ShippedEntry("1" * 64, (once,))}
    record = MeasuredRecord("cmd", entries, {"random init": (seeded,)}, seeds=(0, 1, 2))
    data = json.loads(json.dumps(record.to_json()))
    assert data["seeds"] == [0, 1, 2] and data["entries"]["student"]["metrics"][0]["per_seed"] == [84.1, 83.5, 85.0]
    assert "per_seed" not in data["entries"]["teacher"]["metrics"][0]  # trained once: no per-seed list
    assert MeasuredRecord.from_json(data) == record
    (metric,) = record.metrics("student")
    assert metric.value == 84.1 and metric.per_seed == (84.1, 83.5, 85.0)
    assert metric.seed_mean == pytest.approx(84.2) and metric.seed_std == pytest.approx(0.7549834, abs=1e-6)
    (teacher,) = record.metrics("teacher")
    assert teacher.seed_mean == 88.0 and teacher.seed_std is None
    assert record.reference("random init")[0].per_seed == (84.1, 83.5, 85.0)
    # a record of one run has no seeds
    del data["seeds"]
    assert MeasuredRecord.from_json(data).seeds == ()
