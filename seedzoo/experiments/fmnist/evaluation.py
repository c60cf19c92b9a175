"""Every network of the reproduction under the same protocols, and a measurement of the teacher.

The table's rows are the trained stages (the files a release would ship where there is one, else the
stage's export), the labelled reference and every architecture of the table at random init (the
teacher's and the students'), under the same protocols. Features are cached under `OUT/features/`.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ...zoo import get_entry
from .stages import REFERENCE, STUDENT, TEACHER, TRAINING, export_dir, is_done, reference_label

# Protocols of the table, as pinned strings (`seedzoo eval NAME --protocol P` measures each again).
PROTOCOLS = {"knn": "knn", "linear": "linear_fast", "linear_1pct": "linear_fast:fraction=0.01"}
# The random-init references, by the entry whose architecture and preprocessing they use.
RANDOM_INIT_LABELS = {TEACHER: "random init: ResNet-18 (the teacher's architecture)",
                      STUDENT: "random init: MobileNetV3-Large (the students' architecture)"}


@dataclass
class Row:
    label: str
    weights: str
    results: dict[str, Any]


def _networks(out: Path, packed: dict[str, Path]) -> list[tuple[str, str, str, Path | bool]]:
    """(label, entry for preprocessing, architecture, weights) of every network in the table."""
    student_arch = get_entry(STUDENT).architecture
    rows: list[tuple[str, str, str, Path | bool]] = []
    for stage in TRAINING:
        if stage.key not in packed and not is_done(stage.run_dir(out)):
            continue  # not trained (yet): `run_all` can evaluate the main rows before the ablations
        weights = packed.get(stage.key) or export_dir(stage.run_dir(out))
        rows.append((stage.label, stage.recipe, get_entry(stage.recipe).architecture, weights))
    rows.append((reference_label(), REFERENCE, student_arch,
                 packed.get("supervised") or export_dir(out / "supervised")))
    for entry, label in RANDOM_INIT_LABELS.items():
        rows.append((label, entry, get_entry(entry).architecture, False))
    return rows


def evaluate(out: Path, packed: dict[str, Path] | None = None, datasets: Iterable[str] = ("fashion_mnist",),
             limit: int | None = None, progress: bool = False) -> list[Row]:
    """Every network of the reproduction under the table's protocols. `packed` maps a stage key to the
    file to measure instead of its export (the fp16 copy that ships)."""
    import seedzoo

    from ...evaluation.features import HeadOutput
    from ...evaluation.runner import run_evaluation

    table = []
    for label, entry, arch, weights in _networks(out, packed or {}):
        torch.manual_seed(0)  # a random-init reference is the seed-0 network, built as the trainer builds it
        model = seedzoo.create_model(arch, pretrained=weights, num_classes=0).eval()
        # the teacher is also measured in the space its students distil: its projection head's output
        spaces = {"": model}
        if entry == TEACHER and weights:
            spaces["_head"] = HeadOutput(model, seedzoo.load_projection_head(TEACHER, pretrained=weights).eval())
        results = {}
        for dataset in datasets:
            for key, protocol in PROTOCOLS.items():
                for suffix, network in spaces.items():
                    if suffix and key != "knn":
                        continue
                    r = run_evaluation(entry, protocol, dataset, model=network, cache_dir=out / "features",
                                       limit=limit, device="cpu", num_workers=2, progress=progress)
                    results[f"{dataset}/{key}{suffix}"] = {"protocol": r.protocol, **r.metrics}
        table.append(Row(label, str(weights) if weights else "random init", results))
    return table


def teacher_crowding(weights: str | Path | bool, images: int = 512) -> dict[str, float]:
    """How crowded the teacher's embeddings (head output, L2-normalised) are on the first `images` training
    images: the mean cosine to the nearest other image, and between all pairs. Near 1, SEED's target at
    tau_T 1e-4 is one-hot over near-duplicates; this is why the recipe uses 0.01. Also the effective rank
    (`evaluation.features.effective_rank`) of the head's space and of the backbone's."""
    import seedzoo

    from ...evaluation.datasets import build_dataset, num_samples
    from ...evaluation.features import effective_rank
    from ...evaluation.transforms import preprocessing_for

    model = seedzoo.create_model(TEACHER, pretrained=weights, num_classes=0).eval()
    head = seedzoo.load_projection_head(TEACHER, pretrained=weights).eval()
    data = build_dataset("fashion_mnist", "train", None, preprocessing_for(TEACHER).eval_transform(), images)
    x = torch.stack([data[i][0] for i in range(min(images, num_samples(data)))])
    with torch.no_grad():
        features = model(x)
        z = torch.nn.functional.normalize(head(features), dim=1)
    cos = z @ z.T
    others = ~torch.eye(len(z), dtype=torch.bool)
    nearest = cos.masked_fill(~others, -2.0).max(dim=1).values
    return {"images": len(z), "nearest_cosine_mean": round(nearest.mean().item(), 4),
            "pairwise_cosine_mean": round(cos[others].mean().item(), 4),
            "effective_rank": round(effective_rank(z), 2),
            "backbone_effective_rank": round(effective_rank(features), 2)}
