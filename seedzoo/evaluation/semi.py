"""Semi-supervised evaluation: fine-tuning on 1% / 10% of the labels. (A linear probe on a fraction of the
labels, as DisCo reports, is the linear protocol with `fraction=`: it reuses the cached features.)

Subsets are either read from SimCLR's ImageNet lists (`1percent.txt`, `10percent.txt`: one file name
per line, e.g. `n01440764_10026.JPEG`) or drawn class-balanced from a seed. Draws come from the train
split only (minus any `exclude`d indices), so they never touch the test images, and the same labels,
fraction and seed always give the same subset.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from .datasets import dataset_labels
from .finetune import FinetuneConfig, finetune
from .results import EvalResult, few_labels_note

SIMCLR_SUBSETS = {0.01: "1percent.txt", 0.1: "10percent.txt"}


def class_balanced_subset(labels: torch.Tensor, fraction: float, seed: int = 0,
                          exclude: Iterable[int] = ()) -> torch.Tensor:
    """Sorted indices holding round(fraction x class size) samples of every class (at least one).

    Each class is drawn with its own generator seeded from (seed, class), so a class's draw does not
    depend on which other classes exist. `exclude` removes indices from the pool (a held-out split).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    labels = torch.as_tensor(labels, dtype=torch.long)
    allowed = torch.ones(len(labels), dtype=torch.bool)
    excluded = torch.as_tensor(list(exclude), dtype=torch.long)
    if excluded.numel():
        allowed[excluded] = False
    chosen = []
    for cls in torch.unique(labels).tolist():
        pool = torch.nonzero((labels == cls) & allowed).flatten()
        total = int((labels == cls).sum())
        if pool.numel() == 0:
            continue
        n = min(pool.numel(), max(1, round(fraction * total)))
        gen = torch.Generator().manual_seed(seed * 1_000_003 + cls)
        chosen.append(pool[torch.randperm(pool.numel(), generator=gen)[:n]])
    return torch.sort(torch.cat(chosen)).values if chosen else torch.empty(0, dtype=torch.long)


def read_subset_file(path: str | Path) -> list[str]:
    """The file names listed in a SimCLR subset file (`1percent.txt` / `10percent.txt`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"subset file {path} not found: SimCLR's lists are "
                                "imagenet_subsets/1percent.txt and 10percent.txt of google-research/simclr")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def subset_from_file(dataset: Dataset, path: str | Path) -> torch.Tensor:
    """Indices of an ImageFolder-style dataset (`.samples` of (path, label)) whose file names are listed
    in `path`. Every listed name must be found: a partial ImageNet copy would silently change the
    protocol."""
    samples = getattr(dataset, "samples", None)
    if samples is None:
        raise TypeError(f"{type(dataset).__name__} has no `.samples`: subset files need an ImageFolder dataset")
    wanted = read_subset_file(path)
    position = {os.path.basename(p): i for i, (p, _) in enumerate(samples)}
    missing = [name for name in wanted if name not in position]
    if missing:
        raise FileNotFoundError(f"{len(missing)} of the {len(wanted)} images listed in {path} are not in the "
                                f"dataset (first: {missing[0]}): the train folder must hold all of them")
    return torch.tensor(sorted(position[name] for name in wanted), dtype=torch.long)


def semi_supervised(backbone: nn.Module, train_dataset: Dataset, test_dataset: Dataset, num_classes: int,
                    fraction: float = 0.01, seed: int = 0, subset_file: str | Path | None = None,
                    config: FinetuneConfig | None = None,
                    device: torch.device | str | None = None, num_workers: int = 0, model: str = "",
                    dataset: str = "", progress: bool = True) -> EvalResult:
    """Fine-tune on a labelled subset of `train_dataset`, test on all of `test_dataset`. The subset comes
    from `subset_file` when given, else from a class-balanced draw."""
    if subset_file is not None:
        indices, source = subset_from_file(train_dataset, subset_file), f"file {Path(subset_file).name}"
    else:
        indices = class_balanced_subset(dataset_labels(train_dataset), fraction, seed)
        source = f"class-balanced draw, seed {seed}"
    subset = Subset(train_dataset, indices.tolist())
    result, _ = finetune(backbone, subset, test_dataset, num_classes, config, device, num_workers, model, dataset,
                         protocol="semi_finetune", progress=progress)
    result.settings.update({"label_fraction": fraction, "subset": source, "num_labelled": len(indices)})
    thin = few_labels_note(dataset_labels(train_dataset)[indices], num_classes, "the labelled subset")
    result.notes += [thin] if thin else []
    return result
