"""Building the networks a run trains or distils from: a backbone plus its projection head.

Backbones come from `seedzoo.create_model` (any timm architecture; it also reads official checkpoints and
seedzoo folders); heads are `seedzoo.models.heads.ProjectionHead`. A teacher may also be any timm model
without an SSL head, from a plain timm or torchvision state dict: its pooled features are then the target
space (`teacher.target=features`).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from .config import TrainConfig

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


@torch.no_grad()
def embedding_width(model: nn.Module, image_size: int) -> int:
    """The width of what `model` outputs for one `image_size` image (eval mode, on its own device): the
    check of a teacher's target space against the students' heads before any work."""
    parameter = next(iter(model.parameters()), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        out = model(torch.zeros(1, 3, image_size, image_size, device=device))
    finally:
        model.train(was_training)
    return int(out.shape[-1])


def with_teacher_width(cfg: TrainConfig, width: int) -> TrainConfig:
    """`cfg` with `teacher.embed_dim` set to `width`, the output width of the teacher network a caller
    passes (the config then records what the run distils, and the methods check the students against it)."""
    return dataclasses.replace(cfg, teacher=dataclasses.replace(cfg.teacher, embed_dim=width))


def width_problem(cfg: TrainConfig, width: int) -> str | None:
    """A one-line problem when the teacher the config builds outputs `width`-d embeddings but the config
    says `teacher.embed_dim` (a pretrained head of another width, say)."""
    t = cfg.teacher
    if width == t.embed_dim:
        return None
    return (f"teacher.embed_dim={t.embed_dim}, but the teacher ({t.arch}, weights {t.pretrained or 'random init'}) "
            f"outputs {width}-d embeddings: set teacher.embed_dim={width} (and the students' widths to match)")


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


def is_seedzoo_name(name: str) -> bool:
    """A seedzoo architecture, zoo entry or alias (names whose weights seedzoo knows how to read)."""
    from ..models import list_architectures
    from ..zoo import UnknownModelError, get_entry

    if name in list_architectures():
        return True
    try:
        get_entry(name)
    except UnknownModelError:
        return False
    return True


def teacher_target(arch: str, target: str = "auto") -> Literal["head", "features"]:
    """`teacher.target` resolved: "auto" is "head" for seedzoo names, "features" for other timm names."""
    if target not in ("auto", "head", "features"):
        raise ValueError(f"teacher.target={target!r}: use auto, head or features")
    if target == "head":
        return "head"
    if target == "features":
        return "features"
    return "head" if is_seedzoo_name(arch) else "features"


def resolve_teacher(cfg: TrainConfig) -> TrainConfig:
    """`cfg` as the run trains it: `teacher.target` resolved and, for a features target, the students'
    head (`student.embed_dim`) and `teacher.embed_dim` set to the teacher's feature width."""
    from .methods import get_method

    if not get_method(cfg.method).needs_teacher:
        return cfg
    t = cfg.teacher
    target = teacher_target(t.arch, t.target)
    if target == "head":
        return dataclasses.replace(cfg, teacher=dataclasses.replace(t, target=target))
    from ..factory import create_model

    with torch.device("meta"):  # shapes only
        width = backbone_width(create_model(t.arch, num_classes=0))
    return dataclasses.replace(cfg, teacher=dataclasses.replace(t, target=target, embed_dim=width),
                               student=dataclasses.replace(cfg.student, embed_dim=width))


def load_plain_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """A timm or torchvision state dict (read with `weights_only=True`; `state_dict`/`model` containers
    and `module.` prefixes are unwrapped, EMA weights preferred as timm does) or a safetensors file, into
    the timm network `model` built with `num_classes=0`: its classifier's keys are dropped, every other
    key must match."""
    from timm.models import load_state_dict

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"teacher.pretrained: no file {file}")
    state = load_state_dict(str(file), use_ema=True, weights_only=True)
    own = model.state_dict()
    classifier = (getattr(model, "pretrained_cfg", None) or {}).get("classifier") or ()
    classifier = (classifier,) if isinstance(classifier, str) else tuple(classifier)
    unexpected = [k for k in state if k not in own and not k.startswith(tuple(f"{c}." for c in classifier))]
    missing = [k for k in own if k not in state]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        def some(keys: list[str]) -> str:
            return ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "")

        problems = [f"{len(keys)} {what} ({some(keys)})" for what, keys in
                    (("missing", missing), ("unexpected", unexpected), ("of another shape", wrong)) if keys]
        arch = (getattr(model, "pretrained_cfg", None) or {}).get("architecture", type(model).__name__)
        raise ValueError(f"{file} does not fit '{arch}': keys {'; '.join(problems)}. Pass a state dict of this "
                         "architecture under timm's names (torchvision's ResNets use the same names)")
    model.load_state_dict({k: state[k] for k in own})
    return model


def build_teacher(arch: str, pretrained: str = "", head_hidden: int = 2048, head_batch_norm: bool = False,
                  embed_dim: int = 128, entry: str = "", target: str = "head") -> Encoder:
    """The frozen teacher; its output is the target space.

    `target="head"`: the backbone with its own SSL projection head (the one that trained with the weights;
    a fresh one for a random teacher). `target="features"`: the backbone's pooled features (L2-normalised
    by the loss) of any timm model; `pretrained` is then also a plain timm or torchvision state dict or
    safetensors file (`load_plain_weights`) when `arch` is not a seedzoo name.
    """
    target = teacher_target(arch, target)
    name = entry if pretrained == "zoo" and entry else arch
    if pretrained and not is_seedzoo_name(name):
        if pretrained == "zoo":
            raise ValueError(f"teacher.pretrained=zoo needs a zoo entry; '{name}' is a timm architecture: pass "
                             "the path of its weights file")
        if target == "head":
            raise ValueError(f"'{arch}' is not a seedzoo architecture, so its weights carry no SSL projection head "
                             "seedzoo can read: set teacher.target=features to distil its pooled features")
        from ..factory import create_model

        backbone = load_plain_weights(create_model(arch, num_classes=0), pretrained)
    else:
        backbone = create_backbone(name, pretrained)
    if target == "features":
        return freeze(Encoder(backbone, nn.Identity()))
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
