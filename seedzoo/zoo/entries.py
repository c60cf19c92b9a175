"""The zoo: every SEED student and teacher seedzoo knows, one record per pretrained tag.

Sources: the SEED paper (Fang et al., ICLR 2021, arXiv 2101.04731) for reported numbers, taken from
the tables of `reported.py`; the authors' release list (19 files, `official_releases.tsv`, read by
`releases.py`) for official sources. Numbers here are only those the paper (or the teachers' own
papers) reported, marked "reported"; numbers seedzoo measures are added with kind "measured" and the
command that measured them.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from .measured import read_record
from .releases import release_url
from .reported import linear, semi
from .schema import (
    FASHION_MNIST_NORM,
    UNNORMALIZED,
    DataConfig,
    HeadSpec,
    Lineage,
    Metric,
    OfficialSource,
    Recipe,
    Weights,
    ZooEntry,
)

SEED_CITATION = """@inproceedings{fang2021seed,
  title     = {{SEED}: Self-supervised Distillation for Visual Representation},
  author    = {Fang, Zhiyuan and Wang, Jianfeng and Wang, Lijuan and Zhang, Lei and Yang, Yezhou and Liu, Zicheng},
  booktitle = {International Conference on Learning Representations},
  year      = {2021},
  url       = {https://arxiv.org/abs/2101.04731}
}"""
# The authors' release carries no licence file; MoCo and SwAV weights are CC-BY-NC 4.0 upstream,
# and a student distilled from them inherits that restriction.
LICENSE_SEED = "unknown (no licence stated by the SEED authors)"
LICENSE_NC = "cc-by-nc-4.0"



def _src(filename: str, layout: str) -> OfficialSource:
    return OfficialSource(url=release_url(filename), layout=layout)  # type: ignore[arg-type]


# --- teachers ----------------------------------------------------------------------------------

_MOCO_HEAD = HeadSpec(2048, 2048, 128)
_R50_EFF_NOTE = "torchvision ResNet key names; the backbone is timm's architecture"


def _teacher(name: str, arch: str, arch_label: str, method: str, epochs: int, head: HeadSpec,
             source: OfficialSource, metrics: tuple[Metric, ...] = (), license: str = LICENSE_NC,
             normalization=None, notes: tuple[str, ...] = (), citation: str = "") -> ZooEntry:
    kw = {} if normalization is None else {"normalization": normalization}
    lineage = Lineage(method, arch_label, epochs, license=license, **kw)
    data = DataConfig() if normalization is None else DataConfig(normalization=normalization)
    return ZooEntry(
        name=name, role="teacher", architecture=arch, head=head, trained_by=lineage, source=source,
        metrics=metrics, data=data, license=license, citation=citation or SEED_CITATION,
        description=f"{method} {arch_label}, {epochs} epochs on ImageNet-1k, as released by the SEED authors",
        notes=notes,
    )


TEACHERS: tuple[ZooEntry, ...] = (
    _teacher("mocov2_r50.in1k_200ep", "seed_resnet50", "ResNet-50", "MoCo-v2", 200, _MOCO_HEAD,
             _src("jianfw_mocov2_ResNet50_epoch200.pth", "moco_v2"),
             linear("mocov2_r50_200ep"),
             license=LICENSE_SEED,
             notes=("SEED's own MoCo-v2 run, the R-50 teacher of the paper's main table "
                    "(the MoCo authors' 200-epoch model reports 67.7).",)),
    _teacher("mocov2_r50.in1k_800ep", "seed_resnet50", "ResNet-50", "MoCo-v2", 800, _MOCO_HEAD,
             _src("moco_v2_800ep_pretrain.pth.tar", "moco_v2"),
             linear("mocov2_r50_800ep")),
    _teacher("mocov1_r50.in1k_200ep", "seed_resnet50", "ResNet-50", "MoCo-v1", 200,
             HeadSpec(2048, 0, 128), _src("moco_v1_200ep_pretrain.pth.tar", "moco_v2"),
             notes=("MoCo-v1 has a single linear projection (`fc`), read with the MoCo-v2 layout rules.",)),
    _teacher("mocov2_r101.in1k_200ep", "seed_resnet101", "ResNet-101", "MoCo-v2", 200, _MOCO_HEAD,
             _src("res101-moco-v2-checkpoint_0199.pth.tar", "moco_v2"), license=LICENSE_SEED),
    _teacher("mocov2_r152.in1k_200ep", "seed_resnet152", "ResNet-152", "MoCo-v2", 200, _MOCO_HEAD,
             _src("200-resnet152-moco-v2-checkpoint_0199.pth.tar", "moco_v2"), license=LICENSE_SEED,
             notes=("SEED's table lists an R-152 teacher at 74.1 top-1 without naming which of the two "
                    "released R-152 files it is; the number is not attached to either.",)),
    _teacher("mocov2_r152.in1k_800ep", "seed_resnet152", "ResNet-152", "MoCo-v2", 800, _MOCO_HEAD,
             _src("800-resnet152-moco-v2-checkpoint_0799.pth.tar", "moco_v2"), license=LICENSE_SEED,
             notes=("SEED's table lists an R-152 teacher at 74.1 top-1 without naming which of the two "
                    "released R-152 files it is; the number is not attached to either.",)),
    _teacher("swav_r50.in1k_800ep", "seed_resnet50", "ResNet-50", "SwAV", 800, HeadSpec(2048, 2048, 128, True),
             _src("swav_800ep_pretrain.pth.tar", "swav"),
             linear("swav_r50_800ep")),
    _teacher("swav_r50w2.in1k_400ep", "seed_resnet50w2", "ResNet-50x2", "SwAV", 400, HeadSpec(4096, 8192, 128, True),
             _src("swav_RN50w2_400ep_pretrain.pth.tar", "swav"),
             linear("swav_r50w2_400ep")),
    _teacher("swav_r50w4.in1k_400ep", "seed_resnet50w4", "ResNet-50x4", "SwAV", 400, HeadSpec(8192, 8192, 128, True),
             _src("swav_RN50w4_400ep_pretrain.pth.tar", "swav"),
             linear("swav_r50w4_400ep")),
    _teacher("swav_r50w5.in1k_400ep", "seed_resnet50w5", "ResNet-50x5", "SwAV", 400, HeadSpec(10240, 10240, 128, False),
             _src("swav_RN50w5_400ep_pretrain.pth.tar", "swav"),
             linear("swav_r50w5_400ep"),
             notes=("SwAV's x5 projection head has no batch norm.",)),
    _teacher("simclr_r50.in1k_200ep", "seed_resnet50", "ResNet-50", "SimCLR", 200, HeadSpec(2048, 2048, 128, True),
             _src("simclr_200.pth", "simclr_seed"), license=LICENSE_SEED, normalization=UNNORMALIZED,
             notes=("SEED's own SimCLR file. Input normalisation is inferred (TF SimCLR conventions: raw "
                    "[0, 1] pixels); check before relying on it.",)),
)

_TEACHER_BY_NAME = {t.name: t for t in TEACHERS}


# --- students ----------------------------------------------------------------------------------

def _student(name: str, arch: str, width: int, teacher: str, epochs: int, *,
             source: OfficialSource | None = None, metrics: tuple[Metric, ...] = (),
             teacher_temperature: float = 1e-4, small_patches: bool = False,
             notes: tuple[str, ...] = ()) -> ZooEntry:
    t = _TEACHER_BY_NAME[teacher]
    lineage = Lineage(t.trained_by.method, t.trained_by.arch, t.trained_by.epochs,
                      t.trained_by.normalization, t.license, entry=t.name)
    license = t.license if t.license == LICENSE_NC else LICENSE_SEED
    recipe = Recipe(config=name.replace(".", "__") + ".yaml", epochs=epochs,
                    teacher_temperature=teacher_temperature, small_patches=small_patches)
    what = "recipe only: no released file" if source is None else "released by the SEED authors"
    return ZooEntry(
        name=name, role="student", architecture=arch, head=HeadSpec(width, width, 128),
        trained_by=Lineage("SEED", "", epochs, license=license), teacher=lineage, source=source,
        metrics=metrics, recipe=recipe, license=license, citation=SEED_CITATION,
        description=(f"{name.split('.')[0]} distilled by SEED from {lineage.method} {lineage.arch} "
                     f"({epochs} epochs{', small patches' if small_patches else ''}); {what}"),
        notes=notes,
    )


_LEN_NOTE = ("The paper's number is for its best setting (SwAV R50x2 teacher, 800 epochs, small patches); "
             "this released file is a 400-epoch run, so its accuracy may be lower.")

# The first entry of an architecture is its default tag (what the short alias resolves to).
STUDENTS: tuple[ZooEntry, ...] = (
    _student("seed_mbv3_large.mocov2_r50_200ep", "seed_mobilenetv3_large", 1280, "mocov2_r50.in1k_200ep", 200,
             source=_src("mobilenetv3_large_distill-moco-v2-checkpoint_0199.pth.tar", "seed_student"),
             metrics=linear("mbv3_large <- mocov2_r50")),
    _student("seed_mbv3_large.swav_r50w2_800ep", "seed_mobilenetv3_large", 1280, "swav_r50w2.in1k_400ep", 800,
             small_patches=True, metrics=linear("mbv3_large <- swav_r50w2_800ep"),
             notes=("The authors no longer keep this file: a reproduction recipe until seedzoo trains it.",)),
    _student("seed_effb0.swav_r50w2_800ep", "seed_efficientnet_b0", 1280, "swav_r50w2.in1k_400ep", 800,
             small_patches=True,
             source=_src("AMP_SMALL_PATCH_800_efficientnet_b0_distill_resnet50w2-swav-checkpoint_0799.pth.tar",
                         "seed_student"),
             metrics=linear("effb0 <- swav_r50w2_800ep")),
    _student("seed_effb0.swav_r50w4_400ep", "seed_efficientnet_b0", 1280, "swav_r50w4.in1k_400ep", 400,
             small_patches=True,
             source=_src("AMP_SMALL_PATCH_400_efficientnet_b0_distill_resnet50w4-swav-checkpoint_0399.pth.tar",
                         "seed_student"),
             notes=("The paper reports no number for this pairing.",)),
    _student("seed_effb1.mocov2_r152_200ep", "seed_efficientnet_b1", 1280, "mocov2_r152.in1k_200ep", 200,
             notes=("Recipe only. The authors' B1 file of this pairing is labelled SwAV, which released no "
                    "ResNet-152, so its teacher cannot be confirmed; the other B1 link points at a ResNet-18 "
                    "file. Neither is an entry; an official B1 file still loads with pretrained=PATH.",)),
    _student("seed_r18.swav_r50w2_400ep", "seed_resnet18", 512, "swav_r50w2.in1k_400ep", 400, small_patches=True,
             source=_src("AMP_SMALL_PATCH_400_resnet18_distill_resnet50w2-swav-checkpoint_0399.pth.tar",
                         "seed_student"),
             metrics=linear("r18 <- swav_r50w2_800ep", note=_LEN_NOTE), notes=(_LEN_NOTE,)),
    _student("seed_r18.mocov2_r50_200ep", "seed_resnet18", 512, "mocov2_r50.in1k_200ep", 200,
             source=_src("resnet18_distill_resnet50-moco-v2-checkpoint_0199.pth.tar", "seed_student"),
             metrics=linear("r18 <- mocov2_r50") + semi("r18 <- mocov2_r50")),
    _student("seed_r18.mocov2_r152_200ep", "seed_resnet18", 512, "mocov2_r152.in1k_200ep", 200,
             metrics=linear("r18 <- mocov2_r152") + semi("r18 <- mocov2_r152"),
             notes=("No released file: a reproduction recipe.",)),
    _student("seed_r34.swav_r50w2_800ep", "seed_resnet34", 512, "swav_r50w2.in1k_400ep", 800, small_patches=True,
             metrics=linear("r34 <- swav_r50w2_800ep"),
             notes=("No ResNet-34 file was released: a reproduction recipe.",)),
    _student("seed_r34.mocov2_r50_200ep", "seed_resnet34", 512, "mocov2_r50.in1k_200ep", 200,
             metrics=linear("r34 <- mocov2_r50"), notes=("No ResNet-34 file was released: a reproduction recipe.",)),
    _student("seed_r34.mocov2_r152_200ep", "seed_resnet34", 512, "mocov2_r152.in1k_200ep", 200,
             metrics=linear("r34 <- mocov2_r152"), notes=("No ResNet-34 file was released: a reproduction recipe.",)),
    _student("seed_r50.swav_r50w4_400ep", "seed_resnet50", 2048, "swav_r50w4.in1k_400ep", 400, small_patches=True,
             source=_src("AMP_SMALL_PATCH_400_resnet50_distill_resnet50w4-swav-checkpoint_0399.pth.tar",
                         "seed_student"),
             metrics=linear("r50 <- swav_r50w4", note="the paper's row for a SwAV R50x4 teacher; its training length "
                                         "is not restated here, the file is a 400-epoch run")),
)

# Rows of the authors' release list that are not entries, and why.
EXCLUDED_RELEASES: dict[str, str] = {
    "EfficientNet-B1 <- ResNet-50 SWAV 200": (
        "its link points to the ResNet-18 <- R-50 MoCo-v2 file (resnet18_distill_resnet50-moco-v2-"
        "checkpoint_0199.pth.tar); no B1 file of this pairing is available"),
    "EfficientNet-B1 <- ResNet-152 SWAV 200": (
        "labelled SwAV, but SwAV released no ResNet-152: the teacher is likely MoCo-v2 ResNet-152 and "
        "cannot be confirmed, so no lineage can be stated (kept as the recipe seed_effb1.mocov2_r152_200ep)"),
}


# --- Fashion-MNIST: trained by seedzoo on a 2-core CPU, shipped inside the package -------------------
# `seedzoo reproduce fmnist` trains and evaluates all of them; `seedzoo train <entry>` reproduces one.
# Measured numbers: Fashion-MNIST's 10,000 test images, features at 32 px (the training resolution).

FASHION_MNIST_DATA = DataConfig(input_size=(3, 32, 32), crop_pct=1.0, interpolation="bilinear",
                                normalization=FASHION_MNIST_NORM)
LICENSE_SEEDZOO = "apache-2.0"
_BACKBONE_ONLY = ("The shipped file holds the backbone only (fp16, under 10 MB): the projection head served "
                  "training alone. `seedzoo train` on the recipe gives a file with it.")
_FMNIST_NOTE = ("Trained on Fashion-MNIST's 60,000 training images without their labels, at 32 px: a small, "
                "offline reproduction of SEED's claim, not an ImageNet model.")


# The shipped files' sha256 and the numbers measured on them: zoo data, written only by the release
# step of `seedzoo reproduce fmnist --release` (see `measured.py`).
_RECORD = read_record()

# The data-free fingerprint of each shipped file, pinned for `seedzoo verify NAME --fingerprint` (these
# files have no config.json beside them). A pin counts only for the sha256 it was computed from, so a
# re-shipped file is reported as unpinned rather than compared with a stale record.
FINGERPRINTS_FILE = Path(__file__).with_name("fingerprints.json")
_FINGERPRINTS = json.loads(FINGERPRINTS_FILE.read_text())["entries"] if FINGERPRINTS_FILE.is_file() else {}


def _shipped_weights(name: str, with_head: bool = True) -> Weights:
    weights = _RECORD.weights(name, with_head)
    pin = _FINGERPRINTS.get(name, {})
    if weights.sha256 and pin.get("sha256") == weights.sha256:
        return replace(weights, fingerprint=pin["fingerprint"])
    return weights


def _fmnist_moco(name: str, arch: str, width: int, epochs: int, role: str,
                 notes: tuple[str, ...] = (), with_head: bool = True) -> ZooEntry:
    lineage = Lineage("MoCo-v2", arch, epochs, FASHION_MNIST_NORM, LICENSE_SEEDZOO)
    return ZooEntry(
        name=name, role=role, architecture=arch, head=HeadSpec(width, width, 128), trained_by=lineage,  # type: ignore[arg-type]
        weights=_shipped_weights(name, with_head), metrics=_RECORD.metrics(name), data=FASHION_MNIST_DATA,
        train_data="Fashion-MNIST",
        license=LICENSE_SEEDZOO,
        recipe=Recipe(config=name.replace(".", "__") + ".yaml", epochs=epochs, method="moco", queue_size=16384,
                      teacher_temperature=None),
        citation=SEED_CITATION, description=f"{arch} trained by MoCo-v2 on Fashion-MNIST ({epochs} epochs, 32 px)",
        notes=(_FMNIST_NOTE, *notes, *_RECORD.notes(name)),
    )


FASHION_MNIST: tuple[ZooEntry, ...] = (
    _fmnist_moco("mocov2_r18.fmnist", "seed_resnet18_lowres", 512, 10, "teacher",
                 notes=("ResNet-18 with the low-resolution stem (a 3x3 stride-1 first convolution and no max-pool), "
                        "as CIFAR-scale self-supervised work uses: at 32 px its layer4 keeps 4x4 maps, where the "
                        "ImageNet stem leaves 1x1. It costs 555 M multiply-adds per 32 px image, 78x the "
                        "MobileNetV3-Large student's 7.1 M, with 2.7x its parameters. Not the paper's ResNet-50: "
                        "on this 2-core CPU a ResNet-50 step costs over twice a ResNet-18's, and the teacher stage "
                        "has 150 minutes.",
                        "Within that budget it misses the reproduction's target for a teacher on nearest-neighbour "
                        "search: its kNN-20 stays below the raw pixels' (Results, above), while its linear top-1 "
                        "is well above them. What was tried, each measured (stem, input size, crop scale, "
                        "precision, epochs), is listed in the recipe (seedzoo/recipes/mocov2_r18__fmnist.yaml).",)),
    ZooEntry(
        name="seed_mbv3_large.fmnist_mocov2_r18", role="student", architecture="seed_mobilenetv3_large",
        head=HeadSpec(1280, 1280, 128),
        trained_by=Lineage("SEED", "", 4, FASHION_MNIST_NORM, LICENSE_SEEDZOO),
        teacher=Lineage("MoCo-v2", "ResNet-18 (low-resolution stem)", 10, FASHION_MNIST_NORM, LICENSE_SEEDZOO,
                        entry="mocov2_r18.fmnist"),
        weights=_shipped_weights("seed_mbv3_large.fmnist_mocov2_r18", with_head=False),
        metrics=_RECORD.metrics("seed_mbv3_large.fmnist_mocov2_r18"),
        data=FASHION_MNIST_DATA,
        train_data="Fashion-MNIST",
        recipe=Recipe(config="seed_mbv3_large__fmnist_mocov2_r18.yaml", epochs=4, queue_size=16384,
                      teacher_temperature=1e-4),
        license=LICENSE_SEEDZOO, citation=SEED_CITATION,
        description="seed_mbv3_large distilled by SEED from mocov2_r18.fmnist on Fashion-MNIST (4 epochs, 32 px)",
        notes=(_FMNIST_NOTE, _BACKBONE_ONLY, *_RECORD.notes("seed_mbv3_large.fmnist_mocov2_r18"),
               "It misses two of the reproduction's targets for a student (Results, above, beside the README's "
               "reference rows): its kNN-20 stays below the raw pixels', and its lead over its architecture at "
               "random init, positive in every seed, is under the 3 points asked; its linear top-1 is above "
               "both. Its teacher misses its own targets (its card says what was tried), and the README's "
               "teacher temperature and queue curves give the recipe's settings the best kNN-20 measured (linear "
               "top-1 within the seed noise).")),
    _fmnist_moco("mocov2_mbv3_large.fmnist", "seed_mobilenetv3_large", 1280, 4, "baseline",
                 notes=("The paper's baseline: the SEED student's architecture, epochs, batch and augmentation, "
                        "trained by MoCo-v2 alone.", _BACKBONE_ONLY), with_head=False),
    ZooEntry(
        name="supervised_mbv3_large.fmnist", role="reference", architecture="seed_mobilenetv3_large",
        head=HeadSpec(1280, 0, 10),
        trained_by=Lineage("supervised (labels)", "", 4, FASHION_MNIST_NORM, LICENSE_SEEDZOO),
        weights=_shipped_weights("supervised_mbv3_large.fmnist"),
        metrics=_RECORD.metrics("supervised_mbv3_large.fmnist"),
        data=FASHION_MNIST_DATA, train_data="Fashion-MNIST",
        license=LICENSE_SEEDZOO,
        citation=SEED_CITATION,
        description=("seed_mbv3_large trained with Fashion-MNIST's labels for four epochs (32 px): "
                     "the labelled reference"),
        notes=("A reference, not a self-supervised model: cross-entropy on the 60,000 labelled training images, "
               "RandomResizedCrop + flip, SGD lr 0.1 with cosine decay, four epochs (the students' budget). "
               "Its head is the trained 10-way linear classifier.",)),
)

ENTRIES: tuple[ZooEntry, ...] = STUDENTS + TEACHERS + FASHION_MNIST
