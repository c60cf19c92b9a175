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
    assert data["library_name"] == "seedzoo"  # timm alone cannot build the architectures
    assert data["seedzoo_lineage"]["role"] == entry.role
    if entry.teacher is not None:
        assert data["seedzoo_lineage"]["teacher"]["entry"] == entry.teacher.entry
    if entry.license in ("cc-by-nc-4.0", "apache-2.0"):  # licences the Hub knows by name
        assert data["license"] == entry.license
    else:
        assert data["license"] == "other" and data["license_name"] and data["license_link"].startswith("https://")
    results = card.data.eval_results or []
    on_hub = [m for m in entry.metrics if not m.dataset.startswith("Digits")]  # digits: not a Hub dataset
    assert len(results) == len(on_hub)
    assert {r.dataset_type for r in results} <= {"ILSVRC/imagenet-1k", "zalando-datasets/fashion_mnist"}
    for result, metric in zip(results, on_hub):
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


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.teacher is not None and e.teacher.entry],
                         ids=lambda e: e.name)
def test_a_student_names_its_teacher_as_base_model(entry, tmp_path):
    path = tmp_path / "README.md"
    path.write_text(render_card(entry), encoding="utf-8")
    assert ModelCard.load(path).data.base_model == f"seedzoo/{entry.teacher.entry}"


def test_numbers_on_a_dataset_off_the_hub_stay_in_the_text_only(tmp_path):
    entry = next(e for e in ENTRIES if any(m.dataset.startswith("Digits") for m in e.metrics))
    path = tmp_path / "README.md"
    path.write_text(render_card(entry), encoding="utf-8")
    card = ModelCard.load(path)
    digits = [m for m in entry.metrics if m.dataset.startswith("Digits")]
    assert all(r.dataset_name != digits[0].dataset for r in card.data.eval_results)
    assert f"| {digits[0].metric} | {digits[0].dataset} |" in card.text and "not on the Hugging Face Hub" in card.text


def test_a_recipe_trained_with_several_seeds_shows_their_mean_spread_and_values():
    entry = get_entry("seed_mbv3_large.fmnist_mocov2_r18")
    seeded = Metric(84.1, "knn20_top1", "Fashion-MNIST", "knn", "measured", "cmd", per_seed=(84.1, 83.5, 85.0))
    once = Metric(88.0, "top1", "Fashion-MNIST", "linear_fast", "measured", "cmd")
    text = render_card(dataclasses.replace(entry, metrics=(seeded, once)))
    assert "| knn20_top1 | Fashion-MNIST | knn | 84.1 | measured | `cmd` | 84.20 ± 0.75 (84.1, 83.5, 85) |" in text
    assert "| top1 | Fashion-MNIST | linear_fast | 88 | measured | `cmd` | trained once |" in text
    assert "over 3 seeds: mean ± std (each seed)" in text
    assert "over 3 seeds" not in render_card(dataclasses.replace(entry, metrics=(once,)))


@pytest.mark.slow
def test_a_training_run_exports_a_card_that_publish_accepts(tmp_path, capsys):
    from conversion import publish

    run = tmp_path / "run"
    assert cli(["train", "--preset", "smoke", "max_steps=1", "data.subset=64", "global_batch=16",
                "distill.queue_size=32", "data.workers=0", "device=cpu", "--out", str(run)]) == 0
    export = run / "export" / "smoke"
    config = publish.check_folder(export)  # complete: weights, config.json and README.md, nothing else
    card = ModelCard.load(export / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "seedzoo" and data["license"] == "apache-2.0"
    assert data["datasets"] == ["zalando-datasets/fashion_mnist"]
    assert data["seedzoo_lineage"]["teacher"]["pretrained"] == "random init"
    assert config["seedzoo"]["sha256"] in card.text and config["seedzoo"]["recipe"]["config_hash"] in card.text
    assert "random-init network" in card.text and "base_model" not in data  # no zoo teacher to name


def test_a_run_card_names_its_zoo_teacher_and_inherits_its_licence():
    from seedzoo.cards import render_run_card

    config = {"architecture": "seed_mobilenetv3_large", "num_features": 1280,
              "pretrained_cfg": {"input_size": [3, 32, 32], "crop_pct": 1.0, "interpolation": "bilinear",
                                 "mean": [0.286] * 3, "std": [0.353] * 3},
              "seedzoo": {"entry": "my_student", "trained_by": {"method": "SEED", "epochs": 3, "steps": 30},
                          "recipe": {"config_hash": "0123456789abcdef", "command": "seedzoo train x.yaml",
                                     "config": {"data": {"source": "fashion_mnist"}}},
                          "measured": [{"value": 61.5, "metric": "knn20_top1", "dataset": "fashion_mnist",
                                        "protocol": "knn_monitor", "kind": "measured", "source": "seedzoo train"}],
                          "teacher": {"entry": "mocov2_r50.in1k_200ep", "arch": "seed_resnet50",
                                      "pretrained": "zoo", "teacher_temperature": 0.01},
                          "filename": "model.safetensors", "sha256": "ab" * 32}}
    text = render_run_card(config)
    data = ModelCard(text).data.to_dict()
    assert data["base_model"] == "seedzoo/mocov2_r50.in1k_200ep"
    teacher_license = get_entry("mocov2_r50.in1k_200ep").license
    assert data["license"] == ("other" if teacher_license.startswith("unknown") else teacher_license)
    assert data["license_link"].startswith("https://")
    (result,) = ModelCard(text).data.eval_results
    assert result.dataset_type == "zalando-datasets/fashion_mnist" and result.metric_value == 61.5
    assert "| knn20_top1 | Fashion-MNIST | knn_monitor | 61.5 | measured |" in text


def test_a_run_card_names_a_hub_teacher_as_base_model():
    from seedzoo.cards import render_run_card

    config = {"architecture": "seed_resnet18", "seedzoo": {
        "trained_by": {"method": "SEED", "epochs": 1}, "recipe": {"config_hash": "0" * 16},
        "teacher": {"entry": "", "arch": "seed_resnet50", "pretrained": "hf-hub:someone/moco_r50@0123abc"}}}
    assert ModelCard(render_run_card(config)).data.base_model == "someone/moco_r50"
