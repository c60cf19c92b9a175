"""The reproduction's sweeps at toy scale: the temperature and queue curves, and every distillation
objective side by side; each trains one cohort, resumes, and writes tables recomputed from its records."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from seedzoo.data.fashion_mnist import available
from seedzoo.experiments.fmnist import curves, strategies
from seedzoo.experiments.fmnist.cohorts import ReadmeError, describe_machine, holds, update_section
from seedzoo.experiments.fmnist.run import STAGES, check_stages
from seedzoo.experiments.fmnist.stages import TRAINING

from conftest import REPO

needs_fmnist = pytest.mark.skipif(not available(), reason="needs Debian's dataset-fashion-mnist")
TOY = ["max_steps=1", "data.subset=64", "global_batch=32", "data.workers=0", "monitor.knn_every=0",
       "compress.queue_size=64", "bingo.queue_size=64", "moco.queue_size=64"]
LIMIT = 32


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def curves_run(tmp_path_factory, single_thread):
    out = tmp_path_factory.mktemp("curves")
    rows = curves.run_curves(out, TOY, LIMIT, temperatures=(1e-4, 0.07), queues=())
    return out, rows


@pytest.fixture(scope="module")
def strategies_run(tmp_path_factory, single_thread):
    out = tmp_path_factory.mktemp("strategies")
    rows = strategies.run_strategies(out, TOY, LIMIT, methods=("seed", "l2"))
    return out, rows


def test_the_sweeps_are_stages_that_run_only_when_named(tmp_path):
    assert {"curves", "strategies"} <= set(STAGES)
    assert check_stages(["curves,strategies"], tmp_path) == ({"curves", "strategies"}, [])
    assert not any(stage.key in ("curves", "strategies") for stage in TRAINING)  # not in the default training


def test_the_curve_points_sweep_one_setting_each_at_the_recipes_other():
    points = curves.points()
    assert [(p.tau, p.queue) for p in points] == [(1e-4, 16384), (1e-3, 16384), (1e-2, 16384), (0.07, 16384),
                                                  (1e-4, 1024), (1e-4, 4096), (1e-4, 65536)]  # the recipe's once
    assert curves.recipe_point(["distill.queue_size=4096"]) == curves.Point(1e-4, 4096)


@needs_fmnist
def test_the_curves_train_as_one_cohort_at_each_points_settings(curves_run):
    out, rows = curves_run
    run = out / "curves" / "run"
    students = list(yaml.safe_load_all((run / "config.yaml").read_text()))  # one document per student
    settings = {(s["distill"]["teacher_temperature"], s["distill"]["queue_size"]) for s in students}
    assert settings == {(1e-4, 16384), (0.07, 16384)}
    assert all(s["max_steps"] == 1 and s["teacher"]["pretrained"] == "zoo" for s in students)
    assert len(rows) == 2 and all((out / "evaluation" / f"{p.student().name}.json").is_file()
                                  for p in curves.points(TOY, (1e-4, 0.07), ()))
    assert all(set(r.results) == {"fashion_mnist/knn", "fashion_mnist/linear", "fashion_mnist/linear_1pct"}
               for r in rows)
    assert (out / curves.PLOT).stat().st_size > 0


@needs_fmnist
def test_a_curves_run_in_out_is_read_beside_the_seeded_main_runs(curves_run, tmp_path):
    out, _ = curves_run
    shutil.copytree(out / "curves", tmp_path / "curves", ignore=shutil.ignore_patterns("run"))
    (tmp_path / "seed_0").mkdir()  # the main runs' seed folders, without curves of their own
    assert curves.collect(tmp_path) is not None and curves.collect(tmp_path).runs == 1


def test_the_curves_resume_without_training_or_measuring_again(curves_run):
    out, rows = curves_run
    before = _mtimes(out / "curves" / "run") | _mtimes(out / "evaluation")
    assert curves.run_curves(out, TOY, LIMIT, temperatures=(1e-4, 0.07), queues=()) == rows
    assert _mtimes(out / "curves" / "run") | _mtimes(out / "evaluation") == before


def _with_knn(row: dict, knn20: float) -> dict:
    row = json.loads(json.dumps(row))
    for key, result in row["results"].items():
        if key.endswith("/knn"):
            result["knn20_top1"] = knn20
    return row


@needs_fmnist
def test_the_curves_table_and_plot_are_recomputed_from_every_seeds_records(curves_run, tmp_path):
    out, _ = curves_run
    saved = json.loads((out / "curves" / "results.json").read_text())
    main = next(stage.label for stage in TRAINING if stage.key == "seed")
    for seed, knn in ((0, 40.0), (1, 50.0)):  # two seed folders: each with the curves and a main SEED row
        folder = tmp_path / f"seed_{seed}"
        (folder / "curves").mkdir(parents=True)
        rows = [_with_knn(r, knn + i) for i, r in enumerate(saved["rows"])]
        (folder / "curves" / "results.json").write_text(json.dumps({**saved, "seed": seed, "rows": rows}))
        (folder / "results.json").write_text(json.dumps({"rows": [_with_knn({**saved["rows"][0], "label": main},
                                                                            60.0 + 2 * seed)]}))
    (tmp_path / "curves").mkdir()  # the same seed measured in OUT too: counted once, from its seed folder
    (tmp_path / "curves" / "results.json").write_text(json.dumps({**saved, "seed": 1}))
    curves.write_report(tmp_path)
    text = (tmp_path / "tau_queue.md").read_text()
    assert "| 0.0001 (the recipe's) | 45.00 ± 7.07 |" in text  # seeds 40 and 50: mean and sample std
    assert "| 0.07 | 46.00 ± 7.07 |" in text
    assert "spread by 1.41 points of kNN-20 (standard deviation over 2 seeds)" in text
    assert "kNN-20 is best at tau_T 0.07" in text  # 46 above 45: the finding is read from the records
    assert (tmp_path / curves.PLOT).stat().st_size > 0
    readme = tmp_path / "README.md"
    readme.write_text("intro\n{}\nold\n{}\n".format(*curves.README_MARKERS))
    curves.update_readme(readme, tmp_path)
    assert "| 0.07 | 46.00 ± 7.07 |" in readme.read_text() and "old" not in readme.read_text()
    assert (tmp_path / "docs" / "fmnist_tau_queue.png").read_bytes() == (tmp_path / curves.PLOT).read_bytes()
    record = tmp_path / "seed_1" / "curves" / "results.json"
    changed = json.loads(record.read_text())
    changed["rows"][1] = _with_knn(changed["rows"][1], 20.0)  # tau 0.07 in seed 1: 51 -> 20
    record.write_text(json.dumps(changed))
    assert "| 0.07 | 30.50 ± 14.85 |" in curves.section(tmp_path)
    assert "and the curve agrees with it" in curves.section(tmp_path)


@needs_fmnist
def test_every_objective_trains_in_one_cohort_beside_moco_alone(strategies_run):
    out, rows = strategies_run
    students = list(yaml.safe_load_all((out / "strategies" / "run" / "config.yaml").read_text()))
    assert [s["method"] for s in students] == ["seed", "l2", "moco"]
    assert all(s["student"]["arch"] == "seed_mobilenetv3_large" for s in students)
    assert students[2]["moco"]["bn_splits"] == 8 and students[2]["moco"]["queue_size"] == 64  # baseline, then TOY
    assert [r.label for r in rows] == ["SEED (method=seed)", "L2 (method=l2)", "MoCo-v2 alone (method=moco)"]
    assert all({"fashion_mnist/linear_1pct", "digits/knn", "digits/linear"} <= set(r.results) for r in rows)
    assert "| objective (1 seed: mean ± std) |" in (out / "strategies.md").read_text()


@needs_fmnist
def test_the_strategies_resume_without_training_or_measuring_again(strategies_run):
    out, rows = strategies_run
    before = _mtimes(out / "strategies" / "run") | _mtimes(out / "evaluation")
    assert strategies.run_strategies(out, TOY, LIMIT, methods=("seed", "l2")) == rows
    assert _mtimes(out / "strategies" / "run") | _mtimes(out / "evaluation") == before


@needs_fmnist
def test_the_strategies_table_and_verdict_read_every_seed(strategies_run, tmp_path):
    out, _ = strategies_run
    saved = json.loads((out / "strategies" / "results.json").read_text())
    for seed in range(3):  # L2 above SEED by 2 points in every seed
        folder = tmp_path / f"seed_{seed}" / "strategies"
        folder.mkdir(parents=True)
        rows = [_with_knn(r, 60.0 + seed + (2.0 if r["label"].startswith("L2") else 0.0)) for r in saved["rows"]]
        (folder / "results.json").write_text(json.dumps({**saved, "seed": seed, "rows": rows}))
        (folder / "timings.json").write_text(json.dumps({"train": 600.0 + 60 * seed}))
    begun = tmp_path / "seed_3" / "strategies"  # a fourth seed stopped in its training: not in the table
    begun.mkdir(parents=True)
    (begun / "timings.json").write_text(json.dumps({"train": 30.0}))
    again = tmp_path / "strategies"  # seed 0 also run in OUT itself: it counts once, from its seed folder
    again.mkdir()
    rows = [_with_knn(r, 0.0) for r in saved["rows"]]
    (again / "results.json").write_text(json.dumps({**saved, "seed": 0, "rows": rows}))
    (again / "timings.json").write_text(json.dumps({"train": 6000.0}))
    strategies.write_report(tmp_path)
    text = (tmp_path / "strategies.md").read_text()
    assert "| L2 (method=l2) | 63.00 ± 1.00 |" in text and "| objective (3 seeds: mean ± std) |" in text
    assert "L2 is above on kNN-20, +2.00 (+2.00, +2.00, +2.00)" in text and "trained in 10-12 min" in text
    assert "| L2 (method=l2) | +2.00 ± 0.00 (holds) |" in text  # the gap read seed by seed
    assert "a gap of zero would do so 1 time in 4" in text  # 3 seeds: all of one sign with probability 2/8
    assert json.loads((tmp_path / "strategies.json").read_text())["numbers"]["L2 (method=l2)"]["kNN-20"] == [62, 63, 64]
    record = tmp_path / "seed_2" / "strategies" / "results.json"
    changed = json.loads(record.read_text())
    changed["rows"][1] = _with_knn(changed["rows"][1], 50.0)  # L2 below SEED in seed 2 only
    record.write_text(json.dumps(changed))
    text = strategies.section(tmp_path)
    assert "| L2 (method=l2) | 58.33" in text and "L2 is above on kNN-20" not in text
    assert "| L2 (method=l2) | -2.67 ± 8.08 (seeds differ) |" in text  # gaps +2, +2, -12
    assert "seeds differ" in text


@needs_fmnist
def test_the_readme_keeps_each_seeds_records_and_its_section_reads_them_all(strategies_run, tmp_path):
    out, _ = strategies_run
    readme = tmp_path / "README.md"
    start, end = strategies.README_MARKERS
    readme.write_text(f"# top\n{start}\n{end}\n")
    records = tmp_path / strategies.RECORDS
    earlier = records / "seed_1" / "strategies"  # a seed kept before, from an OUT since deleted
    earlier.mkdir(parents=True)
    saved = json.loads((out / "strategies" / "results.json").read_text())
    (earlier / "results.json").write_text(json.dumps({**saved, "seed": 1}))
    strategies.update_readme(readme, out)
    kept = json.loads((records / "seed_0" / "strategies" / "results.json").read_text())
    # the same record, each weights path relative to OUT (a record names no path of the machine)
    assert [r["weights"] for r in kept["rows"]] == [f"strategies/run/export/strategy.fmnist_{m}"
                                                    for m in ("seed", "l2", "moco")]
    assert kept == {**saved, "rows": [{**r, "weights": k["weights"]} for r, k in zip(saved["rows"], kept["rows"])]}
    assert (records / "seed_0" / "strategies" / "timings.json").read_text() == \
        (out / "strategies" / "timings.json").read_text()
    plan = (out / "strategies" / "run" / "device_plan.json").read_text()
    assert (records / "seed_0" / "strategies" / "run" / "device_plan.json").read_text() == plan
    text = readme.read_text()
    # each seed with the machine that measured it, as its device plan names it (seed 1's kept none)
    assert f"seed 0 on {describe_machine(json.loads(plan)['machine'])}" in text
    assert "seed 1 on a machine its record does not name" in text
    assert "| objective (2 seeds: mean ± std) |" in text and text.startswith("# top\n")
    assert text.split(start)[1].split(end)[0] == "\n" + strategies.section(records)


def test_the_readmes_strategies_section_is_recomputed_from_its_kept_records():
    records = REPO / strategies.RECORDS
    assert sorted(p.name for p in records.glob("seed_*/strategies/*.json")), f"no records under {records}"
    start, end = strategies.README_MARKERS
    assert (REPO / "README.md").read_text().split(start)[1].split(end)[0] == "\n" + strategies.section(records)


def test_a_gap_holds_only_when_every_seed_shows_it_in_the_same_direction():
    assert holds([0.5, 1.0, 2.0]) and holds([-0.1, -3.0])
    assert not holds([0.5, -0.1, 2.0]) and not holds([1.0, 0.0]) and not holds([])


def test_a_section_is_written_between_its_markers_and_nothing_else_changes(tmp_path):
    readme = tmp_path / "README.md"
    start, end = strategies.README_MARKERS
    readme.write_text(f"# top\n{start}\nold\n{end}\nbottom\n")
    update_section(readme, strategies.README_MARKERS, "new\n")
    assert readme.read_text() == f"# top\n{start}\nnew\n{end}\nbottom\n"
    readme.write_text("no markers\n")
    with pytest.raises(ReadmeError, match="lacks the markers"):
        update_section(readme, curves.README_MARKERS, "new\n")


def test_without_records_the_sections_say_how_to_measure(tmp_path):
    assert "--stage curves" in curves.section(tmp_path)
    assert "--stage strategies --seeds 3" in strategies.section(tmp_path)
