"""Several SEED students of one teacher trained together: one teacher pass and one data stream per step,
each student ending bitwise where it ends when trained alone; resume; mismatched recipes refused."""
from __future__ import annotations

import os

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file
from test_train_cli import RECIPE

from seedzoo.cli import main
from seedzoo.training.checkpoint import load_checkpoint
from seedzoo.training.cohort import check_cohort
from seedzoo.training.config import ConfigError, TrainConfig, apply_overrides
from seedzoo.training.engine import train

from test_train import (
    TinyNet,
    assert_same_state,
    tiny_config,
    tiny_teacher,
    write_image_folder,
)

# Two students that differ in everything that is a student's own.
A = ["name=a", "student.head_hidden=8", "distill.teacher_temperature=0.0001", "distill.queue_size=32"]
B = ["name=b", "student.head_hidden=12", "distill.teacher_temperature=0.01", "distill.queue_size=16",
     "distill.student_temperature=0.1", "optim.base_lr=0.06", "optim.momentum=0.8"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("data") / "train")


def backbone(width: int) -> TinyNet:
    torch.manual_seed(0)
    return TinyNet(width)


def solo(cfg: TrainConfig, width: int, run_dir, **kw):
    return train(cfg, run_dir, student=backbone(width), teacher=tiny_teacher(), **kw)


def together(cfgs: list[TrainConfig], widths: list[int], run_dir, **kw):
    return train(cfgs, run_dir, student=[backbone(w) for w in widths], teacher=tiny_teacher(), **kw)


def test_each_student_exports_bitwise_what_it_exports_trained_alone(images, tmp_path):
    a, b = tiny_config(images, *A, "export=true"), tiny_config(images, *B, "export=true")
    alone = {"a": solo(a, 8, tmp_path / "a"), "b": solo(b, 4, tmp_path / "b")}
    both = together([a, b], [8, 4], tmp_path / "ab")
    assert both.step == 8 and set(both.exports) == {"a", "b"}
    for name, result in alone.items():
        exported = both.exports[name]
        assert exported == tmp_path / "ab" / "export" / name
        mine, ref = load_file(exported / "model.safetensors"), load_file(result.export_dir / "model.safetensors")
        assert mine.keys() == ref.keys() and len(mine) >= 4
        for key in ref:
            assert torch.equal(mine[key], ref[key]), (name, key)
        assert both.losses[name] == result.loss
    state = load_checkpoint(both.checkpoint)
    for name, result in alone.items():  # queues, optimiser state, head: all the student's own, all equal
        assert_same_state(state, load_checkpoint(result.checkpoint), name)


def test_two_students_resume_mid_epoch_bit_identically(images, tmp_path):
    a, b = tiny_config(images, *A), tiny_config(images, *B)
    full = together([a, b], [8, 4], tmp_path / "full")
    cut = [apply_overrides(c, ["max_steps=3"]) for c in (a, b)]
    assert together(cut, [8, 4], tmp_path / "cut").step == 3
    resumed = together([a, b], [8, 4], tmp_path / "cut", resume="auto")
    assert resumed.step == full.step == 8
    x, y = load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint)
    assert_same_state(x, y, "a", "b")


class DropoutNet(TinyNet):
    """TinyNet whose features pass through dropout: every step draws from torch's RNG, as MobileNetV3's
    classifier dropout and EfficientNet's drop-path do."""

    def __init__(self, width: int) -> None:
        super().__init__(width)
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(torch.relu(self.conv(x))).mean((2, 3))


def dropout_backbone(width: int) -> DropoutNet:
    torch.manual_seed(0)
    return DropoutNet(width)


def test_students_drawing_random_numbers_export_what_they_export_alone_and_resume_exactly(images, tmp_path):
    # Each student draws from its own RNG stream: next to another student, it draws the same numbers.
    a, b = tiny_config(images, *A, "export=true"), tiny_config(images, *B, "export=true")
    alone = {"a": train(a, tmp_path / "a", student=dropout_backbone(8), teacher=tiny_teacher()),
             "b": train(b, tmp_path / "b", student=dropout_backbone(4), teacher=tiny_teacher())}

    def pair(cfgs, run_dir, **kw):
        return train(cfgs, run_dir, student=[dropout_backbone(8), dropout_backbone(4)], teacher=tiny_teacher(),
                     **kw)

    both = pair([a, b], tmp_path / "ab")
    for name, result in alone.items():
        mine = load_file(both.exports[name] / "model.safetensors")
        ref = load_file(result.export_dir / "model.safetensors")
        assert mine.keys() == ref.keys() and all(torch.equal(mine[k], ref[k]) for k in ref), name
    assert pair([apply_overrides(c, ["max_steps=3"]) for c in (a, b)], tmp_path / "cut").step == 3
    resumed = pair([a, b], tmp_path / "cut", resume="auto")
    x, y = load_checkpoint(both.checkpoint), load_checkpoint(resumed.checkpoint)
    assert_same_state(x, y, "a", "b")


def test_resuming_with_other_students_is_refused(images, tmp_path):
    a, b = tiny_config(images, *A, "max_steps=2"), tiny_config(images, *B, "max_steps=2")
    together([a, b], [8, 4], tmp_path / "r")
    with pytest.raises(ValueError, match="holds the students 'a', 'b'.*same recipes"):
        solo(a, 8, tmp_path / "r", resume="auto")


def test_recipes_that_disagree_on_teacher_data_or_seed_are_refused_naming_the_fields():
    a = apply_overrides(TrainConfig(), ["name=a"])
    b = apply_overrides(TrainConfig(), ["name=b", "seed=1", "data.image_size=32", "teacher.arch=seed_resnet18"])
    with pytest.raises(ConfigError, match="data.image_size, seed, teacher.arch"):
        check_cohort([a, b])
    with pytest.raises(ConfigError, match="distinct names"):
        check_cohort([a, apply_overrides(TrainConfig(), ["name=a"])])
    assert check_cohort([a, apply_overrides(TrainConfig(), ["name=b", "optim.base_lr=1"])]) == ["a", "b"]


def test_students_of_other_methods_join_a_cohort_unless_they_need_another_view():
    a = apply_overrides(TrainConfig(), ["name=a"])
    # MoCo-v2 distils no teacher: its teacher section does not have to agree
    moco = apply_overrides(TrainConfig(), ["name=m", "method=moco", "teacher.arch=seed_resnet18"])
    assert check_cohort([a, moco]) == ["a", "m"]
    small = ["distill.small_patches=true"]
    b, c = (apply_overrides(TrainConfig(), [f"name={n}", *small, f"distill.small_size={px}"])
            for n, px in (("b", 96), ("c", 64)))
    assert check_cohort([a, b]) == ["a", "b"]  # one reads the small crops, the other does not
    with pytest.raises(ConfigError, match="view 'small' differs between student b .* and student c"):
        check_cohort([a, b, c])


# A student of each kind: SEED, SEED with small patches (a second teacher view), MoCo-v2 (a key view, no teacher).
MIXED = {"a": A, "s": ["name=s", "distill.small_patches=true", "distill.small_crops=2", "distill.small_size=8"],
         "m": ["name=m", "method=moco", "moco.momentum=0.9"]}


def test_students_of_different_methods_train_together_each_bitwise_as_alone(images, tmp_path):
    cfgs = {name: tiny_config(images, *overrides, "export=true") for name, overrides in MIXED.items()}
    alone = {name: solo(cfg, 8, tmp_path / name) for name, cfg in cfgs.items()}
    mixed = together(list(cfgs.values()), [8] * len(cfgs), tmp_path / "mixed")
    for name, result in alone.items():
        mine = load_file(mixed.exports[name] / "model.safetensors")
        ref = load_file(result.export_dir / "model.safetensors")
        assert mine.keys() == ref.keys() and all(torch.equal(mine[k], ref[k]) for k in ref), name
        assert mixed.losses[name] == result.loss, name


def test_cli_trains_two_yaml_recipes_together_into_one_export_each(tmp_path):
    images = write_image_folder(tmp_path / "train", n=16)
    text = RECIPE.format(images=images).replace("epochs: 4", "epochs: 1").replace("export: false", "export: true")
    (tmp_path / "eff.yaml").write_text(text)
    (tmp_path / "res.yaml").write_text(text.replace("test_efficientnet", "test_resnet"))
    assert main(["train", str(tmp_path / "eff.yaml"), str(tmp_path / "res.yaml"), "log_every=100",
                 "--out", str(tmp_path / "both")]) == 0
    assert main(["train", str(tmp_path / "res.yaml"), "log_every=100", "--out", str(tmp_path / "res")]) == 0
    ref = load_file(tmp_path / "res" / "export" / "res" / "model.safetensors")  # one student: the same layout
    mine = load_file(tmp_path / "both" / "export" / "res" / "model.safetensors")
    assert mine.keys() == ref.keys() and all(torch.equal(mine[k], ref[k]) for k in ref)
    assert (tmp_path / "both" / "export" / "eff" / "model.safetensors").is_file()


def test_cli_refuses_recipes_that_disagree_naming_the_field(tmp_path, capsys):
    text = RECIPE.format(images=tmp_path)
    (tmp_path / "one.yaml").write_text(text)
    (tmp_path / "two.yaml").write_text(text.replace("test_efficientnet", "test_resnet") + "seed: 5\n")
    assert main(["train", str(tmp_path / "one.yaml"), str(tmp_path / "two.yaml"), "--print-config"]) == 2
    assert "differ: seed." in capsys.readouterr().err
    assert main(["train", str(tmp_path / "one.yaml"), str(tmp_path / "two.yaml"), "seed=5", "--print-config"]) == 0


def _ddp_worker(rank: int, world: int, port: int, images: str, run_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    together([tiny_config(images, *A, "max_steps=4"), tiny_config(images, *B, "max_steps=4")], [8, 4], run_dir)


@pytest.mark.slow
def test_two_gloo_processes_train_two_students_as_one_process_does(images, tmp_path):
    from test_train_ddp import _free_port

    single = together([tiny_config(images, *A, "max_steps=4"), tiny_config(images, *B, "max_steps=4")], [8, 4],
                      tmp_path / "single")
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(images), str(tmp_path / "ddp")), nprocs=2, join=True)
    x, y = load_checkpoint(single.checkpoint), load_checkpoint(tmp_path / "ddp")
    assert x["step"] == y["step"] == 4
    for name in ("a", "b"):
        sx, sy = x["students"][name], y["students"][name]
        assert torch.equal(sx["objective"]["queue"]["queue"], sy["objective"]["queue"]["queue"])
        for key, value in sx["student"].items():
            assert torch.allclose(value, sy["student"][key], rtol=0, atol=1e-5), (name, key)
