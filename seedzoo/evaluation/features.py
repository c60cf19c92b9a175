"""Feature extraction: a backbone's representation of every image of a dataset.

The representation is timm's pre-logits output (`forward_head(forward_features(x), pre_logits=True)`),
which for seedzoo's architectures is the one SEED evaluates (e.g. MobileNetV3's 1280-d output after
`classifier`). Features can be cached on disk, keyed by the model's sha256 (of its state dict or of its
weights file) and the dataset's identity, so several protocols share one pass.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sized
from pathlib import Path
from typing import Any, cast

import torch
from safetensors.torch import load_file, save
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..files import write_atomic


def state_dict_sha256(model: nn.Module) -> str:
    """sha256 over every tensor of the state dict (names, dtypes, shapes and bytes, in key order)."""
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def representation(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The pooled pre-logits features of a timm-style model; plain modules are simply called."""
    if hasattr(model, "forward_features") and hasattr(model, "forward_head"):
        timm_model: Any = model  # timm's methods, which nn.Module does not declare
        return timm_model.forward_head(timm_model.forward_features(images), pre_logits=True)
    return model(images)


class HeadOutput(nn.Module):
    """`head` applied to `backbone`'s representation: the projection-head space an SSL loss works in (for a
    SEED teacher, the target space its students distil). Every protocol accepts it as a model, e.g.
    `run_evaluation(name, "knn", model=HeadOutput(backbone, head))` for the kNN of a teacher's head output."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(representation(self.backbone, images))


@torch.no_grad()
def effective_rank(features: torch.Tensor, l2_normalize: bool = True) -> float:
    """The effective rank of a feature space (Roy & Vetterli, 2007): exp of the Shannon entropy of the
    singular values of the N x D feature matrix, normalised to sum to 1.

    It lies between 1 (every feature on one line) and min(N, D) (all singular values equal), and counts
    how many directions the features really use. Rows are L2-normalised first by default (the cosine
    space kNN and the contrastive losses see); the matrix is not centred, as in Roy & Vetterli and RankMe
    (Garrido et al., 2023).
    """
    if features.ndim != 2 or min(features.shape) == 0:
        raise ValueError(f"features must be a non-empty N x D matrix, got shape {tuple(features.shape)}")
    x = features.double()
    if l2_normalize:
        x = torch.nn.functional.normalize(x, dim=1)
    singular = torch.linalg.svdvals(x)
    if not singular.sum() > 0:
        raise ValueError("features are all zero: the effective rank is undefined")
    p = singular / singular.sum()
    p = p[p > 0]  # 0 log 0 = 0
    return float(torch.exp(-(p * p.log()).sum()))


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _read_cache(path: Path, count: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """A cache entry's (features, labels), or None when there is none or it cannot be used (unreadable,
    or of another number of samples): the features are then computed again and the entry replaced."""
    if not path.is_file():
        return None
    try:
        cached = load_file(str(path))
        features, labels = cached["features"], cached["labels"]
    except Exception:  # safetensors raises its own error types for a damaged file
        return None
    if features.ndim != 2 or features.shape[0] != count or labels.shape != (count,):
        return None
    return features, labels


def cache_path(cache_dir: str | Path, model_id: str, dataset_id: str) -> Path:
    key = hashlib.sha256(f"{model_id}\n{dataset_id}".encode()).hexdigest()[:32]
    return Path(cache_dir) / f"features-{key}.safetensors"


@torch.inference_mode()
def _extract(model: nn.Module, dataset: Dataset, batch_size: int, num_workers: int, device: torch.device,
             progress: bool, desc: str) -> tuple[torch.Tensor, torch.Tensor]:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda")
    features, labels = [], []
    for images, targets in tqdm(loader, desc=desc, disable=not progress, leave=False):
        out = representation(model, images.to(device, non_blocking=True))
        features.append(out.float().flatten(1).cpu())
        labels.append(torch.as_tensor(targets, dtype=torch.long))
    if not features:
        raise ValueError("the dataset is empty: no features to extract")
    return torch.cat(features), torch.cat(labels)


def extract_features(model: nn.Module, dataset: Dataset, batch_size: int = 256, num_workers: int = 0,
                     device: torch.device | str | None = None, cache_dir: str | Path | None = None,
                     dataset_id: str | None = None, model_id: str | None = None,
                     progress: bool = True, desc: str = "features") -> tuple[torch.Tensor, torch.Tensor]:
    """(features N x D float32 on CPU, labels N) of `dataset` through `model` in eval mode.

    With `cache_dir`, results are stored and reused under a key of `model_id` (default: the state
    dict's sha256; pass the weights file's sha256 to skip hashing) and `dataset_id` (required: only
    the caller knows which samples and which transform the dataset stands for). `desc` labels the
    progress bar (a few words: the cache key is far too long for one).
    """
    device = torch.device(device) if device is not None else default_device()
    path = None
    if cache_dir is not None:
        if not dataset_id:
            raise ValueError("caching features needs dataset_id: a string naming the samples and the transform "
                             "(see seedzoo.evaluation.datasets.dataset_identity)")
        path = cache_path(cache_dir, model_id or state_dict_sha256(model), dataset_id)
        cached = _read_cache(path, len(cast(Sized, dataset)))
        if cached is not None:
            return cached
    was_training = model.training
    model.eval().to(device)
    try:
        features, labels = _extract(model, dataset, batch_size, num_workers, device, progress, desc)
    finally:
        model.train(was_training)
    if path is not None:
        write_atomic(path, save({"features": features.contiguous(), "labels": labels.contiguous()},
                                metadata={"model": model_id or "", "dataset": dataset_id or ""}))
    return features, labels
