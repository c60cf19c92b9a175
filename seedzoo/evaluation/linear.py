"""SEED's linear evaluation protocol, and a fast variant on cached features.

`linear_probe` is the paper's protocol: the backbone frozen in eval mode (BN statistics frozen), a
linear classifier initialised N(0, 0.01) trained with SGD (lr 30 x B/256, momentum 0.9, wd 0, batch
256, 100 epochs, x0.1 at epochs 60 and 80, 5 warm-up epochs) on RandomResizedCrop 224 + flip views,
evaluated on Resize 256 + CenterCrop 224.

`linear_probe_features` runs the same optimiser recipe on features computed once (eval transform, no
augmentation). It is much cheaper, and its numbers are *not* those of `linear_probe`: without random
crops the classifier sees one fixed view per image, which usually costs some accuracy on ImageNet-scale
data and can overfit small training sets. Results record which variant produced them.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .datasets import num_samples
from .features import default_device, extract_features, representation
from .results import EvalResult, accuracy
from .schedule import lr_at, set_lr


@dataclass
class LinearProbeConfig:
    """SEED's linear protocol; the learning rate is `base_lr * batch_size / 256`."""

    epochs: int = 100
    batch_size: int = 256
    base_lr: float = 30.0
    momentum: float = 0.9
    weight_decay: float = 0.0
    milestones: tuple[int, ...] = (60, 80)
    gamma: float = 0.1
    warmup_epochs: float = 5.0
    init_std: float = 0.01
    seed: int = 0
    # Standardise features with the training set's mean/std first (a BatchNorm without affine, as in
    # MAE's linear probe). Off in SEED's protocol, whose lr 30 assumes unnormalised ResNet features.
    standardize: bool = False

    @property
    def lr(self) -> float:
        return self.base_lr * self.batch_size / 256

    def settings(self) -> dict:
        return {**asdict(self), "lr": self.lr}

    def with_epochs(self, epochs: int) -> LinearProbeConfig:
        """The same schedule stretched to `epochs`: warm-up and milestones keep their share of the run
        (5%, 60%, 80% of SEED's 100 epochs), so a shortened probe still warms up and decays."""
        share = epochs / self.epochs
        return replace(self, epochs=epochs, warmup_epochs=self.warmup_epochs * share,
                       milestones=tuple(max(1, round(m * share)) for m in self.milestones))


def new_linear_head(in_features: int, num_classes: int, init_std: float = 0.01) -> nn.Linear:
    head = nn.Linear(in_features, num_classes)
    nn.init.normal_(head.weight, std=init_std)
    nn.init.zeros_(head.bias)
    return head


def train_head(head: nn.Module, batches: Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]],
               steps_per_epoch: int, config: LinearProbeConfig, device: torch.device,
               progress: bool = False, desc: str = "linear probe") -> list[float]:
    """Train `head` with the probe's recipe; `batches(epoch)` yields (features, labels). Returns the
    mean loss of each epoch. `progress` shows one bar over all steps (elapsed, ETA, epoch and loss)."""
    bar = tqdm(total=config.epochs * steps_per_epoch, desc=desc, unit="step", disable=not progress, leave=False)
    optimizer = torch.optim.SGD(head.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    head.train()
    losses = []
    for epoch in range(config.epochs):
        total, count = 0.0, 0
        for step, (features, labels) in enumerate(batches(epoch)):
            epochs_done = epoch + (step + 1) / steps_per_epoch
            set_lr(optimizer, lr_at(epochs_done, config.lr, config.epochs, config.warmup_epochs,
                                    config.milestones, config.gamma))
            loss = F.cross_entropy(head(features.to(device)), labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * len(labels), count + len(labels)
            bar.update()
        losses.append(total / max(count, 1))
        bar.set_postfix_str(f"epoch {epoch + 1}/{config.epochs}, loss {losses[-1]:.3f}", refresh=False)
    bar.close()
    return losses


@torch.no_grad()
def evaluate_head(head: nn.Module, features: torch.Tensor, labels: torch.Tensor,
                  batch_size: int = 4096) -> dict[str, float]:
    head.eval()
    device = next(head.parameters()).device
    logits = torch.cat([head(features[i:i + batch_size].to(device)).cpu()
                        for i in range(0, len(features), batch_size)])
    metrics = {"top1": accuracy(logits.argmax(1), labels)}
    if logits.shape[1] > 5:
        metrics["top5"] = float((logits.topk(5, 1).indices == labels[:, None]).any(1).float().mean() * 100)
    return metrics


def _feature_batches(features: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int):
    def batches(epoch: int):
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed * 100003 + epoch))
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            yield features[idx], labels[idx]
    return batches


# The fast variant's recipe: features standardised, so SEED's lr 30 (meant for raw features, where it
# diverges once they are unit-variance) becomes 0.1; the rest of SEED's schedule is kept.
FAST_PROBE = LinearProbeConfig(base_lr=0.1, standardize=True)


def _standardize(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = train.mean(0), train.std(0)
    std = torch.where(std > 0, std, torch.ones_like(std))  # constant dimensions stay zero
    return (train - mean) / std, (test - mean) / std


def linear_probe_features(train_features: torch.Tensor, train_labels: torch.Tensor,
                          test_features: torch.Tensor, test_labels: torch.Tensor,
                          config: LinearProbeConfig | None = None, num_classes: int | None = None,
                          device: torch.device | str | None = None, model: str = "",
                          dataset: str = "", progress: bool = False) -> EvalResult:
    """The fast variant: a linear head trained on precomputed features (no augmentation), by default
    with `FAST_PROBE` (standardised features, SGD lr 0.1, SEED's 100-epoch step schedule)."""
    config = config or FAST_PROBE
    if config.standardize:
        train_features, test_features = _standardize(train_features.float(), test_features.float())
    device = torch.device(device) if device is not None else default_device()
    num_classes = num_classes or int(max(train_labels.max(), test_labels.max())) + 1
    torch.manual_seed(config.seed)
    head = new_linear_head(train_features.shape[1], num_classes, config.init_std).to(device)
    steps = -(-len(train_labels) // config.batch_size)
    losses = train_head(head, _feature_batches(train_features, train_labels.long(), config.batch_size,
                                               config.seed), steps, config, device, progress,
                        desc="linear probe (cached features)")
    settings = {**config.settings(), "variant": "fast: cached features, eval transform, no augmentation",
                "num_train": len(train_labels), "num_test": len(test_labels), "num_classes": num_classes,
                "final_train_loss": losses[-1] if losses else None}
    return EvalResult("linear_fast", model, dataset, evaluate_head(head, test_features, test_labels.long()),
                      settings)


class _FrozenBackbone:
    """Freezes a backbone for the probe (eval mode, no grads) and restores its flags afterwards."""

    def __init__(self, backbone: nn.Module):
        self.backbone = backbone

    def __enter__(self) -> nn.Module:
        self.training = self.backbone.training
        self.requires_grad = [p.requires_grad for p in self.backbone.parameters()]
        self.backbone.eval().requires_grad_(False)
        return self.backbone

    def __exit__(self, *exc) -> None:
        for p, flag in zip(self.backbone.parameters(), self.requires_grad):
            p.requires_grad_(flag)
        self.backbone.train(self.training)


def linear_probe(backbone: nn.Module, train_dataset: Dataset, test_dataset: Dataset, num_classes: int,
                 config: LinearProbeConfig | None = None, device: torch.device | str | None = None,
                 num_workers: int = 0, model: str = "", dataset: str = "", progress: bool = True) -> EvalResult:
    """SEED's linear protocol. `train_dataset` should apply the training augmentation
    (RandomResizedCrop + flip) and `test_dataset` the eval transform; the backbone is never updated:
    not its weights, not its BN statistics."""
    config = config or LinearProbeConfig()
    device = torch.device(device) if device is not None else default_device()
    torch.manual_seed(config.seed)
    with _FrozenBackbone(backbone.to(device)) as frozen:
        probe_in = _probe_width(frozen, train_dataset, device)
        head = new_linear_head(probe_in, num_classes, config.init_std).to(device)

        def batches(epoch: int):
            loader = DataLoader(train_dataset, batch_size=config.batch_size, shuffle=True,
                                num_workers=num_workers,
                                generator=torch.Generator().manual_seed(config.seed * 100003 + epoch))
            for images, labels in loader:
                with torch.no_grad():
                    features = representation(frozen, images.to(device)).flatten(1)
                yield features, torch.as_tensor(labels)

        steps = -(-num_samples(train_dataset) // config.batch_size)
        losses = train_head(head, batches, steps, config, device, progress)
        test_features, test_labels = extract_features(frozen, test_dataset, config.batch_size, num_workers,
                                                      device, progress=progress, desc="test features")
    settings = {**config.settings(), "variant": "SEED: frozen backbone in eval mode, augmented training views",
                "num_train": num_samples(train_dataset), "num_test": num_samples(test_dataset),
                "num_classes": num_classes, "final_train_loss": losses[-1] if losses else None}
    return EvalResult("linear", model, dataset, evaluate_head(head, test_features, test_labels), settings)


@torch.no_grad()
def _probe_width(backbone: nn.Module, dataset: Dataset, device: torch.device) -> int:
    # Measured, not read from `num_features`: timm's MobileNetV3 reports 960 there, but its
    # pre-logits representation is the 1280-d output of the head conv.
    image, _ = dataset[0]
    return representation(backbone, image[None].to(device)).flatten(1).shape[1]
