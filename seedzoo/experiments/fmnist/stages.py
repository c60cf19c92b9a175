"""What the reproduction trains: its stages, and the two ways a stage's network is trained.

Each stage trains one zoo recipe into `OUT/<key>/` (resuming from its last checkpoint), which exports its
student to `OUT/<key>/export/<name>/` as every training run does; a stage whose export exists is done.
The distilling stages (the SEED student and its ablations) train together as students of one teacher
pass (`train_students`, into `OUT/students/`); each stage's folder then receives its student's export,
and its training record stays in the run that trained it (`Stage.trained_in`). The labelled reference
is trained by fine-tuning rather than by `seedzoo train`, into `OUT/supervised/export/<entry>/`.
"""
from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ...training.metrics import METRICS_FILE
from ...training.run_folder import export_dir
from ...weights.publish import write_model_folder
from ...zoo import get_entry

STUDENT = "seed_mbv3_large.fmnist_mocov2_r18"
BASELINE = "mocov2_mbv3_large.fmnist"
TEACHER = "mocov2_r18.fmnist"
REFERENCE = "supervised_mbv3_large.fmnist"
COMMAND = "seedzoo reproduce fmnist"
STUDENTS_DIR = "students"  # the distilling stages' shared run, under OUT
SEED_FOLDER = "seed_{}"  # `run.run_seeds`: one reproduction per seed, in OUT/seed_<i>/


def seed_folder(out: Path, seed: int) -> Path:
    return out / SEED_FOLDER.format(seed)


def shared_home(out: Path) -> Path:
    """Where the stages trained once for every seed live: for a seed folder (OUT/seed_<i>/) the
    reproduction's folder above it, else OUT itself."""
    return out.parent if re.fullmatch(SEED_FOLDER.format(r"\d+"), out.name) else out


@dataclass(frozen=True)
class Stage:
    key: str  # run folder under OUT
    recipe: str  # the zoo entry whose recipe is trained
    label: str  # row of the table
    overrides: tuple[str, ...] = ()
    distils: bool = False  # reads the teacher trained by the `teacher` stage
    default: bool = True  # trains without `--stage`; the teacher does not: the students distil the shipped one
    per_seed: bool = True  # trained once per seed; the teacher is trained once, for every seed (`shared_home`)
    name: str = ""  # the student's name (its export folder); ablations rename it, so that it claims no entry

    @property
    def student(self) -> str:
        return self.name or self.recipe

    def run_dir(self, out: Path) -> Path:
        return (out if self.per_seed else shared_home(out)) / self.key

    def export(self, out: Path) -> Path:
        """Where the stage's student is exported: `OUT/<key>/export/<name>/`."""
        return export_dir(self.run_dir(out), self.student)

    def trained_in(self, out: Path) -> Path:
        """The run folder whose metrics record this stage's student: its own, or the distilling stages'
        shared run when it trained there."""
        own = self.run_dir(out)
        return own if (own / METRICS_FILE).is_file() or not self.distils else out / STUDENTS_DIR

    def config_overrides(self, out: Path) -> list[str]:
        """The overrides that make the recipe this stage: its own, its name, and its teacher."""
        teacher = [f"teacher.pretrained={teacher_source(out)}"] if self.distils else []
        return [*self.overrides, f"name={self.student}", *teacher]


TRAINING = (
    Stage("teacher", TEACHER, "teacher: MoCo-v2 ResNet-18", default=False, per_seed=False),
    Stage("seed", STUDENT, "SEED (teacher temp 1e-4, queue 16384)", distils=True),
    Stage("mocov2", BASELINE, "MoCo-v2 alone"),
    Stage("seed_tt1e-2", STUDENT, "SEED, teacher temp 0.01 (ablation)", ("distill.teacher_temperature=0.01",),
          distils=True, name="ablation.fmnist_tt1e-2"),
)


def supervised_export(out: Path) -> Path:
    """Where the labelled reference is written (the layout of a run's export)."""
    return export_dir(out / "supervised", REFERENCE)


def stage_export(key: str, out: Path) -> Path:
    """The export of the stage called `key`: a training stage's, or the labelled reference's."""
    stage = next((s for s in TRAINING if s.key == key), None)
    return stage.export(out) if stage is not None else supervised_export(out)


def packed_dir(out: Path) -> Path:
    """Where `release.pack` writes the fp16 files that ship."""
    return out / "release"


def is_done(export: Path) -> bool:
    """Whether the export folder `export` holds its weights."""
    return (export / "model.safetensors").is_file()


def should_train(stage: Stage, out: Path, wanted: set[str] | None) -> bool:
    """Whether `stage` trains: when it is not done and is named in `wanted` (without `wanted`: when it is
    a default stage). A stage that is not a default one (the teacher) also trains to finish a run already
    begun in OUT; otherwise the students distil from the shipped teacher, as the paper's students distil
    from released ones."""
    if is_done(stage.export(out)):
        return False
    named = stage.key in wanted if wanted is not None else stage.default
    return named or (not stage.default and stage.run_dir(out).is_dir())


def teacher_source(out: Path) -> str:
    """The teacher the students distil from, as the recipes' `teacher.pretrained`: the one trained into
    OUT when it is there, else the shipped entry (`zoo`)."""
    teacher = TRAINING[0].export(out)
    return str(teacher) if is_done(teacher) else "zoo"


def train_stage(stage: Stage, out: Path, extra: Iterable[str] = ()) -> Path:
    """Train one stage (resuming it if a checkpoint exists); returns its export folder."""
    from ...training.config import load_config
    from ...training.engine import train

    overrides = stage.config_overrides(out)
    cfg = load_config(stage.recipe, [*overrides, *extra])
    command = " ".join(["seedzoo", "train", stage.recipe, *overrides, *extra])
    train(cfg, stage.run_dir(out), resume="auto", command=command)
    return stage.export(out)


def train_students(stages: Sequence[Stage], out: Path, extra: Iterable[str] = ()) -> None:
    """The distilling stages trained together: one teacher pass and one data stream per step for all
    their students (`seedzoo train A B ...`), into `OUT/students/` (resuming it). Each stage's folder then
    holds its student's export (bitwise what the stage trained alone exports)."""
    from ...training.config import load_config
    from ...training.engine import train

    run_dir = out / STUDENTS_DIR
    cfgs = [load_config(stage.recipe, [*stage.config_overrides(out), *extra]) for stage in stages]
    if not all(is_done(export_dir(run_dir, stage.student)) for stage in stages):
        train(cfgs, run_dir, resume="auto", command=COMMAND)
    for stage in stages:
        shutil.copytree(export_dir(run_dir, stage.student), stage.export(out), dirs_exist_ok=True)


def student_epochs() -> int:
    """The students' budget, read from the SEED student's recipe (the MoCo-v2 baseline shares it)."""
    from ...training.config import load_config

    return load_config(STUDENT).epochs


def reference_label() -> str:
    return f"supervised reference (labels, {student_epochs()} epochs)"


def train_supervised(out: Path, epochs: int | None = None, base_lr: float = 0.1, limit: int | None = None,
                     seed: int = 0) -> Path:
    """The labelled reference: the student architecture trained with Fashion-MNIST's labels (cross-entropy,
    RandomResizedCrop + flip, SGD with cosine decay) for the same number of epochs as the students, from
    the initialisation and data order of `seed`."""
    import timm

    from ...evaluation.datasets import build_dataset
    from ...evaluation.finetune import FinetuneConfig, finetune
    from ...evaluation.transforms import preprocessing_for

    epochs = epochs or student_epochs()
    entry = get_entry(STUDENT)
    prep = preprocessing_for(STUDENT)
    torch.manual_seed(seed)
    backbone = timm.create_model(entry.architecture, num_classes=0)
    config = FinetuneConfig(epochs=epochs, batch_size=256, base_lr=base_lr, weight_decay=1e-4, seed=seed)
    train_set = build_dataset("fashion_mnist", "train", None, prep.train_transform(), limit)
    test_set = build_dataset("fashion_mnist", "test", None, prep.eval_transform(), limit)
    result, classifier = finetune(backbone, train_set, test_set, 10, config, torch.device("cpu"), num_workers=2,
                                  model=entry.architecture, dataset="Fashion-MNIST")
    state = {k: v.detach().contiguous() for k, v in backbone.state_dict().items()}
    # the trained classifier is the entry's head: a linear ProjectionHead (key `0`, 1280 -> 10)
    head = {f"0.{k}": v.detach().contiguous() for k, v in classifier.head.state_dict().items()}
    block = {"entry": REFERENCE, "trained_by": {"method": "supervised (labels)", "epochs": epochs},
             "measured": [{"value": result.top1, "metric": "top1", "dataset": "Fashion-MNIST",
                           "protocol": "supervised head", "kind": "measured",
                           "source": COMMAND}]}
    return write_model_folder(supervised_export(out), architecture=entry.architecture, backbone=state,
                              head=head, entry=get_entry(REFERENCE), seedzoo=block)
