"""Every network of the reproduction under the same protocols, and a measurement of the teacher.

The table's rows are the trained stages (the files a release would ship where there is one, else the
stage's export), the labelled reference, every architecture of the table at random init (the teacher's
and the students'), and the raw pixels the networks receive (`evaluation.pixels.RawPixels`: no network,
no training), as they are and centred on the bank's mean image. Every row runs the same protocols.

Features are cached under `OUT/features/` (for a seed folder, the one above it: the teacher's features serve
every seed), and each row's results are kept in `OUT/evaluation/KEY.json`
once measured: an interrupted evaluation continues with the rows it had not finished, and a row is
measured again only when its network (or the datasets, or `limit`) changed.
"""
from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...files import write_atomic
from ...zoo import get_entry
from .stages import REFERENCE, STUDENT, TEACHER, TRAINING, is_done, reference_label, shared_home, supervised_export

# Protocols of the table, as pinned strings (`seedzoo eval NAME --protocol P` measures each again).
PROTOCOLS = {"knn": "knn", "linear": "linear_fast", "linear_1pct": "linear_fast:fraction=0.01"}
# The random-init references, by the entry whose architecture and preprocessing they use.
RANDOM_INIT_LABELS = {TEACHER: "random init: ResNet-18 (the teacher's architecture)",
                      STUDENT: "random init: MobileNetV3-Large (the students' architecture)"}
# The raw-pixel references, by row key: the students' input tensors (32 px, normalised), flattened.
PIXEL_LABELS = {"pixels": "raw pixels: the networks' input (no network)",
                "pixels_centred": "raw pixels, centred on the training mean (no network)"}
WEIGHTS_NONE = {False: "random init", None: "raw pixels"}  # `Row.weights` of the rows measured on no file
CROWDING_IMAGES = 512  # the training images on which `teacher_crowding` measures the teacher's embeddings


@dataclass
class Row:
    label: str
    weights: str
    results: dict[str, Any]


@dataclass(frozen=True)
class Network:
    """One row to measure: `weights` is a file or folder, False (random init, drawn as the trainer draws
    the initial weights of a run with `seed`) or None (raw pixels, with `architecture` None)."""

    key: str  # its results file under OUT/evaluation/
    label: str
    entry: str  # whose preprocessing its inputs get (and, with weights, whose head the teacher has)
    architecture: str | None
    weights: Path | bool | None
    seed: int = 0

    @property
    def weights_text(self) -> str:
        return WEIGHTS_NONE[self.weights] if self.weights in WEIGHTS_NONE else str(self.weights)


def _networks(out: Path, packed: dict[str, Path], seed: int) -> list[Network]:
    """Every row of the table, in order; the random-init rows are those of the runs trained with `seed`."""
    student_arch = get_entry(STUDENT).architecture
    rows = []
    for stage in TRAINING:
        if stage.key not in packed and not is_done(stage.export(out)):
            continue  # not trained (yet): `run_all` can evaluate the main rows before the ablations
        weights = packed.get(stage.key) or stage.export(out)
        rows.append(Network(stage.key, stage.label, stage.recipe, get_entry(stage.recipe).architecture, weights))
    rows.append(Network("supervised", reference_label(), REFERENCE, student_arch,
                         packed.get("supervised") or supervised_export(out)))
    for entry, label in RANDOM_INIT_LABELS.items():
        rows.append(Network(f"random_{entry}", label, entry, get_entry(entry).architecture, False, seed))
    rows += [Network(key, label, STUDENT, None, None) for key, label in PIXEL_LABELS.items()]
    return rows


def evaluate(out: Path, packed: dict[str, Path] | None = None, datasets: Iterable[str] = ("fashion_mnist",),
             limit: int | None = None, progress: bool = False, rows: Collection[str] | None = None,
             seed: int = 0) -> list[Row]:
    """Every network of the reproduction under the table's protocols. `packed` maps a stage key to the
    file to measure instead of its export (the fp16 copy that ships); `rows` keeps only the rows of
    those keys (e.g. `PIXEL_LABELS`, which need no trained network); `seed` is the runs' (`seed=`), which
    the random-init rows share."""
    datasets = tuple(datasets)
    table = []
    for network in _networks(out, packed or {}, seed):
        if rows is not None and network.key not in rows:
            continue
        table.append(measure(out, network, datasets, limit, progress))
    return table


def measure(out: Path, network: Network, datasets: tuple[str, ...], limit: int | None = None,
            progress: bool = False) -> Row:
    """One row under the table's protocols, kept in `OUT/evaluation/KEY.json` and measured again only
    when its network, the datasets or `limit` changed."""
    model = _build(network)
    identity = {"label": network.label, "weights": network.weights_text, "datasets": list(datasets),
                "limit": limit, "model": _model_id(model)}
    saved = out / "evaluation" / f"{network.key}.json"
    if saved.is_file() and (kept := json.loads(saved.read_text()))["identity"] == identity:
        return Row(**kept["row"])
    results = {}
    for dataset in datasets:
        for key, result in _measure(network, model, dataset, out, limit, progress).items():
            results[f"{dataset}/{key}"] = result
    row = Row(network.label, network.weights_text, results)
    write_atomic(saved, json.dumps({"identity": identity, "row": asdict(row)}, indent=2) + "\n")
    return row


def _build(network: Network) -> nn.Module | None:
    """The network of a row; None for raw pixels, whose extractor depends on the dataset (its mean image)."""
    import seedzoo

    if network.architecture is None:
        return None
    torch.manual_seed(network.seed)  # a random-init reference: the network a run of that seed starts from
    return seedzoo.create_model(network.architecture, pretrained=network.weights, num_classes=0).eval()


def _model_id(model: nn.Module | None) -> str:
    from ...evaluation.features import state_dict_sha256

    return "raw pixels" if model is None else state_dict_sha256(model)


def _measure(network: Network, model: nn.Module | None, dataset: str, out: Path, limit: int | None,
             progress: bool) -> dict[str, dict[str, Any]]:
    """The row's results on one dataset, by protocol key (`knn_head`: the teacher's head space)."""
    import seedzoo

    from ...evaluation.features import HeadOutput
    from ...evaluation.runner import run_evaluation

    # the teacher is also measured in the space its students distil: its projection head's output
    spaces: dict[str, nn.Module] = {"": model if model is not None else _pixels(network, dataset, limit)}
    if network.entry == TEACHER and network.weights:
        head = seedzoo.load_projection_head(TEACHER, pretrained=network.weights).eval()
        spaces["_head"] = HeadOutput(spaces[""], head)
    results = {}
    for key, protocol in PROTOCOLS.items():
        for suffix, extractor in spaces.items():
            if suffix and key != "knn":
                continue
            r = run_evaluation(network.entry, protocol, dataset, model=extractor,
                               cache_dir=shared_home(out) / "features",
                               limit=limit, device="cpu", num_workers=2, progress=progress)
            results[f"{key}{suffix}"] = {"protocol": r.protocol, **r.metrics}
    return results


def _pixels(network: Network, dataset: str, limit: int | None) -> nn.Module:
    """The raw-pixel extractor of a row on `dataset`: centred on that dataset's training split (the bank
    its kNN searches, the set its probe trains on), as the protocols preprocess it."""
    from ...evaluation.datasets import build_dataset
    from ...evaluation.pixels import RawPixels
    from ...evaluation.transforms import preprocessing_for

    if network.key != "pixels_centred":
        return RawPixels()
    bank = build_dataset(dataset, "train", None, preprocessing_for(network.entry).eval_transform(), limit)
    return RawPixels.centred_on(bank, num_workers=2)


def teacher_crowding(weights: str | Path | bool, images: int = CROWDING_IMAGES) -> dict[str, float]:
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
