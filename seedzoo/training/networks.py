"""Building the networks a run trains or distils from: a backbone plus its projection head.

Backbones come from `seedzoo.create_model` (any timm architecture; it also reads official checkpoints and
seedzoo folders); heads are `seedzoo.models.heads.ProjectionHead`.
"""
from __future__ import annotations

from typing import TypeVar

import torch
from torch import Tensor, nn

from ..models.heads import ProjectionHead

ModuleT = TypeVar("ModuleT", bound=nn.Module)


class Encoder(nn.Module):
    """backbone -> projection head. Accepts one batch or a list of batches (e.g. crops of two sizes):
    one forward call for all of them, as DDP needs one forward per backward."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: Tensor | list[Tensor]) -> Tensor | list[Tensor]:
        if isinstance(x, (list, tuple)):
            return [self.head(self.backbone(xi)) for xi in x]
        return self.head(self.backbone(x))


def backbone_width(model: nn.Module) -> int:
    """The width of the pooled representation (`num_classes=0` output)."""
    width = getattr(model, "head_hidden_size", None) or getattr(model, "num_features", None)
    if not width:
        raise ValueError(f"{type(model).__name__} exposes neither head_hidden_size nor num_features: pass "
                         "a timm-style backbone built with num_classes=0")
    return int(width)


def create_backbone(arch: str, pretrained: str = "") -> nn.Module:
    """A classifier-free backbone (`num_classes=0`); `pretrained` is "", "zoo" (the entry's published
    weights), or a path (seedzoo folder, .safetensors, official checkpoint).

    A network built from scratch initialises as torchvision's: seedzoo's architectures do so themselves,
    and timm's residual families (which zero the last norm of each residual branch by default, the
    `zero_init_last` option of ResNet, ResNetV2, RegNet, CSPNet, ByobNet) are built with it off.
    """
    from ..factory import create_model

    if pretrained:
        return create_model(arch, pretrained=True if pretrained == "zoo" else pretrained, num_classes=0)
    model = create_model(arch, num_classes=0)
    if _zero_inits_residuals(model):
        model = create_model(arch, num_classes=0, zero_init_last=False)
    return model


def _zero_inits_residuals(model: nn.Module) -> bool:
    """A timm network whose blocks implement `zero_init_last`, other than seedzoo's (already off)."""
    from ..models import list_architectures

    architecture = (getattr(model, "pretrained_cfg", None) or {}).get("architecture")
    return architecture not in list_architectures() and any(
        callable(getattr(m, "zero_init_last", None)) for m in model.modules())


def build_student(arch: str, pretrained: str = "", head_hidden: int = 0, embed_dim: int = 128,
                  backbone: nn.Module | None = None) -> Encoder:
    """SEED's student: backbone + Linear(d, d) - ReLU - Linear(d, 128) (no batch norm)."""
    backbone = backbone if backbone is not None else create_backbone(arch, pretrained)
    width = backbone_width(backbone)
    return Encoder(backbone, ProjectionHead(width, head_hidden or width, embed_dim))


def build_teacher(arch: str, pretrained: str = "", head_hidden: int = 2048, head_batch_norm: bool = False,
                  embed_dim: int = 128, entry: str = "") -> Encoder:
    """The frozen teacher with its own SSL projection head (its output is the target space)."""
    name = entry if pretrained == "zoo" and entry else arch
    backbone = create_backbone(name, pretrained)
    if pretrained:  # the head that trained with these weights: from the entry, a seedzoo folder or an official file
        from ..factory import load_projection_head

        head: nn.Module = load_projection_head(name, pretrained=True if pretrained == "zoo" else pretrained)
    else:
        head = ProjectionHead(backbone_width(backbone), head_hidden, embed_dim, head_batch_norm)
    return freeze(Encoder(backbone, head))


def freeze(model: ModuleT) -> ModuleT:
    """Eval mode (BN statistics frozen) and no gradients: how a teacher is held."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DDP / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            return model
        model = inner


@torch.no_grad()
def momentum_update(target: nn.Module, source: nn.Module, momentum: float) -> None:
    """target <- m * target + (1 - m) * source, parameters only (buffers are the target's own)."""
    for t, s in zip(target.parameters(), source.parameters()):
        t.mul_(momentum).add_(s.detach(), alpha=1 - momentum)
