"""The numbers the papers published: the only numbers an entry may mark "reported".

SEED's main table (ImageNet-1k linear probe, top-1 / top-5, per student and teacher), its
semi-supervised table (ResNet-18 fine-tuned on 1% / 10% of the labels) and the teachers' own papers
as SEED cites them. Entries take their reported metrics from these tables by key, so a number on a
card can be traced to one cell here; the tests check that no entry states a reported number that is not.
"""
from __future__ import annotations

from dataclasses import dataclass

from .schema import Metric

SEED_PAPER = "SEED (Fang et al., ICLR 2021), Table 1/2"
SEED_TEACHER = SEED_PAPER + " (SEED's in-house teacher)"
MOCO_V2_PAPER = "MoCo-v2 (Chen et al., 2020), as cited by SEED"
SWAV_PAPER = "SwAV (Caron et al., 2020), as cited by SEED"

IMAGENET = "ImageNet-1k"
SEMI_DATASETS = ("ImageNet-1k 1% labels", "ImageNet-1k 10% labels")


@dataclass(frozen=True)
class Published:
    """One cell of a linear-probe table: top-1 and, where the paper prints it, top-5."""

    top1: float
    top5: float | None = None
    source: str = SEED_PAPER
    note: str = ""  # what the paper itself says about the cell


_NOT_VERIFIED = "listed as not verified against the paper's table"

# Linear probe on ImageNet-1k. Keys: "<student> <- <teacher>" for SEED, "<arch> mocov2" for the
# self-supervised baseline alone, "<teacher entry>" for a teacher.
LINEAR: dict[str, Published] = {
    # students: MoCo-v2 alone, then SEED from each teacher column of the paper
    "effb0 mocov2": Published(42.2),
    "effb0 <- mocov2_r50": Published(61.3, note=_NOT_VERIFIED),
    "effb0 <- swav_r50w2_800ep": Published(67.6),
    "mbv3_large mocov2": Published(36.3),
    "mbv3_large <- mocov2_r50": Published(55.2, note=_NOT_VERIFIED),
    "mbv3_large <- swav_r50w2_800ep": Published(68.2),
    "r18 mocov2": Published(52.5, 77.0),
    "r18 <- mocov2_r50": Published(57.6, 81.8),
    "r18 <- mocov2_r152": Published(59.5, 83.3),
    "r18 <- swav_r50w2_800ep": Published(63.0, 84.9),
    "r34 mocov2": Published(57.4, 81.6),
    "r34 <- mocov2_r50": Published(58.5, 82.6),
    "r34 <- mocov2_r152": Published(62.7, 85.8),
    "r34 <- swav_r50w2_800ep": Published(65.7, 86.8),
    "r50 <- swav_r50w4": Published(74.3),
    # teachers
    "mocov2_r50_200ep": Published(67.4, source=SEED_TEACHER),  # SEED's own run; the MoCo paper's is 67.7
    "mocov2_r50_200ep (MoCo-v2 paper)": Published(67.7, source=MOCO_V2_PAPER),
    "mocov2_r50_800ep": Published(71.1, source=MOCO_V2_PAPER),
    "mocov2_r152": Published(74.1),  # SEED does not say which of the two released R-152 files
    "swav_r50_800ep": Published(75.3, source=SWAV_PAPER),
    "swav_r50w2_400ep": Published(77.3, source=SWAV_PAPER),
    "swav_r50w4_400ep": Published(77.9, source=SWAV_PAPER),
    "swav_r50w5_400ep": Published(78.5, source=SWAV_PAPER),
}

# Semi-supervised: ResNet-18 fine-tuned on 1% and 10% of ImageNet-1k's labels (top-1).
SEMI: dict[str, tuple[float, float]] = {
    "r18 mocov2": (30.9, 45.8),
    "r18 <- mocov2_r50": (39.1, 50.2),
    "r18 <- mocov2_r152": (44.3, 54.8),
}


def linear(key: str, note: str = "") -> tuple[Metric, ...]:
    """The reported linear-probe metrics of one cell; `note` replaces the paper's note on it."""
    cell = LINEAR[key]
    why = note or cell.note
    out = [Metric(cell.top1, "top1", IMAGENET, "linear_seed", "reported", cell.source, why)]
    if cell.top5 is not None:
        out.append(Metric(cell.top5, "top5", IMAGENET, "linear_seed", "reported", cell.source, why))
    return tuple(out)


def semi(key: str) -> tuple[Metric, ...]:
    """The reported semi-supervised metrics of one row (1% then 10% of the labels)."""
    return tuple(Metric(value, "top1", dataset, "semi_finetune", "reported", SEED_PAPER)
                 for value, dataset in zip(SEMI[key], SEMI_DATASETS))


def published_metrics() -> tuple[Metric, ...]:
    """Every number of the tables above as a metric (without notes): what "reported" may state."""
    return tuple(m for key in LINEAR for m in linear(key)) + tuple(m for key in SEMI for m in semi(key))
