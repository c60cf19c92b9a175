"""Raw pixels as a feature extractor: the reference row that needs no network and no training.

`RawPixels` flattens the very tensor a network receives (after its weights' preprocessing: resize, crop,
normalisation), optionally minus a mean image, so every protocol that takes a model (kNN, the linear
probes, transfer) measures the pixels exactly as it measures a network, with no code of its own:

    pixels = RawPixels.centred_on(train_set)  # the mean image of the kNN bank
    run_evaluation("seed_mbv3_large.fmnist_mocov2_r18", "knn", model=pixels)

Centring changes the kNN, whose cosine similarity is not invariant to a shift of the inputs; the fast
linear probe standardises every input dimension with the training set's statistics, so it sees the
same features either way, up to float rounding (which a long SGD run can carry into a small difference).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class RawPixels(nn.Module):
    """The input image flattened to a vector (C x H x W values), minus `mean` (an image of the input's
    shape) when one is given."""

    mean: torch.Tensor

    def __init__(self, mean: torch.Tensor | None = None) -> None:
        super().__init__()
        # A buffer in both cases: the state dict keys the feature cache, so it must tell the two apart.
        self.register_buffer("mean", torch.zeros(0) if mean is None else mean.detach().float().clone())

    @property
    def centred(self) -> bool:
        return self.mean.numel() > 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        flat = images.flatten(1).float()
        if not self.centred:
            return flat
        if self.mean.numel() != flat.shape[1]:
            raise ValueError(f"images of {flat.shape[1]} values, but the mean image has {self.mean.numel()}: "
                             "centre on a dataset with the same preprocessing")
        return flat - self.mean.flatten()

    @classmethod
    @torch.no_grad()
    def centred_on(cls, dataset: Dataset, batch_size: int = 1000, num_workers: int = 0) -> RawPixels:
        """Raw pixels minus the mean image of `dataset` (the training split: the kNN bank), computed in
        float64 so that 60,000 images sum without rounding drift."""
        total: torch.Tensor | None = None
        count = 0
        for images, _ in DataLoader(dataset, batch_size=batch_size, num_workers=num_workers):
            batch = images.double().sum(0)
            total = batch if total is None else total + batch
            count += len(images)
        if total is None:
            raise ValueError("the dataset is empty: there is no mean image to centre on")
        return cls(total / count)

    def extra_repr(self) -> str:
        return f"centred={self.centred}"
