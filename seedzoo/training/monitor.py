"""The kNN monitor: a cheap progress signal at epoch ends, measured the way `seedzoo eval` measures kNN.

Its bank and its queries are disjoint, class-stratified, seeded draws (`evaluation.semi.class_balanced_subset`,
each class in proportion to its size): on Fashion-MNIST the bank from the training split and the queries
from the test split; on an image folder (one tree of class folders) both from that folder, the queries
held out of the bank. Features are `evaluation.features.extract_features`' (the representation `seedzoo
eval` reads) and the vote `evaluation.knn.knn_evaluate`'s: on the same split and weights the monitor is
the number `seedzoo eval --protocol knn` gives. Sources without labels have no monitor.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import Dataset

from ..data.augment import EvalTransform
from ..data.datasets import ImageSource, build_source
from ..evaluation.features import extract_features
from ..evaluation.knn import knn_evaluate
from ..evaluation.semi import class_balanced_subset
from .config import MonitorConfig, TrainDataConfig

LABELED = ("fashion_mnist", "image_folder")  # the data sources whose images carry labels


class SourceImages(Dataset):
    """The images `indices` of an image source as (tensor, label) pairs, through `transform`."""

    def __init__(self, source: ImageSource, indices: Sequence[int], transform: EvalTransform) -> None:
        self.source, self.indices, self.transform = source, list(indices), transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.source.load(self.indices[i])
        return self.transform(image), label


@dataclass(frozen=True)
class MonitorSplit:
    """The bank the queries vote with and the queries, disjoint."""

    bank: SourceImages
    queries: SourceImages


def _labels(source: ImageSource) -> torch.Tensor:
    return torch.as_tensor(getattr(source, "labels"), dtype=torch.long)  # noqa: B009 (not in the protocol)


def _draw(labels: torch.Tensor, n: int, seed: int, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """About `n` indices, each class in proportion to its size, none of `exclude`."""
    fraction = min(1.0, n / max(len(labels), 1))
    return class_balanced_subset(labels, fraction, seed, exclude=[] if exclude is None else exclude.tolist())


def monitor_split(data: TrainDataConfig, monitor: MonitorConfig, seed: int) -> MonitorSplit | None:
    """The monitor's bank (about `monitor.knn_train` images) and queries (about `monitor.knn_test`) for the
    run's data, drawn with the run's seed; None for a source without labels."""
    if data.source not in LABELED:
        return None
    transform = EvalTransform(data.image_size, mean=data.mean, std=data.std)
    if data.source == "fashion_mnist":  # a test split of its own: the queries come from it
        bank_source = build_source(data.source, data.path, split="train")
        query_source = build_source(data.source, data.path, split="test")
        queries = _draw(_labels(query_source), monitor.knn_test, seed)
        bank = _draw(_labels(bank_source), monitor.knn_train, seed)
    else:  # one folder: the queries are held out of it, the bank drawn from the rest
        bank_source = query_source = build_source(data.source, data.path)
        labels = _labels(bank_source)
        queries = _draw(labels, monitor.knn_test, seed)
        bank = _draw(labels, monitor.knn_train, seed, exclude=queries)
    return MonitorSplit(SourceImages(bank_source, bank.tolist(), transform),
                        SourceImages(query_source, queries.tolist(), transform))


def knn_monitor(backbone: nn.Module, split: MonitorSplit, k: int, device: torch.device) -> float:
    """kNN-`k` top-1 (%) of the queries against the bank, on `backbone`'s features (train mode kept)."""
    bank_f, bank_y = extract_features(backbone, split.bank, device=device, progress=False)
    query_f, query_y = extract_features(backbone, split.queries, device=device, progress=False)
    return knn_evaluate(bank_f, bank_y, query_f, query_y, ks=(k,)).metrics[f"knn{k}_top1"]
