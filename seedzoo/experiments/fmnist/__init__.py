"""SEED's central claim, reproduced offline on Fashion-MNIST with one CPU.

Up to five training runs and one labelled reference, all resumable, then one evaluation of every network
under the same protocols:

1. `teacher`: MoCo-v2 ResNet-18 on the 60,000 training images, no labels (`mocov2_r18.fmnist`);
2. `seed`: MobileNetV3-Large distilled from it by SEED (`seed_mbv3_large.fmnist_mocov2_r18`);
3. `mocov2`: the same student, epochs, batch and augmentation, trained by MoCo-v2 alone
   (`mocov2_mbv3_large.fmnist`): the paper's baseline;
4. an ablation of the SEED run: teacher temperature 0.01 instead of the official 1e-4;
5. `supervised`: the student trained with the labels for the same epochs (a reference); the other
   references need no training: every architecture of the table at random init, and the raw pixels the
   networks receive.

The teacher ships, as the paper's teachers do: unless asked (`--stage teacher`), the students distil
from the shipped `mocov2_r18.fmnist`.

The SEED student and its ablation train together, against one teacher pass per step, into
`OUT/students/` (each export, copied to its stage's folder, is bitwise what the stage trained alone would
export). `run_all` skips every stage whose
output exists and the evaluation every row it has measured, so an interrupted reproduction continues where
it stopped (training runs resume from their last checkpoint). Results go to `OUT/results.json` and
`OUT/results.md`; the wall time of each stage to `OUT/timings.json`; the fp16 files that would ship to
`OUT/release/`. Nothing is written into the package unless a release is asked for.

Two sweeps run only when named (`--stage curves`, `--stage strategies`), each one cohort trained
beside the table and measured under its protocols: the paper's teacher temperature and queue curves,
and every distillation objective side by side (one cohort per seed).

Modules, in the order a run uses them: `stages` (what is trained, and how), `evaluation` (the table's
protocols), `report` (tables, verdict, curves, README section), `release` (packing, and the explicit
release into the package), `cohorts`, `curves` and `strategies` (the sweeps), `run` (`run_all`, which
chains them).
"""
from .evaluation import PIXEL_LABELS, PROTOCOLS, RANDOM_INIT_LABELS, Row, evaluate, teacher_crowding
from .release import EMBEDDED_DIR, PACKAGE, SHIPPED, ReleaseTarget, measured_record, pack, release
from .report import (
    README_MARKERS,
    against_random_init,
    against_raw_pixels,
    gains_table,
    markdown_table,
    plot_curves,
    readme_section,
    seed_vs_moco,
    targets,
    targets_table,
    update_readme,
    verdict,
)
from .run import run_all
from .stages import (
    BASELINE,
    COMMAND,
    REFERENCE,
    STUDENT,
    STUDENTS_DIR,
    TEACHER,
    TRAINING,
    Stage,
    reference_label,
    student_epochs,
    train_stage,
    train_supervised,
)

__all__ = [
    "BASELINE", "COMMAND", "EMBEDDED_DIR", "PACKAGE", "PIXEL_LABELS", "PROTOCOLS", "RANDOM_INIT_LABELS",
    "README_MARKERS", "REFERENCE", "SHIPPED", "STUDENT", "STUDENTS_DIR", "TEACHER", "TRAINING", "ReleaseTarget",
    "Row", "Stage", "against_random_init", "against_raw_pixels", "evaluate",
    "gains_table", "markdown_table", "measured_record", "pack", "plot_curves", "readme_section", "reference_label",
    "release", "run_all", "seed_vs_moco",
    "targets", "targets_table", "student_epochs", "teacher_crowding", "train_stage", "train_supervised",
    "update_readme", "verdict",
]
