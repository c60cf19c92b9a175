"""Typed records of the zoo: one `ZooEntry` per pretrained tag, the single source of truth.

Cards, hub entrypoints, the README table and `seedzoo list` are generated from these records.
"""
from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# baseline: a student architecture trained by self-supervision alone (the paper's comparison);
# reference: the same architecture trained with labels (what label-free training is measured against)
Role = Literal["student", "teacher", "baseline", "reference"]
MetricKind = Literal["reported", "measured"]
Layout = Literal["seed_student", "moco_v2", "swav", "simclr_seed"]


@dataclass(frozen=True)
class Normalization:
    """Input normalisation a network was trained with (pixels in [0, 1] before it)."""

    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    note: str = "ImageNet mean/std"


IMAGENET_NORM = Normalization()
# Google's TF SimCLR conversions take raw [0, 1] pixels; SEED's own SimCLR file is assumed to follow
# them (inferred from the official loader, which applies no normalisation of its own).
UNNORMALIZED = Normalization(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), note="none: [0, 1] pixels (inferred)")
FASHION_MNIST_NORM = Normalization(mean=(0.286, 0.286, 0.286), std=(0.353, 0.353, 0.353),
                                   note="Fashion-MNIST mean/std (gray repeated to three channels)")


@dataclass(frozen=True)
class HeadSpec:
    """Projection head: Linear(in, hidden) [BN1d] ReLU Linear(hidden, out).

    Keys are `0`, `2` without batch norm and `0`, `1`, `3` with it, as in every official release.
    """

    in_dim: int
    hidden_dim: int
    out_dim: int = 128
    batch_norm: bool = False

    def describe(self) -> str:
        """The head as text, e.g. `Linear(1280, 1280) - ReLU - Linear(1280, 128)`: seedzoo's one rendering."""
        if not self.hidden_dim:
            return f"Linear({self.in_dim}, {self.out_dim})"
        return (f"Linear({self.in_dim}, {self.hidden_dim})" + (" - BN1d" if self.batch_norm else "")
                + f" - ReLU - Linear({self.hidden_dim}, {self.out_dim})")


@dataclass(frozen=True)
class Lineage:
    """Who taught a network, or how a teacher itself was trained."""

    method: str  # "MoCo-v2", "SwAV", "SimCLR", "MoCo-v1", "SEED"
    arch: str  # "ResNet-50", "ResNet-50x2", ...
    epochs: int
    normalization: Normalization = IMAGENET_NORM
    license: str = ""
    entry: str = ""  # the zoo entry of the teacher, when it is one

    def record(self) -> dict[str, object]:
        """The lineage as a record (cards' YAML, a model folder's config.json): seedzoo's one rendering."""
        out: dict[str, object] = {"method": self.method, "arch": self.arch, "epochs": self.epochs,
                                  "input_normalization": self.normalization.note}
        if not self.arch:
            del out["arch"]
        if self.entry:
            out["entry"] = self.entry
        if self.license:
            out["license"] = self.license
        return out

    def describe(self) -> str:
        """The lineage as one line of text (cards, hub docstrings)."""
        where = f" (entry `{self.entry}`)" if self.entry else ""
        return (f"{self.method} {self.arch}, {self.epochs} epochs{where}; input normalisation: "
                f"{self.normalization.note}; licence: {self.license or 'not stated'}")


@dataclass(frozen=True)
class OfficialSource:
    """A file the SEED authors released (see `zoo/official_releases.tsv`)."""

    url: str
    layout: Layout
    sha256: str = ""  # fixed by the first conversion: no checksum was published

    @property
    def filename(self) -> str:
        return self.url.split("?", 1)[0].rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Weights:
    """Where seedzoo's own safetensors live. Empty fields mean: not published yet."""

    hf_repo: str = ""
    revision: str = ""  # a commit hash, never a branch
    filename: str = "model.safetensors"
    sha256: str = ""
    mirrors: tuple[str, ...] = ()  # HTTP URLs serving the same bytes
    embedded: str = ""  # file shipped inside the package (seedzoo/weights/embedded/)
    with_head: bool = True  # False: the file holds the backbone only (`load_projection_head` refuses it)
    # The data-free fingerprint of this file (seedzoo.weights.fingerprint), which `seedzoo verify
    # --fingerprint` recomputes; None where a config.json beside the weights records it instead.
    fingerprint: Mapping[str, Any] | None = field(default=None, hash=False)

    @property
    def published(self) -> bool:
        return bool(self.sha256 and (self.hf_repo or self.mirrors or self.embedded))


@dataclass(frozen=True)
class Metric:
    """One number, with the protocol that produced it and where it comes from."""

    value: float
    metric: str  # "top1", "top5", "knn20_top1", ...
    dataset: str  # "ImageNet-1k", "ImageNet-1k 1%", "Fashion-MNIST"
    protocol: str  # "linear_seed", "knn", "semi_finetune", ...
    kind: MetricKind
    source: str  # the paper for reported numbers, the command for measured ones
    note: str = ""
    tolerance: float = 0.5  # points; used by `seedzoo verify` for measured numbers
    # The same recipe's number trained with seed 0, 1, ... (`value` is the one measured on the file that
    # ships); empty where the recipe was trained once.
    per_seed: tuple[float, ...] = ()

    @property
    def seed_mean(self) -> float:
        """The mean over the seeds (`value` where the recipe was trained once)."""
        return statistics.fmean(self.per_seed) if self.per_seed else self.value

    @property
    def seed_std(self) -> float | None:
        """The sample standard deviation over the seeds (None with fewer than two)."""
        return statistics.stdev(self.per_seed) if len(self.per_seed) > 1 else None


@dataclass(frozen=True)
class Recipe:
    """How the entry was (or is to be) trained; `config` names a YAML shipped in seedzoo/recipes."""

    config: str
    epochs: int
    method: Literal["seed", "moco"] = "seed"
    global_batch: int = 256
    student_temperature: float = 0.2
    teacher_temperature: float | None = 1e-4  # None for a method without a teacher (MoCo-v2)
    queue_size: int = 65536
    small_patches: bool = False
    note: str = ""

    def settings(self) -> str:
        """Its training settings in one line, as the model cards and `seedzoo info` print them."""
        # MoCo-v2 has one temperature (its InfoNCE's); SEED has the student's and the teacher's.
        temperatures = (f"temperature {self.student_temperature:g}" if self.teacher_temperature is None else
                        f"tau_S {self.student_temperature:g}, tau_T {self.teacher_temperature:g}")
        return (f"{self.epochs} epochs, global batch {self.global_batch}, queue {self.queue_size}, {temperatures}"
                + (", small patches (6 x 96 px)" if self.small_patches else ""))


@dataclass(frozen=True)
class DataConfig:
    """Evaluation preprocessing, in timm's pretrained_cfg terms."""

    input_size: tuple[int, int, int] = (3, 224, 224)
    crop_pct: float = 0.875  # Resize 256, CenterCrop 224
    interpolation: str = "bilinear"
    normalization: Normalization = IMAGENET_NORM


@dataclass(frozen=True)
class ZooEntry:
    name: str  # "arch.tag", timm's convention
    role: Role
    architecture: str  # a timm-registered architecture name
    head: HeadSpec
    trained_by: Lineage  # the SSL method for teachers; SEED (with its epochs) for students
    teacher: Lineage | None = None  # students only
    source: OfficialSource | None = None
    weights: Weights = field(default_factory=Weights)
    metrics: tuple[Metric, ...] = ()
    recipe: Recipe | None = None
    data: DataConfig = field(default_factory=DataConfig)
    train_data: str = "ImageNet-1k"  # what the network was trained on
    license: str = ""
    citation: str = ""
    description: str = ""
    notes: tuple[str, ...] = ()

    @property
    def arch_name(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1] if "." in self.name else ""

    @property
    def timm_name(self) -> str:
        """The timm pretrained tag of these weights, `<architecture>.<tag>`. A student's short name is its
        architecture's (`seed_mbv3_large.x` -> `seed_mobilenetv3_large.x`); other entries keep their short
        name in the tag (`mocov2_r50.in1k_200ep` -> `seed_resnet50.mocov2_r50_in1k_200ep`), because several
        teachers share one architecture and one tag."""
        tag = self.tag if self.arch_name.startswith("seed_") else f"{self.arch_name}_{self.tag}"
        return f"{self.architecture}.{tag.replace('.', '_')}"

    @property
    def hub_name(self) -> str:
        """The torch.hub entrypoint of the entry (a Python name: `seed_r18.x` -> `seed_r18__x`)."""
        return self.name.replace(".", "__")

    def lineage_record(self) -> dict[str, object]:
        """Who trained the network and, for a student, its teacher: the record cards and configs carry."""
        record: dict[str, object] = {"role": self.role, "architecture": self.architecture,
                                     "trained_by": self.trained_by.record()}
        if self.teacher is not None:
            record["teacher"] = self.teacher.record()
        return record

    @property
    def ships_classifier(self) -> bool:
        """Whether the weights' head is a trained classifier (a labelled reference's linear layer), which
        `create_model(..., num_classes=head.out_dim)` then loads as the model's classifier."""
        return self.role == "reference" and self.head.hidden_dim == 0 and self.weights.with_head

    @property
    def has_file(self) -> bool:
        """Weights exist somewhere: an official release or seedzoo's own files."""
        return self.source is not None or self.weights.published

    def metric(self, metric: str = "top1", kind: MetricKind | None = None) -> Metric | None:
        for m in self.metrics:
            if m.metric == metric and (kind is None or m.kind == kind):
                return m
        return None
