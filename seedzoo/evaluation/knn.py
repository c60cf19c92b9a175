"""Weighted k-nearest-neighbour classification on L2-normalised features (the kNN monitor of
Wu et al. 2018, as used by InstDisc, MoCo and DINO).

Each test point votes with its k most cosine-similar training points, each weighted exp(sim / T).
Test points are processed in chunks of at most `chunk_size`, so any number of them works, one
included (DINO's loop over `num_test // num_chunks` chunks skips everything below 100 points).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .results import EvalResult, accuracy

DEFAULT_KS = (20, 200)
DEFAULT_TEMPERATURE = 0.07


def _cap_k(k: int, num_train: int) -> int:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if k > num_train:
        warnings.warn(f"kNN: k={k} exceeds the {num_train} training points; using k={num_train}",
                      stacklevel=3)
        return num_train
    return k


@torch.no_grad()
def knn_scores(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
               k: int = 20, temperature: float = DEFAULT_TEMPERATURE, num_classes: int | None = None,
               chunk_size: int = 256) -> torch.Tensor:
    """Class scores (num_test x num_classes): the sum of exp(sim / T) over the k nearest neighbours
    of each class. Features need not be normalised; k is capped at the train size with a warning."""
    if train_features.ndim != 2 or test_features.ndim != 2:
        raise ValueError("features must be 2-d (N x D)")
    if train_features.shape[0] != train_labels.shape[0]:
        raise ValueError(f"{train_features.shape[0]} train features but {train_labels.shape[0]} labels")
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(f"feature widths differ: train {train_features.shape[1]}, test {test_features.shape[1]}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    if not temperature > 0:  # 0 divides by zero, a negative one ranks the farthest neighbours first
        raise ValueError(f"the kNN temperature must be positive, got {temperature}")
    k = _cap_k(k, train_features.shape[0])
    train_labels = train_labels.long().to(train_features.device)
    num_classes = int(num_classes if num_classes is not None else train_labels.max() + 1)
    train = F.normalize(train_features.float(), dim=1)
    test = F.normalize(test_features.float().to(train.device), dim=1)
    scores = torch.zeros(test.shape[0], num_classes, device=train.device)
    for start in range(0, test.shape[0], chunk_size):
        sim = test[start:start + chunk_size] @ train.T
        top_sim, top_idx = sim.topk(k, dim=1)
        weights = (top_sim / temperature).exp()
        scores[start:start + chunk_size].scatter_add_(1, train_labels[top_idx], weights)
    return scores


def knn_classify(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                 k: int = 20, temperature: float = DEFAULT_TEMPERATURE, num_classes: int | None = None,
                 chunk_size: int = 256, return_scores: bool = False):
    """Predicted labels of the test points (and, with `return_scores`, the class scores too)."""
    scores = knn_scores(train_features, train_labels, test_features, k, temperature, num_classes, chunk_size)
    predictions = scores.argmax(dim=1)
    return (predictions, scores) if return_scores else predictions


def knn_evaluate(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                 test_labels: torch.Tensor, ks: Sequence[int] = DEFAULT_KS,
                 temperature: float = DEFAULT_TEMPERATURE, num_classes: int | None = None,
                 chunk_size: int = 256, model: str = "", dataset: str = "") -> EvalResult:
    """The kNN protocol: top-1 (and top-5 when there are more than 5 classes) for each k."""
    num_train = train_features.shape[0]
    num_classes = int(num_classes if num_classes is not None
                      else max(int(train_labels.max()), int(test_labels.max())) + 1)
    metrics: dict[str, float] = {}
    notes: list[str] = []
    test_labels = test_labels.long()
    for k in ks:
        used = min(k, num_train)
        if used != k:
            notes.append(f"k={k} capped at the train size: {used} neighbours vote")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the cap is recorded in the notes instead
            scores = knn_scores(train_features, train_labels, test_features, used, temperature,
                                num_classes, chunk_size)
        labels = test_labels.to(scores.device)
        metrics[f"knn{k}_top1"] = accuracy(scores.argmax(1), labels)
        if num_classes > 5:
            top5 = scores.topk(5, dim=1).indices
            metrics[f"knn{k}_top5"] = float((top5 == labels[:, None]).any(1).float().mean() * 100)
    settings = {"ks": list(ks), "temperature": temperature, "similarity": "cosine (L2-normalised)",
                "vote": "sum of exp(sim / T)", "num_train": num_train,
                "num_test": int(test_features.shape[0]), "num_classes": num_classes}
    return EvalResult("knn", model, dataset, metrics, settings, notes)
