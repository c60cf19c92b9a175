"""Projection heads of SEED students and of the self-supervised teachers they learn from.

Every official release stores its head as a plain `nn.Sequential`, so the module indices are the key names:
`0`, `2` without batch norm, `0`, `1`, `3` with it, `0` alone for MoCo-v1's single linear layer.
"""
from __future__ import annotations

from torch import nn

from ..zoo.schema import HeadSpec

__all__ = ["ProjectionHead", "seed_student_head", "mocov1_head", "mocov2_head", "swav_head", "simclr_head"]


class ProjectionHead(nn.Sequential):
    """Linear(in, hidden) [BatchNorm1d(hidden)] ReLU Linear(hidden, out); `hidden_dim=0`: Linear(in, out)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int = 128, batch_norm: bool = False) -> None:
        if hidden_dim == 0:
            if batch_norm:
                raise ValueError("a linear projection head (hidden_dim=0) has no batch norm: pass batch_norm=False")
            layers: list[nn.Module] = [nn.Linear(in_dim, out_dim)]
        else:
            layers = [nn.Linear(in_dim, hidden_dim)]
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers += [nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)]
        super().__init__(*layers)
        self.in_dim, self.hidden_dim, self.out_dim, self.batch_norm = in_dim, hidden_dim, out_dim, batch_norm

    @classmethod
    def from_spec(cls, spec: HeadSpec) -> ProjectionHead:
        return cls(spec.in_dim, spec.hidden_dim, spec.out_dim, spec.batch_norm)

    @property
    def spec(self) -> HeadSpec:
        return HeadSpec(self.in_dim, self.hidden_dim, self.out_dim, self.batch_norm)


def seed_student_head(dim: int) -> ProjectionHead:
    """SEED's student head: d-d-128 without batch norm (d = 512 for ResNet-18/34, 2048 for ResNet-50,
    1280 for EfficientNet-B0/B1 and MobileNetV3-Large)."""
    return ProjectionHead(dim, dim, 128)


def mocov1_head(dim: int = 2048) -> ProjectionHead:
    """MoCo-v1: a single Linear(d, 128) (key `0`)."""
    return ProjectionHead(dim, 0, 128)


def mocov2_head(dim: int = 2048) -> ProjectionHead:
    """MoCo-v2: d-d-128 MLP without batch norm."""
    return ProjectionHead(dim, dim, 128)


def swav_head(in_dim: int, hidden_dim: int, batch_norm: bool = True) -> ProjectionHead:
    """SwAV: in-hidden-128 with batch norm (ResNet-50: 2048-2048, x2: 4096-8192, x4: 8192-8192);
    the x5 release has none (10240-10240, `batch_norm=False`)."""
    return ProjectionHead(in_dim, hidden_dim, 128, batch_norm)


def simclr_head(dim: int = 2048) -> ProjectionHead:
    """SimCLR (SEED's own ResNet-50 teacher): d-d-128 with batch norm."""
    return ProjectionHead(dim, dim, 128, batch_norm=True)
