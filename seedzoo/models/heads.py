"""Projection heads of SEED students and of the self-supervised teachers they learn from.

Every official release stores its head as a plain `nn.Sequential`, so the module indices are the key names:
`0`, `2` without batch norm, `0`, `1`, `3` with it, `0` alone for MoCo-v1's single linear layer.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from ..errors import SeedzooError
from ..zoo.schema import HeadSpec

__all__ = [
    "HeadStateError",
    "ProjectionHead",
    "head_shapes",
    "infer_head_spec",
    "mocov1_head",
    "mocov2_head",
    "seed_student_head",
    "simclr_head",
    "swav_head",
]


class HeadStateError(SeedzooError, ValueError):
    """Tensors that are not a projection head's state dict (`0.*`, `2.*` or `0.*`, `1.*`, `3.*`)."""


def _shape(v: Any) -> tuple[int, ...]:
    return tuple(v.shape) if hasattr(v, "shape") else tuple(v)


def infer_head_spec(state: Mapping[str, Any]) -> HeadSpec:
    """The HeadSpec a projection head state dict (ProjectionHead names; tensors or shapes) was built from."""
    try:
        if set(state) == {"0.weight", "0.bias"}:
            out, in_dim = _shape(state["0.weight"])
            return HeadSpec(in_dim, 0, out)
        hidden, in_dim = _shape(state["0.weight"])
        batch_norm = "1.weight" in state
        out, _ = _shape(state["3.weight" if batch_norm else "2.weight"])
    except (KeyError, ValueError):
        raise HeadStateError(f"not a projection head (keys {sorted(state)[:8]}): expected 0.*, 2.* "
                             f"or 0.*, 1.*, 3.* (with batch norm)") from None
    return HeadSpec(in_dim, hidden, out, batch_norm)


def head_shapes(spec: HeadSpec) -> dict[str, tuple[int, ...]]:
    """Every key of `spec`'s ProjectionHead with its shape, without building it."""
    if not spec.hidden_dim:
        return {"0.weight": (spec.out_dim, spec.in_dim), "0.bias": (spec.out_dim,)}
    last = 3 if spec.batch_norm else 2
    shapes = {"0.weight": (spec.hidden_dim, spec.in_dim), "0.bias": (spec.hidden_dim,),
              f"{last}.weight": (spec.out_dim, spec.hidden_dim), f"{last}.bias": (spec.out_dim,)}
    if spec.batch_norm:
        shapes.update({f"1.{k}": (spec.hidden_dim,) for k in ("weight", "bias", "running_mean", "running_var")})
        shapes["1.num_batches_tracked"] = ()
    return shapes


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

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any], spec: HeadSpec | None = None) -> ProjectionHead:
        """The head that `state` holds (its spec inferred unless given), loaded strictly, in eval mode."""
        head = cls.from_spec(spec or infer_head_spec(state))
        head.load_state_dict(dict(state), strict=True)
        return head.eval()

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
