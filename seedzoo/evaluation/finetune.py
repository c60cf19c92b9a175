"""End-to-end fine-tuning of a backbone with a new linear head.

The backbone trains in train mode (its BN statistics update) at `lr * backbone_lr_scale`, the new
head at `lr`. The defaults are a generic SGD recipe (cosine decay, 20 epochs), not one from the SEED
paper, which does not publish its fine-tuning schedule; every result records the settings it used.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .datasets import num_samples
from .features import default_device, extract_features, representation
from .linear import evaluate_head, new_linear_head
from .results import EvalResult
from .schedule import lr_at, set_lr


@dataclass
class FinetuneConfig:
    """Learning rates are `base_lr * batch_size / 256` (head) and that times `backbone_lr_scale`."""

    epochs: int = 20
    batch_size: int = 256
    base_lr: float = 0.01
    backbone_lr_scale: float = 1.0  # < 1 for a lower backbone lr; 0 trains the head only (BN still updates)
    momentum: float = 0.9
    weight_decay: float = 0.0
    warmup_epochs: float = 0.0
    cosine: bool = True
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    init_std: float = 0.01
    seed: int = 0

    @property
    def lr(self) -> float:
        return self.base_lr * self.batch_size / 256

    def settings(self) -> dict:
        return {**asdict(self), "lr": self.lr}


class Classifier(nn.Module):
    """A backbone's pre-logits representation followed by a linear head."""

    def __init__(self, backbone: nn.Module, head: nn.Linear):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(representation(self.backbone, x).flatten(1))

    def merged(self) -> nn.Module:
        """The backbone as one timm model whose classifier is the trained head (same outputs): what
        `seedzoo.save_model` writes and `create_model(..., num_classes=N)` builds again."""
        timm_model: Any = self.backbone  # timm's classifier interface, which nn.Module does not declare
        timm_model.reset_classifier(self.head.out_features)
        timm_model.get_classifier().load_state_dict(self.head.state_dict())
        return timm_model.to(self.head.weight.device)


def save_finetuned(classifier: Classifier, result: EvalResult, out_dir: str | Path) -> Path:
    """Write a fine-tuned classifier as a seedzoo model folder (backbone and classifier), recording how it
    was fine-tuned and the top-1 it reached; returns the folder."""
    from ..weights.publish import save_model

    block = {"fine_tuned": {"protocol": result.protocol, "dataset": result.dataset, "top1": result.top1,
                            "settings": result.to_dict()["settings"]}}
    return save_model(classifier.merged().eval(), out_dir, seedzoo=block)


@torch.no_grad()
def _width(backbone: nn.Module, dataset: Dataset, device: torch.device) -> int:
    was_training = backbone.training
    backbone.eval()
    image, _ = dataset[0]
    width = representation(backbone, image[None].to(device)).flatten(1).shape[1]
    backbone.train(was_training)
    return width


def finetune(backbone: nn.Module, train_dataset: Dataset, test_dataset: Dataset, num_classes: int,
             config: FinetuneConfig | None = None, device: torch.device | str | None = None,
             num_workers: int = 0, model: str = "", dataset: str = "", protocol: str = "finetune",
             progress: bool = True) -> tuple[EvalResult, Classifier]:
    """Fine-tune `backbone` (updated in place) with a new head; returns the result and the classifier."""
    config = config or FinetuneConfig()
    device = torch.device(device) if device is not None else default_device()
    torch.manual_seed(config.seed)
    backbone.to(device)
    head = new_linear_head(_width(backbone, train_dataset, device), num_classes, config.init_std)
    classifier = Classifier(backbone, head).to(device)
    groups = [{"params": list(head.parameters()), "lr_scale": 1.0}]
    if config.backbone_lr_scale > 0:
        groups.append({"params": [p for p in backbone.parameters() if p.requires_grad],
                       "lr_scale": config.backbone_lr_scale})
    else:
        backbone.requires_grad_(False)
    optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    steps = -(-num_samples(train_dataset) // config.batch_size)
    classifier.train()
    losses = []
    for epoch in range(config.epochs):
        loader = DataLoader(train_dataset, batch_size=config.batch_size, shuffle=True, num_workers=num_workers,
                            generator=torch.Generator().manual_seed(config.seed * 100003 + epoch))
        total, count = 0.0, 0
        for step, (images, labels) in enumerate(loader):
            set_lr(optimizer, lr_at(epoch + (step + 1) / steps, config.lr, config.epochs, config.warmup_epochs,
                                    config.milestones, config.gamma, config.cosine))
            labels = torch.as_tensor(labels).to(device)
            loss = F.cross_entropy(classifier(images.to(device)), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * len(labels), count + len(labels)
        losses.append(total / max(count, 1))
    features, labels = extract_features(backbone, test_dataset, config.batch_size, num_workers, device,
                                        progress=progress)
    settings = {**config.settings(), "num_train": num_samples(train_dataset), "num_test": num_samples(test_dataset),
                "num_classes": num_classes, "final_train_loss": losses[-1] if losses else None}
    return EvalResult(protocol, model, dataset, evaluate_head(head, features, labels), settings), classifier
