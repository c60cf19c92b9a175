"""`seedzoo distill`: one call from a folder of images to a checked export, and everything checked before
any work (a run that fails before its first step leaves its folder as it found it)."""
from __future__ import annotations

import dataclasses
import json

import pytest
import timm
import torch
from PIL import Image
from test_distill_parts import write_images
from torch import nn

import seedzoo
from seedzoo.cli import main
from seedzoo.data import fashion_mnist
from seedzoo.data.augment import EvalTransform
from seedzoo.data.datasets import ImageFolderSource
from seedzoo.training.collapse import embed, image_batches
from seedzoo.training.config import ConfigError, load_config
from seedzoo.training.engine import RunResult, train
from seedzoo.training.metrics import read_metrics, student_records

FMNIST_SEED = "seed_mbv3_large.fmnist_mocov2_r18"
TINY = ["device=cpu", "data.workers=0", "data.image_size=16", "epochs=2", "log_every=1000"]


def snapshot(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else None


@pytest.fixture(scope="module")
def timm_teacher_file(tmp_path_factory):
    """A timm architecture's plain state dict, as a user would bring their own teacher."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("teacher") / "test_resnet.pth"
    torch.save(timm.create_model("test_resnet", num_classes=0).state_dict(), path)
    return path


def test_distill_from_a_flat_folder_with_a_timm_teacher_file_records_monitors_and_checks_its_export(
        tmp_path, timm_teacher_file, capsys, single_thread):
    data = write_images(tmp_path / "photos", 40, flat=True, size=20)
    out = tmp_path / "run"
    code = main(["distill", str(data), "--teacher", "test_resnet", "--teacher-weights", str(timm_teacher_file),
                 "--student", "test_efficientnet", "--out", str(out), *TINY])
    printed = capsys.readouterr().out
    assert code == 0
    assert "data.source = unlabeled_folder (recipe: image_folder): a folder of images without class folders" in printed
    assert "global_batch = 4 (recipe: 256): at most 1/8 of the 40 images" in printed
    assert "epochs = 2: given" in printed
    width = timm.create_model("test_resnet", num_classes=0).num_features
    config = load_config(out / "config.yaml")
    assert (config.data.source, config.teacher.target, config.student.embed_dim) == ("unlabeled_folder", "features",
                                                                                    width)
    assert config.distill.queue_size <= 40 and config.distill.queue_size % config.global_batch == 0
    assert (out / "config.yaml").read_text().startswith("# recipe seed_r18.mocov2_r50_200ep scaled to 40 images:\n")
    choices = json.loads((out / "choices.json").read_text())
    assert choices["images"] == 40 and {"global_batch", "epochs", "distill.queue_size"} <= {
        c["key"] for c in choices["choices"]}
    record = json.loads((out / "run.json").read_text())
    ((name, student),) = record["students"].items()
    assert record["choices"] == choices and student["health"]["collapsed"] in (True, False)
    assert {"spread", "random_init_spread", "batch_norm"} <= set(student["health"])
    series = student_records(read_metrics(out), name)
    assert any("spread" in r for r in series)  # no labels: the monitor still checks the spread
    model = seedzoo.create_model("test_efficientnet", pretrained=out)
    assert model(torch.zeros(2, 3, 16, 16)).shape == (2, model.num_features)


def test_a_plan_is_printed_and_nothing_is_written_on_a_dry_run(tmp_path, capsys):
    data = write_images(tmp_path / "tree", 30, classes=3)
    out = tmp_path / "run"
    assert main(["distill", str(data), "--teacher", "mocov2_r18.fmnist", "--student", "seed_mbv3_large",
                 "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "recipe = seed_mbv3_large.fmnist_mocov2_r18: the zoo recipe of this teacher and student" in printed
    assert "data.source = image_folder (recipe: fashion_mnist): a folder of 3 class folders" in printed
    assert "data.image_size = 32: the teacher's input size" in printed
    assert not out.exists()


def test_a_teacher_without_weights_and_a_missing_folder_are_refused_in_one_line(tmp_path, capsys):
    data = write_images(tmp_path / "tree", 8)
    assert main(["distill", str(data), "--teacher", "resnet50", "--student", "resnet18", "--out",
                 str(tmp_path / "a")]) == 2
    assert main(["distill", str(tmp_path / "nope"), "--teacher", "mocov2_r18.fmnist", "--student", "resnet18",
                 "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("seedzoo: error: --teacher resnet50 is an architecture without weights")
    assert err[1].startswith(f"seedzoo: error: data '{tmp_path / 'nope'}': no such folder or file")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# --- checked before work -----------------------------------------------------------------------

class _Teacher(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, width))

    def forward(self, x):
        return self.net(x)


def test_the_python_api_refuses_a_512d_teacher_for_128d_students_before_writing(tmp_path):
    data = write_images(tmp_path / "tree", 16)
    cfg = load_config("smoke", [f"data.path={data}", "data.source=image_folder", *TINY])
    assert cfg.student.embed_dim == 128
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"student.embed_dim=128 differs from teacher.embed_dim=512: method=seed "
                                          r"compares the two embeddings, set student.embed_dim=512"):
        train(cfg, out, teacher=_Teacher(512))
    assert not out.exists()


def test_a_config_teacher_whose_head_is_not_its_declared_width_fails_before_writing(tmp_path):
    data = write_images(tmp_path / "tree", 16)
    cfg = load_config(FMNIST_SEED, [f"data.path={data}", "data.source=image_folder", "teacher.embed_dim=64",
                                    "student.embed_dim=64", "global_batch=8", "distill.queue_size=8", *TINY])
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"teacher.embed_dim=64, but the teacher \(seed_resnet18_lowres, weights "
                                          r"zoo\) outputs 128-d embeddings: set teacher.embed_dim=128"):
        train(cfg, out)
    assert snapshot(out) == ["notes.txt"]


def test_a_cli_run_refused_before_its_first_step_leaves_the_folder_so_the_fix_runs_there(tmp_path, capsys):
    data = write_images(tmp_path / "tree", 16)
    out = tmp_path / "run"
    base = ["train", FMNIST_SEED, "--out", str(out), f"data.path={data}", "data.source=image_folder", *TINY,
            "max_steps=1", "global_batch=8", "distill.queue_size=8", "monitor.knn_every=0", "data.image_size=32"]
    assert main([*base, "teacher.arch=resnet50"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("seedzoo: error: teacher.arch='resnet50' is not the architecture of "
                                               "teacher.entry='mocov2_r18.fmnist' (seed_resnet18_lowres)")
    assert snapshot(out) is None
    assert main(base) == 0  # the corrected command, into the same --out
    assert (out / "run.json").is_file()


def test_the_summary_never_calls_a_collapsed_export_done(tmp_path):
    from seedzoo.cli.train import _summary

    cfg = load_config("smoke")
    health = {"collapsed": True, "spread": 0.0001, "random_init_spread": 0.25}
    result = RunResult(tmp_path, 28, 4, None, {"smoke": 8.4}, {"smoke": tmp_path / "export"}, {"smoke": None},
                       health={"smoke": health})
    head, line = _summary(result, [cfg]).splitlines()
    assert head.startswith("finished 28 steps in") and "is COLLAPSED" in head and not head.startswith("done")
    assert "feature spread 0.000 vs 0.250 at random init" in line
    ok = dataclasses.replace(result, health={"smoke": {**health, "collapsed": False}})
    assert _summary(ok, [cfg]).startswith("done: 28 steps")


# --- a real signal ------------------------------------------------------------------------------

def _write_fashion_mnist(root, split, n, start=0):
    images, labels = fashion_mnist.load_fashion_mnist(split)
    for i in range(start, start + n):
        folder = root / f"class_{int(labels[i])}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i].numpy()).save(folder / f"{split}_{i}.jpg", quality=95)
    return root


def _knn(backbone, reference, queries):
    from seedzoo.evaluation.knn import knn_classify

    transform = EvalTransform(32, mean=(0.286,) * 3, std=(0.353,) * 3)

    def features(source):
        return embed(backbone, image_batches(source, list(range(len(source))), transform, 128, torch.device("cpu")))

    predicted = knn_classify(features(reference), torch.tensor(reference.labels), features(queries), k=20,
                             temperature=0.07, num_classes=10)
    return float((predicted == torch.tensor(queries.labels)).float().mean() * 100)


@pytest.mark.slow
@pytest.mark.skipif(not fashion_mnist.available(), reason="Fashion-MNIST is not installed (dataset-fashion-mnist)")
def test_distill_on_fresh_jpegs_exports_a_student_that_beats_its_architecture_at_random_init(
        tmp_path, capsys, single_thread):
    """Fashion-MNIST images the project never saw as JPEGs: 500 to train on, 1,000 held out from the other
    split. The run is shortened to fit a test (20 epochs of 64 images, the rate raised to make up for it)."""
    train_dir = _write_fashion_mnist(tmp_path / "train", "train", 500)
    held_out = ImageFolderSource(_write_fashion_mnist(tmp_path / "held_out", "test", 1000))
    out = tmp_path / "run"
    student = "mobilenetv3_small_050"
    assert main(["distill", str(train_dir), "--teacher", "mocov2_r18.fmnist", "--student", student, "--out", str(out),
                 "epochs=20", "global_batch=64", "optim.base_lr=0.6", "device=cpu", "data.workers=0"]) == 0
    assert capsys.readouterr().out.splitlines()[-2].startswith("done: ")
    record = json.loads((out / "run.json").read_text())
    ((name, run),) = record["students"].items()
    assert not run["health"]["collapsed"]
    assert any("knn20_top1" in r and "spread" in r for r in student_records(read_metrics(out), name))
    reference = ImageFolderSource(train_dir)
    trained = _knn(seedzoo.create_model(student, pretrained=out), reference, held_out)
    torch.manual_seed(0)  # the student's own initialisation (seed 0)
    random_init = _knn(timm.create_model(student, num_classes=0), reference, held_out)
    assert trained > random_init + 3, (trained, random_init)
