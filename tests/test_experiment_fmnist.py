"""The Fashion-MNIST reproduction, end to end at toy scale: every stage runs, resumes, ships, evaluates."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from seedzoo.data.fashion_mnist import available
from seedzoo.experiments import fmnist
from seedzoo.training.metrics import read_metrics, student_records
from seedzoo.weights.io import load_weights, sha256_file
from seedzoo.zoo import get_entry

pytestmark = pytest.mark.skipif(not available(), reason="needs Debian's dataset-fashion-mnist")

TOY = ["max_steps=2", "data.subset=128", "global_batch=32", "data.workers=0", "distill.queue_size=256",
       "moco.queue_size=256", "monitor.knn_every=1", "monitor.knn_train=64", "monitor.knn_test=32"]


def _package_files() -> dict[str, tuple[int, int]]:
    """(mtime, size) of what a release into the package would overwrite."""
    files = [*fmnist.EMBEDDED_DIR.glob("*"), fmnist.PACKAGE.record, fmnist.PACKAGE.fingerprints]
    return {str(f): (f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.is_file()}


@pytest.fixture(scope="module")
def package_before():
    return _package_files()


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory, package_before, single_thread):
    out, ship = tmp_path_factory.mktemp("fmnist"), tmp_path_factory.mktemp("embedded")
    assert fmnist.run_all(out, stages=["teacher"], overrides=TOY) == []  # a new teacher, asked for
    rows = fmnist.run_all(out, overrides=TOY, limit=64)  # the rest distils from it; no release: nothing leaves OUT
    assert _package_files() == package_before
    fmnist.release(out, rows, fmnist.ReleaseTarget(weights_dir=ship, record=out / "measured.json",
                                                    fingerprints=out / "fingerprints.json"))
    return out, ship, rows


def test_a_run_writes_into_the_package_only_when_released(toy_run, package_before):
    out, ship, _ = toy_run
    assert _package_files() == package_before
    packed = sorted(p.name for p in (out / "release").glob("*.safetensors"))
    assert packed == sorted(p.name for p in ship.glob("*.safetensors")) == sorted(
        f"{name}.safetensors" for name in fmnist.SHIPPED.values())


def test_every_stage_trains_and_every_network_is_in_the_table(toy_run):
    out, _, rows = toy_run
    for stage in fmnist.TRAINING:
        assert stage.export(out) == out / stage.key / "export" / stage.student  # the trainer's layout
        assert (stage.export(out) / "model.safetensors").is_file(), stage.key
        # each student's record stays where it trained: the distilling stages' in their shared run
        records = student_records(read_metrics(stage.trained_in(out)), stage.student)
        assert [r["step"] for r in records if "loss" in r] == [1, 2], stage.key
    assert fmnist.TRAINING[1].trained_in(out) == out / fmnist.STUDENTS_DIR
    labels = [r.label for r in rows]
    assert labels == [s.label for s in fmnist.TRAINING] + [fmnist.reference_label(),
                                                           *fmnist.RANDOM_INIT_LABELS.values(),
                                                           *fmnist.PIXEL_LABELS.values()]
    assert fmnist.reference_label() == f"supervised reference (labels, {fmnist.student_epochs()} epochs)"
    for row in rows:
        for dataset in ("fashion_mnist", "digits"):
            assert row.results[f"{dataset}/knn"]["protocol"] == "knn"
            assert row.results[f"{dataset}/linear_1pct"]["protocol"] == "linear_fast:fraction=0.01"
            assert 0 <= row.results[f"{dataset}/linear"]["top1"] <= 100
    saved = json.loads((out / "results.json").read_text())
    timed = {key for joint in saved["timings_s"] for key in joint.split("+")}  # students trained together
    assert timed >= {s.key for s in fmnist.TRAINING} | {"supervised", "evaluate"}
    assert "seed+seed_tt1e-2" in saved["timings_s"]  # one teacher pass for both students
    assert "| SEED (teacher temp 1e-4, queue 16384) |" in (out / "results.md").read_text()
    assert (out / "curves.png").stat().st_size > 0
    crowding = saved["teacher_embeddings"]
    assert crowding["images"] == 64  # `limit` caps it too
    assert -1 <= crowding["pairwise_cosine_mean"] <= crowding["nearest_cosine_mean"] <= 1
    assert 1 <= crowding["effective_rank"] <= 128 and 1 <= crowding["backbone_effective_rank"] <= 512
    head_knn = [r.results["fashion_mnist/knn_head"] for r in rows if "fashion_mnist/knn_head" in r.results]
    assert len(head_knn) == 1 and 0 <= head_knn[0]["knn20_top1"] <= 100  # the teacher's row only


def test_the_seed_runs_distil_the_teacher_the_reproduction_trained(toy_run):
    out, _, _ = toy_run
    seed, ablation = (next(s for s in fmnist.TRAINING if s.key == key) for key in ("seed", "seed_tt1e-2"))
    config = json.loads((seed.export(out) / "config.json").read_text())["seedzoo"]
    assert config["teacher"]["pretrained"] == str(out / "teacher" / "export" / fmnist.TEACHER)
    assert config["teacher"]["teacher_temperature"] == 1e-4
    ablation = json.loads((ablation.export(out) / "config.json").read_text())["seedzoo"]
    assert ablation["teacher"]["teacher_temperature"] == 0.01 and ablation["entry"] != fmnist.STUDENT


def test_shipped_weights_are_fp16_copies_with_the_recorded_sha256_and_heads_only_where_used(toy_run):
    out, ship, _ = toy_run
    hashes = json.loads((out / "release" / "sha256.json").read_text())
    assert set(hashes) == set(fmnist.SHIPPED.values())
    for key, name in fmnist.SHIPPED.items():
        path = ship / f"{name}.safetensors"
        assert sha256_file(path) == hashes[name]
        shipped, trained = load_weights(path), load_weights(out / key / "export" / name)
        for k, v in trained.backbone.items():
            if v.is_floating_point():
                assert shipped.backbone[k].dtype == torch.float16
                assert torch.equal(shipped.backbone[k], v.half())
        assert trained.head  # every run trains one; the registry says which ship
        assert bool(shipped.head) == get_entry(name).weights.with_head


def test_the_registry_record_holds_each_shipped_entry_with_its_numbers(toy_run):
    out, ship, rows = toy_run
    record = json.loads((out / "measured.json").read_text())
    assert record["command"] == "seedzoo reproduce fmnist"
    assert set(record["entries"]) == set(fmnist.SHIPPED.values())
    seed = record["entries"][fmnist.STUDENT]
    assert seed["sha256"] == sha256_file(ship / f"{fmnist.STUDENT}.safetensors")
    knn = {m["metric"]: m for m in seed["metrics"] if m["dataset"] == "Fashion-MNIST" and m["protocol"] == "knn"}
    row = next(r for r in rows if r.label.startswith("SEED (teacher temp 1e-4"))
    assert knn["knn20_top1"]["value"] == round(row.results["fashion_mnist/knn"]["knn20_top1"], 2)
    assert {m["protocol"] for m in seed["metrics"]} == set(fmnist.PROTOCOLS.values())
    # the random-init and raw-pixel rows are recorded too, the same way, though no file ships for them
    assert list(record["references"]) == [*fmnist.RANDOM_INIT_LABELS.values(), *fmnist.PIXEL_LABELS.values()]
    for label, metrics in record["references"].items():
        row = next(r for r in rows if r.label == label)
        assert {(m["dataset"], m["protocol"], m["metric"]): m["value"] for m in metrics} == {
            (dataset, result["protocol"], metric): round(value, 2) for key, result in row.results.items()
            for dataset in [{"fashion_mnist": "Fashion-MNIST", "digits": "Digits (scikit-learn)"}[key.split("/")[0]]]
            for metric, value in result.items() if metric.endswith("top1")}
    gains = fmnist.seed_vs_moco(rows)
    assert seed["notes"] == record["entries"][fmnist.BASELINE]["notes"] == [fmnist.verdict({0: rows})]
    # one run: no seeds, and no per-seed lists
    assert "seeds" not in record and not any("per_seed" in m for m in seed["metrics"])
    # the teacher's head space is in the README, not in the record that `seedzoo verify` re-measures
    teacher = record["entries"][fmnist.TEACHER]["metrics"]
    assert len(teacher) == len({(m["dataset"], m["protocol"], m["metric"]) for m in teacher})
    assert f"{gains['knn20']:+.2f} points of kNN-20" in seed["notes"][0]
    assert ("does not meet" in seed["notes"][0]) == (min(gains["knn20"], gains["linear"]) < 2)


def test_without_the_teacher_stage_the_students_distil_from_the_shipped_teacher(tmp_path, single_thread):
    assert fmnist.run_all(tmp_path, stages=["seed"], overrides=TOY) == []
    assert not (tmp_path / "teacher").exists()
    seed = next(s for s in fmnist.TRAINING if s.key == "seed")
    config = json.loads((seed.export(tmp_path) / "config.json").read_text())["seedzoo"]
    assert config["teacher"]["pretrained"] == "zoo" and config["teacher"]["entry"] == fmnist.TEACHER


def test_the_targets_compare_the_rows_they_name(toy_run):
    _, _, rows = toy_run
    by_label = {r.label: r.results for r in rows}
    teacher, student, moco = (by_label[next(s.label for s in fmnist.TRAINING if s.key == key)]
                              for key in ("teacher", "seed", "mocov2"))
    random_r18 = by_label[fmnist.RANDOM_INIT_LABELS[fmnist.TEACHER]]
    pixels = [by_label[label] for label in fmnist.PIXEL_LABELS.values()]
    found = fmnist.targets({0: rows})
    over_pixels, over_random, _, _, over_moco, on_digits = found
    knn = "knn20_top1"
    best_pixels = max(p["fashion_mnist/knn"][knn] for p in pixels)
    assert over_pixels.gaps["kNN-20"] == pytest.approx((teacher["fashion_mnist/knn"][knn] - best_pixels,))
    assert over_random.gaps["kNN-20"] == pytest.approx((teacher["fashion_mnist/knn"][knn]
                                                        - random_r18["fashion_mnist/knn"][knn],))
    assert over_moco.gaps["linear"] == pytest.approx((student["fashion_mnist/linear"]["top1"]
                                                      - moco["fashion_mnist/linear"]["top1"],))
    assert on_digits.gaps["kNN-20"] == pytest.approx((student["digits/knn"][knn] - moco["digits/knn"][knn],))
    assert over_moco.met == (min(g[0] for g in over_moco.gaps.values()) >= 2)
    assert over_random.met == (min(g[0] for g in over_random.gaps.values()) >= 5)
    table = fmnist.targets_table({0: rows})
    assert all(t.claim in table for t in found)


def test_the_students_are_set_against_their_architecture_at_random_init(toy_run):
    _, _, rows = toy_run
    by_label = {r.label: r.results for r in rows}
    floor = by_label[fmnist.RANDOM_INIT_LABELS[fmnist.STUDENT]]
    student, moco = (by_label[next(s.label for s in fmnist.TRAINING if s.key == key)] for key in ("seed", "mocov2"))
    note = fmnist.against_random_init(rows)
    below = 0
    for dataset in ("fashion_mnist", "digits"):
        knn, lin = (
            {who: r[f"{dataset}/{k}"][m] - floor[f"{dataset}/{k}"][m] for who, r in (("seed", student), ("moco", moco))}
            for k, m in (("knn", "knn20_top1"), ("linear", "top1")))
        assert f"SEED {knn['seed']:+.2f} kNN-20 and {lin['seed']:+.2f} linear" in note
        assert f"MoCo-v2 alone {knn['moco']:+.2f} and {lin['moco']:+.2f}" in note
        below += sum(g < 0 for g in (*knn.values(), *lin.values()))
    # every gap under zero is named, and the note says none is when none is
    assert note.count(" (kNN-20)") + note.count(" (linear)") == below
    assert ("Below the random-init network" in note) == (below > 0)


def test_the_readme_section_finds_the_packed_files_from_any_working_directory(toy_run, tmp_path, monkeypatch):
    out, _, _ = toy_run
    # a run started in tmp_path as `--out run` records its weights as run/release/NAME.safetensors
    run = tmp_path / "run"
    shutil.copytree(out / "release", run / "release")
    saved = json.loads((out / "results.json").read_text())
    for row in saved["rows"]:
        if row["weights"].endswith(".safetensors"):
            row["weights"] = f"run/release/{Path(row['weights']).name}"
    (run / "results.json").write_text(json.dumps(saved))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # the README written from another directory
    section = fmnist.readme_section(run)
    for path in (run / "release").glob("*.safetensors"):
        assert f"{path.stem} {path.stat().st_size / 1e6:.1f} MB" in section


def test_a_second_call_trains_nothing_again(toy_run):
    out, ship, _ = toy_run
    before = {s.key: (s.export(out) / "model.safetensors").stat().st_mtime_ns for s in fmnist.TRAINING}
    fmnist.run_all(out, stages=["teacher", "seed", "mocov2", "supervised"], overrides=TOY)
    after = {s.key: (s.export(out) / "model.safetensors").stat().st_mtime_ns for s in fmnist.TRAINING}
    assert before == after


def test_the_gains_table_subtracts_the_moco_student_from_every_seed_run(toy_run):
    _, _, rows = toy_run
    table = fmnist.gains_table(rows).splitlines()
    by_label = {r.label: r.results for r in rows}
    seed_stages = [s for s in fmnist.TRAINING if s.distils]
    assert len(table) == 2 + len(seed_stages)
    moco = by_label[next(s.label for s in fmnist.TRAINING if s.key == "mocov2")]
    for stage, line in zip(seed_stages, table[2:]):
        cells = [c.strip() for c in line.strip("|").split("|")]
        expected = by_label[stage.label]["fashion_mnist/knn"]["knn20_top1"] - moco["fashion_mnist/knn"]["knn20_top1"]
        assert cells[0] == stage.label and cells[1] == f"{expected:+.2f}"


def test_the_readme_section_is_replaced_between_its_markers_and_nothing_else_changes(toy_run, tmp_path):
    out, _, rows = toy_run
    start, end = fmnist.README_MARKERS
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{start}\nold text\n{end}\nafter\n")
    fmnist.update_readme(readme, out)
    text = readme.read_text()
    assert text.startswith("# title\n\nbefore\n") and text.endswith(f"{end}\nafter\n") and "old text" not in text
    assert fmnist.markdown_table(rows) in text and fmnist.gains_table(rows) in text
    assert fmnist.verdict({0: rows}) in text and fmnist.against_random_init(rows) in text
    assert fmnist.against_raw_pixels(rows) in text and "| raw pixels: the networks' input (no network) |" in text
    assert "--readme README.md" in text
    assert (tmp_path / "docs" / "fmnist_curves.png").read_bytes() == (out / "curves.png").read_bytes()


def test_the_reference_entry_records_the_budget_it_is_trained_for():
    reference = get_entry(fmnist.REFERENCE)
    assert reference.trained_by.epochs == fmnist.student_epochs() == get_entry(fmnist.BASELINE).recipe.epochs


def test_a_release_pins_the_fingerprint_of_each_file_it_ships(toy_run):
    # What `seedzoo verify NAME --fingerprint` compares a shipped file with: a pin per file, for its sha256.
    from seedzoo.weights.fingerprint import compare_fingerprints, measure_fingerprint

    out, ship, _ = toy_run
    pins = json.loads((out / "fingerprints.json").read_text())["entries"]
    hashes = json.loads((out / "release" / "sha256.json").read_text())
    assert sorted(pins) == sorted(hashes)
    for name, sha in hashes.items():
        entry = get_entry(name)
        assert pins[name]["sha256"] == sha
        actual = measure_fingerprint(entry.architecture, ship / f"{name}.safetensors", entry.data.input_size, sha)
        assert compare_fingerprints(pins[name]["fingerprint"], actual)[0], name


def test_the_evaluation_keeps_each_measured_row_and_measures_again_only_what_changed(toy_run):
    out, _, rows = toy_run
    saved = {path.stem: path.stat().st_mtime_ns for path in (out / "evaluation").glob("*.json")}
    assert set(saved) >= set(fmnist.PIXEL_LABELS) and len(saved) == len(rows)
    packed = {p.stem: p for p in (out / "release").glob("*.safetensors")}
    packed = {key: packed[name] for key, name in fmnist.SHIPPED.items()}
    again = fmnist.evaluate(out, packed, ("fashion_mnist", "digits"), limit=64)
    assert [(r.label, r.results) for r in again] == [(r.label, r.results) for r in rows]
    assert {path.stem: path.stat().st_mtime_ns for path in (out / "evaluation").glob("*.json")} == saved
    # only the rows asked for; a row measured under other settings (here `limit`) is measured again
    pixels = fmnist.evaluate(out, packed, ("digits",), limit=32, rows=["pixels"])
    assert [r.label for r in pixels] == [fmnist.PIXEL_LABELS["pixels"]]
    assert set(pixels[0].results) == {f"digits/{key}" for key in fmnist.PROTOCOLS}
    kept = json.loads((out / "evaluation" / "pixels.json").read_text())
    assert kept["identity"]["limit"] == 32 and kept["row"]["results"] == pixels[0].results


def test_the_raw_pixel_note_names_every_network_below_the_better_pixel_row(toy_run):
    _, _, rows = toy_run
    note = fmnist.against_raw_pixels(rows)
    pixels = [r.results for r in rows if r.label in fmnist.PIXEL_LABELS.values()]
    for dataset, name in (("fashion_mnist", "Fashion-MNIST"), ("digits", "digits")):
        part = note.split(f"On {name} the pixels score")[1].split(". On ")[0].split("The teacher is below")[0]
        best = {m: max(p[f"{dataset}/{k}"][m] for p in pixels) for k, m in (("knn", "knn20_top1"), ("linear", "top1"))}
        below = 0
        for row in rows:
            if row.label in fmnist.PIXEL_LABELS.values():
                continue
            for (k, m), metric in ((("knn", "knn20_top1"), "kNN-20"), (("linear", "top1"), "linear")):
                value = row.results[f"{dataset}/{k}"][m]
                gap = f"{metric} {value:.2f} against {best[m]:.2f}"
                assert (gap in part) == (value < best[m]), (row.label, dataset, metric)
                below += value < best[m]
        assert part.count(" against ") == below
    assert fmnist.against_raw_pixels([r for r in rows if r.label not in fmnist.PIXEL_LABELS.values()]) == ""
