"""`seedzoo reproduce fmnist`: stages checked before any work, overrides anywhere, seeds summarised."""
from __future__ import annotations

import json
import math

import pytest
import torch
import yaml

from seedzoo.cli import main
from seedzoo.data.fashion_mnist import available
from seedzoo.experiments.fmnist.evaluation import Row
from seedzoo.experiments.fmnist.report import seed_summary, write_seed_results
from seedzoo.experiments.fmnist.run import NEEDS, STAGES, StageError, check_stages, run_seeds
from seedzoo.experiments.fmnist.stages import STUDENT, supervised_export
from seedzoo.weights.io import load_weights

needs_fmnist = pytest.mark.skipif(not available(), reason="needs Debian's dataset-fashion-mnist")
TOY = ["max_steps=1", "data.subset=64", "global_batch=32", "data.workers=0", "distill.queue_size=64",
       "moco.queue_size=64", "monitor.knn_every=0"]


@pytest.mark.parametrize("stage", ["foo", "seed,mocov3", ""])
def test_an_unknown_stage_is_refused_in_one_line_naming_the_valid_ones(stage, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["reproduce", "fmnist", "--out", str(out), "--stage", stage]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown stage" in err and ", ".join(STAGES) in err
    assert not out.exists()  # refused before anything was written


def test_comma_separated_stages_are_each_run_and_evaluate_adds_what_it_reads(tmp_path):
    wanted, notes = check_stages(["seed,mocov2", "supervised"], tmp_path)
    assert wanted == {"seed", "mocov2", "supervised"} and notes == []
    wanted, notes = check_stages(["evaluate"], tmp_path)
    assert wanted == {"evaluate", *NEEDS["evaluate"]}
    assert len(notes) == 1 and notes[0].startswith("evaluate needs seed, mocov2, supervised")
    assert check_stages(None, tmp_path) == (None, [])  # no --stage: the default stages


def test_a_misspelt_override_is_refused_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["reproduce", "fmnist", "--out", str(out), "epochz=1"]) == 2
    assert "unknown config key 'epochz'" in capsys.readouterr().err and not out.exists()
    assert main(["reproduce", "fmnist", "cifar", "--out", str(out)]) == 2
    assert "name one experiment, fmnist" in capsys.readouterr().err


@needs_fmnist
def test_overrides_after_the_options_reach_the_training_run(tmp_path, single_thread):
    out = tmp_path / "out"
    assert main(["reproduce", "fmnist", "--stage", "seed", "--out", str(out), *TOY, "optim.base_lr=0.01"]) == 0
    config = yaml.safe_load((out / "seed" / "config.yaml").read_text())
    assert config["optim"]["base_lr"] == 0.01 and config["max_steps"] == 1
    assert (out / "seed" / "export" / STUDENT / "model.safetensors").is_file()
    assert not (out / "mocov2").exists()  # only the stage named


@needs_fmnist
def test_seeds_run_one_sub_folder_each_with_its_seed(tmp_path, single_thread):
    with pytest.raises(StageError, match="keep one"):
        run_seeds(tmp_path, 2, ["mocov2"], [*TOY, "seed=3"])
    assert run_seeds(tmp_path, 2, ["mocov2"], TOY, say=lambda _: None) == {0: [], 1: []}
    for seed in (0, 1):
        config = yaml.safe_load((tmp_path / f"seed_{seed}" / "mocov2" / "config.yaml").read_text())
        assert config["seed"] == seed
    assert not (tmp_path / "results_seeds.json").exists()  # no evaluate stage: nothing to summarise


@needs_fmnist
def test_the_labelled_reference_takes_each_seed_too(tmp_path, single_thread):
    run_seeds(tmp_path, 2, ["supervised"], [], limit=16, say=lambda _: None)
    first, second = (load_weights(supervised_export(tmp_path / f"seed_{s}")).backbone for s in (0, 1))
    assert any(not torch.equal(first[k], second[k]) for k in first)  # another initialisation and data order


def _row(label: str, knn20: float) -> Row:
    results = {f"{d}/{k}": {"protocol": k, "knn20_top1": knn20, "knn200_top1": knn20 - 1, "top1": knn20 + 1}
               for d in ("fashion_mnist", "digits") for k in ("knn", "linear", "linear_1pct")}
    return Row(label, "w", results)


def test_the_seed_summary_gives_each_numbers_mean_and_sample_standard_deviation(tmp_path):
    by_seed = {0: [_row("SEED", 80.0), _row("MoCo", 70.0)], 1: [_row("MoCo", 72.0), _row("SEED", 84.0)]}
    summary = seed_summary(by_seed)
    assert [r["label"] for r in summary] == ["SEED", "MoCo"]  # the first seed's order, matched by label
    seed = summary[0]["results"]["fashion_mnist/knn"]["knn20_top1"]
    assert seed["values"] == [80.0, 84.0] and seed["mean"] == 82.0
    assert math.isclose(seed["std"], math.sqrt(8.0))  # sample std (n - 1) of 80 and 84
    write_seed_results(tmp_path, by_seed)
    saved = json.loads((tmp_path / "results_seeds.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["rows"] == summary
    table = (tmp_path / "results_seeds.md").read_text()
    assert "| SEED | 82.00 ± 2.83 |" in table and "| MoCo | 71.00 ± 1.41 |" in table
    assert seed_summary({0: [_row("SEED", 80.0)]})[0]["results"]["digits/knn"]["knn20_top1"]["std"] is None


def _rows(student: float, moco: float, random_student: float, teacher: float = 90.0,
          random_teacher: float = 84.0, pixels: float = 85.0) -> list[Row]:
    from seedzoo.experiments.fmnist.evaluation import PIXEL_LABELS, RANDOM_INIT_LABELS
    from seedzoo.experiments.fmnist.stages import TEACHER, TRAINING

    label = {s.key: s.label for s in TRAINING}
    return [_row(label["teacher"], teacher), _row(label["seed"], student), _row(label["mocov2"], moco),
            _row(RANDOM_INIT_LABELS[TEACHER], random_teacher), _row(RANDOM_INIT_LABELS[STUDENT], random_student),
            *(_row(p, pixels - i) for i, p in enumerate(PIXEL_LABELS.values()))]


def test_a_target_is_met_on_the_mean_only_when_every_seed_agrees():
    from seedzoo.experiments.fmnist.report import targets, targets_table, verdict

    # seed 1's student is below MoCo-v2 alone and its random init: the means still clear both bars
    by_seed = {0: _rows(student=90.0, moco=84.0, random_student=80.0),
               1: _rows(student=83.0, moco=84.0, random_student=84.0),
               2: _rows(student=89.0, moco=84.0, random_student=80.0)}
    teacher_pixels, teacher_random, student_pixels, student_random, student_moco, digits = targets(by_seed)
    assert teacher_pixels.gaps["kNN-20"] == (5.0, 5.0, 5.0) and teacher_pixels.met  # the better pixel row: 85
    assert teacher_random.gaps["kNN-20"] == (6.0, 6.0, 6.0) and teacher_random.met
    assert student_random.gaps["kNN-20"] == (10.0, -1.0, 9.0)
    assert not student_random.met  # mean +6 >= 3, but seed 1 goes the other way
    assert student_moco.gaps["linear"] == (6.0, -1.0, 5.0) and not student_moco.met and not digits.met
    assert not student_pixels.met  # seed 1: 83 < 85
    table = targets_table(by_seed)
    assert "| +6.00 (+10.00, -1.00, +9.00) |" in table and "mean over 3 seeds (each seed)" in table
    assert "does not hold in every seed" in verdict(by_seed) and "3 seeds each" in verdict(by_seed)
    # the same three seeds with seed 1 fixed: every target that reads the seeds is met
    by_seed[1] = _rows(student=88.0, moco=84.0, random_student=80.0)
    assert all(t.met for t in targets(by_seed))
    assert "holds in every seed" in verdict(by_seed) and "does not" not in verdict(by_seed)
    # one run is one seed: the table shows its gaps alone
    assert "| +10.00 |" in targets_table({0: by_seed[0]})


@needs_fmnist
def test_every_seed_distils_one_teacher_and_a_release_keeps_every_seeds_numbers(tmp_path, single_thread):
    from seedzoo.experiments.fmnist.release import ReleaseTarget, packed_hashes
    from seedzoo.experiments.fmnist.stages import TEACHER, TRAINING, seed_folder

    out, ship = tmp_path / "out", tmp_path / "ship"
    target = ReleaseTarget(ship, tmp_path / "measured.json", tmp_path / "fingerprints.json")
    by_seed = run_seeds(out, 2, ["teacher", "evaluate"], TOY, limit=32, release_to=target, say=lambda _: None)
    teacher = TRAINING[0].export(out)
    assert teacher == out / "teacher" / "export" / TEACHER and (teacher / "model.safetensors").is_file()
    student = next(s for s in TRAINING if s.key == "seed")
    for seed in (0, 1):
        folder = seed_folder(out, seed)
        assert not (folder / "teacher").exists() and not (folder / "features").exists()  # one teacher, one cache
        config = json.loads((student.export(folder) / "config.json").read_text())["seedzoo"]
        assert config["teacher"]["pretrained"] == str(teacher)
        assert yaml.safe_load((folder / "seed" / "config.yaml").read_text())["seed"] == seed
    # each seed's random-init rows are the networks that seed's runs start from
    random_rows = [json.loads((seed_folder(out, s) / "evaluation" / f"random_{STUDENT}.json").read_text())
                   for s in (0, 1)]
    assert random_rows[0]["identity"]["model"] != random_rows[1]["identity"]["model"]
    # the release ships seed 0's files and records every seed's numbers beside them
    record = json.loads(target.record.read_text())
    assert record["seeds"] == [0, 1]
    assert record["entries"][STUDENT]["sha256"] == packed_hashes(seed_folder(out, 0))[STUDENT]
    label = {s.key: s.label for s in TRAINING}
    rows = {seed: {r.label: r.results for r in rows} for seed, rows in by_seed.items()}
    knn = next(m for m in record["entries"][STUDENT]["metrics"]
               if m["metric"] == "knn20_top1" and m["dataset"] == "Fashion-MNIST")
    assert knn["per_seed"] == [round(rows[s][label["seed"]]["fashion_mnist/knn"]["knn20_top1"], 2) for s in (0, 1)]
    assert knn["value"] == knn["per_seed"][0]
    assert not any("per_seed" in m for m in record["entries"][TEACHER]["metrics"])  # trained once
    from seedzoo.experiments.fmnist.evaluation import RANDOM_INIT_LABELS

    assert all(len(m["per_seed"]) == 2 for m in record["references"][RANDOM_INIT_LABELS[STUDENT]])
    # the students' cards read the seeds
    assert "2 seeds each" in record["entries"][STUDENT]["notes"][0]
    # and so does the README section: means and spreads, every seed's gap, the first seed's files
    from seedzoo.experiments.fmnist.report import readme_section, seed_summary, seeds_table, targets_table

    section = readme_section(out)
    assert seeds_table(seed_summary(by_seed), 2) in section and targets_table(by_seed) in section
    assert "2 seeds (seed = 0, 1)" in section and "--seeds 2` end to end" in section
    assert f"{STUDENT} " in section  # the packed files' sizes, found in seed 0's folder
