"""Model cards: generated from the registry, in sync with it, readable by huggingface_hub."""
from __future__ import annotations

import dataclasses

import pytest
from huggingface_hub import ModelCard

from seedzoo.cards import check_cards, default_cards_dir, render_card, write_cards
from seedzoo.cli import main as cli
from seedzoo.zoo import Metric, get_entry, list_entries

ENTRIES = list_entries()


def test_checked_in_cards_match_the_registry():
    stale = check_cards()
    assert not stale, f"model_cards/ is out of date for {stale}: run `seedzoo cards`"


def test_one_card_per_entry():
    names = {p.stem for p in default_cards_dir().glob("*.md")}
    assert names == {e.name for e in ENTRIES}
    assert len(names) == len(ENTRIES) >= 23  # 17 official files, 6 recipe-only rows, seedzoo's own


def test_render_is_deterministic():
    entry = get_entry("seed_r18.mocov2_r50_200ep")
    assert render_card(entry) == render_card(entry)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_card_loads_back_with_its_metadata(entry, tmp_path):
    path = tmp_path / "README.md"
    path.write_text(render_card(entry), encoding="utf-8")
    card = ModelCard.load(path)
    data = card.data.to_dict()
    assert data["library_name"] in {"timm", "seedzoo"}
    assert data["seedzoo_lineage"]["role"] == entry.role
    if entry.teacher is not None:
        assert data["seedzoo_lineage"]["teacher"]["entry"] == entry.teacher.entry
    if entry.license in ("cc-by-nc-4.0", "apache-2.0"):  # licences the Hub knows by name
        assert data["license"] == entry.license
    else:
        assert data["license"] == "other" and data["license_name"]
    results = card.data.eval_results or []
    assert len(results) == len(entry.metrics)
    for result, metric in zip(results, entry.metrics):
        assert metric.protocol in result.metric_name and metric.kind in result.metric_name
        assert result.metric_value == metric.value
    assert "## Citation" in card.text and "fang2021seed" in card.text


def test_numbers_are_marked_reported_or_measured_with_the_command():
    measured = Metric(81.25, "knn20_top1", "Fashion-MNIST", "knn", "measured",
                      "seedzoo evaluate knn seed_r18 --data fmnist")
    entry = dataclasses.replace(get_entry("seed_r18.mocov2_r50_200ep"),
                                metrics=get_entry("seed_r18.mocov2_r50_200ep").metrics + (measured,))
    text = render_card(entry)
    assert "| 57.6 | reported |" in text
    assert "| 81.25 | measured | `seedzoo evaluate knn seed_r18 --data fmnist` |" in text


def test_check_detects_a_stale_and_a_foreign_card(tmp_path):
    entries = ENTRIES[:2]
    write_cards(tmp_path, entries)
    assert check_cards(tmp_path, entries) == []
    (tmp_path / f"{entries[0].name}.md").write_text("edited by hand\n", encoding="utf-8")
    (tmp_path / "not_an_entry.md").write_text("x\n", encoding="utf-8")
    assert check_cards(tmp_path, entries) == [entries[0].name, "not_an_entry"]


def test_cli_cards_check_fails_on_stale_cards(tmp_path, capsys):
    assert cli(["cards", "--out", str(tmp_path)]) == 0
    assert cli(["cards", "--check", "--out", str(tmp_path)]) == 0
    next(tmp_path.glob("*.md")).write_text("stale\n", encoding="utf-8")
    assert cli(["cards", "--check", "--out", str(tmp_path)]) == 1
    assert "out of date" in capsys.readouterr().err


def test_readme_zoo_table_is_generated_from_the_registry():
    from seedzoo.cards import default_readme, readme_with_table

    text = default_readme().read_text()
    assert readme_with_table(text) == text, "README's zoo table is stale: run `seedzoo cards`"
    for entry in list_entries():
        assert f"| `{entry.name}` |" in text
