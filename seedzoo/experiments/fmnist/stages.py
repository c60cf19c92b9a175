"""What the reproduction trains: its stages, and the two ways a stage's network is trained.

Each stage trains one zoo recipe into `OUT/<key>/` (resuming from its last checkpoint) and exports it
to `OUT/<key>/export/`; a stage whose export exists is done. The distilling stages (the SEED student and
its ablations) train together as students of one teacher pass (`train_students`, into
`OUT/students/`); each still ends with its own export and metrics in its folder. The labelled
reference is trained by fine-tuning rather than by `seedzoo train`.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ...files import write_atomic
from ...weights.publish import write_model_folder
from ...zoo import get_entry

STUDENT = "seed_mbv3_large.fmnist_mocov2_r18"
BASELINE = "mocov2_mbv3_large.fmnist"
TEACHER = "mocov2_r18.fmnist"
REFERENCE = "supervised_mbv3_large.fmnist"
COMMAND = "seedzoo reproduce fmnist"


@dataclass(frozen=True)
class Stage:
    key: str  # run folder under OUT
    recipe: str  # the zoo entry whose recipe is trained
    label: str  # row of the table
    overrides: tuple[str, ...] = ()  # ablations rename the run, so that its export claims no entry
    distils: bool = False  # reads the teacher trained by the `teacher` stage
    default: bool = True  # trains without `--stage`; the teacher does not: the students distil the shipped one

    def run_dir(self, out: Path) -> Path:
        return out / self.key


TRAINING = (
    Stage("teacher", TEACHER, "teacher: MoCo-v2 ResNet-18", default=False),
    Stage("seed", STUDENT, "SEED (teacher temp 1e-4, queue 16384)", distils=True),
    Stage("mocov2", BASELINE, "MoCo-v2 alone"),
    Stage("seed_tt1e-2", STUDENT, "SEED, teacher temp 0.01 (ablation)",
          ("distill.teacher_temperature=0.01", "name=ablation.fmnist_tt1e-2"), distils=True),
)


def export_dir(run_dir: Path) -> Path:
    return run_dir / "export"


def packed_dir(out: Path) -> Path:
    """Where `release.pack` writes the fp16 files that ship."""
    return out / "release"


def is_done(run_dir: Path) -> bool:
    return (export_dir(run_dir) / "model.safetensors").is_file()


def should_train(stage: Stage, out: Path, wanted: set[str] | None) -> bool:
    """Whether `stage` trains: when it is not done and is named in `wanted` (without `wanted`: when it is
    a default stage). A stage that is not a default one (the teacher) also trains to finish a run already
    begun in OUT; otherwise the students distil from the shipped teacher, as the paper's students distil
    from released ones."""
    run_dir = stage.run_dir(out)
    if is_done(run_dir):
        return False
    named = stage.key in wanted if wanted is not None else stage.default
    return named or (not stage.default and run_dir.is_dir())


def teacher_source(out: Path) -> str:
    """The teacher the students distil from, as the recipes' `teacher.pretrained`: the one trained into
    OUT when it is there, else the shipped entry (`zoo`)."""
    return str(export_dir(out / "teacher")) if is_done(out / "teacher") else "zoo"


def train_stage(stage: Stage, out: Path, extra: Iterable[str] = ()) -> Path:
    """Train one stage (resuming it if a checkpoint exists); returns its export folder."""
    from ...training.config import load_config
    from ...training.engine import train

    run_dir = stage.run_dir(out)
    overrides = list(stage.overrides)
    if stage.distils:
        overrides.append(f"teacher.pretrained={teacher_source(out)}")
    cfg = load_config(stage.recipe, [*overrides, *extra])
    command = " ".join(["seedzoo", "train", stage.recipe, *overrides, *extra])
    train(cfg, run_dir, resume="auto", command=command)
    return export_dir(run_dir)


STUDENTS_DIR = "students"  # the distilling stages' shared run, under OUT


def train_students(stages: Sequence[Stage], out: Path, extra: Iterable[str] = ()) -> None:
    """The distilling stages trained together: one teacher pass and one data stream per step for all
    their students (`seedzoo train A B ...`), into `OUT/students/` (resuming it). Each stage's folder then
    holds its student's export (bitwise what the stage trained alone exports) and its metrics."""
    from ...training.config import load_config
    from ...training.engine import train
    from ...training.metrics import METRICS_FILE, read_metrics

    run_dir = out / STUDENTS_DIR
    teacher = f"teacher.pretrained={teacher_source(out)}"
    cfgs = [load_config(stage.recipe, [*stage.overrides, teacher, *extra]) for stage in stages]
    names = [cfg.name for cfg in cfgs]
    if not all(is_done(run_dir / "export" / name) for name in names):
        train(cfgs, run_dir, resume="auto", command=COMMAND)
    records = read_metrics(run_dir)
    for stage, name in zip(stages, names):
        shutil.copytree(run_dir / "export" / name, export_dir(stage.run_dir(out)), dirs_exist_ok=True)
        write_atomic(stage.run_dir(out) / METRICS_FILE, "".join(
            json.dumps(r) + "\n" for r in (_student_record(r, name) for r in records) if r is not None))


def _student_record(record: dict, name: str) -> dict | None:
    """One student's view of a record of a run with several: its own loss and lr, its own kNN."""
    if "students" in record:
        own = record["students"][name]
        return {**{k: v for k, v in record.items() if k != "students"}, **own}
    if "student" in record:
        return {k: v for k, v in record.items() if k != "student"} if record["student"] == name else None
    return record


def student_epochs() -> int:
    """The students' budget, read from the SEED student's recipe (the MoCo-v2 baseline shares it)."""
    from ...training.config import load_config

    return load_config(STUDENT).epochs


def reference_label() -> str:
    return f"supervised reference (labels, {student_epochs()} epochs)"


def train_supervised(out: Path, epochs: int | None = None, base_lr: float = 0.1, limit: int | None = None) -> Path:
    """The labelled reference: the student architecture trained with Fashion-MNIST's labels (cross-entropy,
    RandomResizedCrop + flip, SGD with cosine decay) for the same number of epochs as the students."""
    import timm

    from ...evaluation.datasets import build_dataset
    from ...evaluation.finetune import FinetuneConfig, finetune
    from ...evaluation.transforms import preprocessing_for

    epochs = epochs or student_epochs()
    entry = get_entry(STUDENT)
    prep = preprocessing_for(STUDENT)
    torch.manual_seed(0)
    backbone = timm.create_model(entry.architecture, num_classes=0)
    config = FinetuneConfig(epochs=epochs, batch_size=256, base_lr=base_lr, weight_decay=1e-4, seed=0)
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
    return write_model_folder(out / "supervised" / "export", architecture=entry.architecture, backbone=state,
                              head=head, entry=get_entry(REFERENCE), seedzoo=block)
