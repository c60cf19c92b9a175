"""Run folders hold one run: a second run is refused unless resumed or overwritten, a finished run resumed
changes nothing, metrics never mix runs, and what a run reports (CSV, TensorBoard, progress) agrees with
its metrics.jsonl."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from seedzoo.cli import main
from seedzoo.training.checkpoint import checkpoint_path, list_checkpoints
from seedzoo.training.cohort import UNNAMED
from seedzoo.training.metrics import MetricsLogger, flatten, read_metrics, student_records
from seedzoo.training.run_folder import RUN_FILE, RunFolderError, export_dir

from test_train import run, tiny_config, write_image_folder

KNN = ("monitor.knn_every=1", "monitor.knn_train=16", "monitor.knn_test=16", "monitor.knn_k=5")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("data") / "train")


def snapshot(folder):
    """Every file under `folder` with its bytes and modification time."""
    return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def steps_of(run_dir):
    return [r["step"] for r in student_records(read_metrics(run_dir), UNNAMED) if "loss" in r]


def test_a_new_run_into_a_run_folder_is_refused_and_overwrite_starts_over(images, tmp_path):
    run(tiny_config(images, "max_steps=3"), tmp_path / "r")
    before = snapshot(tmp_path / "r")
    with pytest.raises(RunFolderError, match=r"holds a run \(.*metrics.jsonl.*checkpoints.*\): continue it with "
                                             r"--resume auto, start it over with --overwrite"):
        run(tiny_config(images, "max_steps=2"), tmp_path / "r")
    assert snapshot(tmp_path / "r") == before
    run(tiny_config(images, "max_steps=2"), tmp_path / "r", overwrite=True)
    assert steps_of(tmp_path / "r") == [1, 2]  # never appended to the old run's
    assert [p.name for p in list_checkpoints(tmp_path / "r")] == ["step_000000002.pt"]


def test_files_beside_a_run_are_not_a_run_and_overwrite_leaves_them(images, tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "notes.txt").write_text("mine")
    run(tiny_config(images, "max_steps=1"), tmp_path / "r")
    run(tiny_config(images, "max_steps=1"), tmp_path / "r", overwrite=True)
    assert (tmp_path / "r" / "notes.txt").read_text() == "mine"


def test_resuming_a_finished_run_changes_nothing_and_says_so(images, tmp_path):
    cfg = tiny_config(images, "export=true", *KNN)
    first = run(cfg, tmp_path / "r")
    assert (tmp_path / "r" / RUN_FILE).is_file() and first.knn_top1 is not None
    before = snapshot(tmp_path / "r")
    again = run(cfg, tmp_path / "r", resume="auto")
    assert again.already_finished and snapshot(tmp_path / "r") == before
    assert (again.step, again.loss, again.knn_top1, again.export_dir) == \
        (first.step, first.loss, first.knn_top1, first.export_dir)
    assert math.isfinite(again.loss)


def test_a_kill_after_the_last_checkpoint_resumes_to_the_same_kNN_and_export(images, tmp_path):
    cfg = tiny_config(images, "export=true", *KNN)
    full = run(cfg, tmp_path / "full")
    run(cfg, tmp_path / "cut")
    # As if killed after the last checkpoint was written, before its kNN, the export and run.json.
    (tmp_path / "cut" / RUN_FILE).unlink()
    lines = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    (tmp_path / "cut" / "metrics.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    (export_dir(tmp_path / "cut", UNNAMED) / "config.json").unlink()
    resumed = run(cfg, tmp_path / "cut", resume="auto")
    assert not resumed.already_finished and resumed.step == full.step
    assert resumed.loss == full.loss and resumed.knn_top1 == full.knn_top1  # not "loss nan", not dropped
    measured = json.loads((export_dir(tmp_path / "cut", UNNAMED) / "config.json").read_text())["seedzoo"]["measured"]
    assert [m["value"] for m in measured] == [full.knn_top1]
    assert (tmp_path / "cut" / RUN_FILE).is_file()


def test_resume_auto_that_finds_no_checkpoint_does_not_append_to_old_metrics(images, tmp_path):
    run(tiny_config(images, "max_steps=3", "save_every=100"), tmp_path / "r")
    for path in list_checkpoints(tmp_path / "r"):  # killed before its first checkpoint
        path.unlink()
    run(tiny_config(images, "max_steps=2"), tmp_path / "r", resume="auto")
    assert steps_of(tmp_path / "r") == [1, 2]


def test_resuming_from_an_older_checkpoint_drops_the_newer_ones(images, tmp_path, capsys):
    run(tiny_config(images, "max_steps=6"), tmp_path / "r")  # checkpoints 2, 4, 6
    capsys.readouterr()
    run(tiny_config(images, "max_steps=5", "save_every=5"), tmp_path / "r",
        resume=str(checkpoint_path(tmp_path / "r", 2)))
    assert "removed step_000000004.pt, newer than the resume point" in capsys.readouterr().err
    assert [p.name for p in list_checkpoints(tmp_path / "r")] == \
        ["step_000000002.pt", "step_000000004.pt", "step_000000005.pt"]  # 4: this continuation's epoch end
    assert steps_of(tmp_path / "r") == [1, 2, 3, 4, 5]


def test_resume_and_overwrite_together_are_refused(images, tmp_path):
    with pytest.raises(RunFolderError, match="not both"):
        run(tiny_config(images), tmp_path / "r", resume="auto", overwrite=True)


def test_a_run_inside_the_installed_package_is_refused_before_it_writes(images):
    import seedzoo

    out = Path(seedzoo.__file__).parent / "recipes" / "my_run"
    with pytest.raises(RunFolderError, match="inside the installed seedzoo package"):
        run(tiny_config(images), out)
    assert not out.exists()


# --- what a run reports ----------------------------------------------------------------------

def test_metrics_csv_holds_every_record_of_metrics_jsonl(images, tmp_path):
    run(tiny_config(images, *KNN), tmp_path / "r")
    records = read_metrics(tmp_path / "r")
    with open(tmp_path / "r" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(records) == 10  # 8 steps, 2 kNN
    for row, record in zip(rows, records):
        assert {k: v for k, v in row.items() if v != ""} == {k: str(v) for k, v in flatten(record).items()}
    assert f"students.{UNNAMED}.knn5_top1" in rows[0] and f"students.{UNNAMED}.loss" in rows[0]


def test_metrics_csv_is_cut_back_with_the_jsonl_on_resume(images, tmp_path):
    run(tiny_config(images, "max_steps=3", "save_every=2"), tmp_path / "r")
    run(tiny_config(images, "max_steps=4"), tmp_path / "r", resume="auto")  # from step 2
    with open(tmp_path / "r" / "metrics.csv", newline="") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3, 4]


def test_progress_bars_show_elapsed_and_eta_for_the_run_and_the_epoch(tmp_path, capsys):
    logger = MetricsLogger(tmp_path, True, total_steps=6, start_step=2, steps_per_epoch=4, progress=True)
    for step in (3, 4, 5):
        logger.step({"step": step, "epoch": (step - 1) // 4, "images_per_s": 1.0, "data_wait": 0.0,
                     "students": {"a": {"loss": 1.0, "lr": 0.1}}})
    logger.close()
    err = capsys.readouterr().err
    assert "train:" in err and "5/6 [" in err and "<" in err  # overall: done/total [elapsed<eta]
    assert "epoch 1/2:" in err and "epoch 2/2:" in err  # per epoch, short labels
    assert max(len(line) for line in err.replace("\r", "\n").splitlines()) < 120


def test_plain_progress_lines_carry_elapsed_and_eta(tmp_path, capsys):
    logger = MetricsLogger(tmp_path, True, total_steps=4, log_every=2, steps_per_epoch=2, progress=False)
    for step in range(1, 5):
        logger.step({"step": step, "epoch": (step - 1) // 2, "images_per_s": 1.0, "data_wait": 0.0,
                     "students": {"a": {"loss": 1.0, "lr": 0.1}, "b": {"loss": 2.0, "lr": 0.2}}})
    logger.close()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("step 2/4 epoch 1/2 a loss 1.0000 lr 0.1; b loss 2.0000 lr 0.2;")
    assert lines[0].endswith("[0:00 < 0:00]")
    assert lines[1].startswith("step 4/4 epoch 2/2")


def test_tensorboard_receives_the_scalars_when_installed(images, tmp_path):
    pytest.importorskip("tensorboard", reason="the optional extra `tensorboard` is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run(tiny_config(images, "max_steps=3", *KNN), tmp_path / "r")
    events = EventAccumulator(str(tmp_path / "r" / "tensorboard"))
    events.Reload()
    tag = f"students/{UNNAMED}/loss"
    assert [e.step for e in events.Scalars(tag)] == [1, 2, 3]
    assert [e.value for e in events.Scalars(tag)] == pytest.approx(
        [r["loss"] for r in student_records(read_metrics(tmp_path / "r"), UNNAMED) if "loss" in r])


# --- through the command line ----------------------------------------------------------------

def test_cli_refuses_a_second_run_in_one_line_and_sums_up_a_finished_one(images, tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"device: cpu\nepochs: 1\nglobal_batch: 8\nlog_every: 100\n"
                      "student: {arch: test_resnet, embed_dim: 16, head_hidden: 16}\n"
                      "teacher: {arch: test_resnet, head_hidden: 16, embed_dim: 16}\n"
                      f"data: {{source: image_folder, path: {images}, image_size: 16, workers: 0}}\n"
                      "distill: {queue_size: 32}\nmonitor: {knn_every: 1, knn_train: 32, knn_test: 16}\n")
    out = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(out)]) == 0
    summary = capsys.readouterr().out.splitlines()[-2:]
    assert summary[0].startswith("done: 4 steps in 0:")
    assert summary[1].startswith("  r: ") and "kNN-20 top-1 " in summary[1]  # named after its recipe file
    assert f"weights in {out / 'export' / 'r'}" in summary[1]

    before = snapshot(out)
    assert main(["train", str(recipe), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"seedzoo: error: {out} holds a run") and err.count("\n") == 1
    assert main(["train", str(recipe), "--out", str(out), "--resume", "auto"]) == 0
    assert capsys.readouterr().out.startswith(f"nothing to do: {out} finished at 4 steps")
    assert snapshot(out) == before


def test_summary_of_several_students_names_each(tmp_path):
    from types import SimpleNamespace

    from seedzoo.cli.train import _summary
    from seedzoo.training.config import TrainConfig

    result = SimpleNamespace(step=1, wall_s=75.4, already_finished=False, run_dir=tmp_path,
                             losses={"a": 1.0, "b": 2.0}, knn={"a": 50.0, "b": None},
                             exports={"a": tmp_path / "export" / "a", "b": None}, health={}, collapsed=[])
    text = _summary(result, [TrainConfig(name="a"), TrainConfig(name="b")])
    folder = tmp_path / "export" / "a"
    a = (f"  a: loss 1.0000, kNN-20 top-1 50.00%, weights in {folder} "
         f"(seedzoo.create_model('seed_resnet18', pretrained='{folder}'))")
    assert text.splitlines() == ["done: 1 step in 1:15", a, "  b: loss 2.0000"]
