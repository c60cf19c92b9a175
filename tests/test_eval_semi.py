"""Semi-supervised label subsets: deterministic, class-balanced, disjoint from held-out data; SimCLR
subset files matched against an image folder."""
from __future__ import annotations

import pytest
import torch
from PIL import Image
from torchvision.datasets import ImageFolder

from seedzoo.evaluation.semi import class_balanced_subset, read_subset_file, subset_from_file


def imbalanced_labels() -> torch.Tensor:
    gen = torch.Generator().manual_seed(3)
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate([500, 300, 200, 1000])])
    return labels[torch.randperm(len(labels), generator=gen)]


@pytest.mark.parametrize("fraction", [0.01, 0.1])
def test_subset_is_deterministic_and_class_balanced(fraction):
    labels = imbalanced_labels()
    first = class_balanced_subset(labels, fraction, seed=7)
    assert torch.equal(first, class_balanced_subset(labels, fraction, seed=7))
    assert not torch.equal(first, class_balanced_subset(labels, fraction, seed=8))
    assert len(set(first.tolist())) == len(first)
    counts = torch.bincount(labels[first], minlength=4)
    expected = torch.tensor([max(1, round(fraction * n)) for n in (500, 300, 200, 1000)])
    assert torch.equal(counts, expected)


def test_subset_never_draws_excluded_test_indices():
    labels = imbalanced_labels()
    test = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))[:400]
    subset = class_balanced_subset(labels, 0.1, seed=0, exclude=test.tolist())
    assert not set(subset.tolist()) & set(test.tolist())
    assert torch.bincount(labels[subset], minlength=4).min() > 0


def test_fraction_outside_unit_interval_is_rejected():
    with pytest.raises(ValueError, match="fraction"):
        class_balanced_subset(torch.zeros(10, dtype=torch.long), 0.0)


def test_simclr_subset_file_selects_listed_images(tmp_path):
    root = tmp_path / "train"
    names = {"n01": ["n01_1.JPEG", "n01_2.JPEG", "n01_3.JPEG"], "n02": ["n02_1.JPEG", "n02_2.JPEG"]}
    for cls, files in names.items():
        (root / cls).mkdir(parents=True)
        for f in files:
            Image.new("RGB", (4, 4)).save(root / cls / f, format="JPEG")
    listing = tmp_path / "1percent.txt"
    listing.write_text("n01_2.JPEG\nn02_1.JPEG\n\n")
    assert read_subset_file(listing) == ["n01_2.JPEG", "n02_1.JPEG"]
    dataset = ImageFolder(str(root))
    indices = subset_from_file(dataset, listing)
    assert sorted(dataset.samples[i][0].rsplit("/", 1)[-1] for i in indices) == ["n01_2.JPEG", "n02_1.JPEG"]
    listing.write_text("n01_2.JPEG\nn09_9.JPEG\n")
    with pytest.raises(FileNotFoundError, match="1 of the 2 images"):
        subset_from_file(dataset, listing)
