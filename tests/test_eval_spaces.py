"""What a feature space holds: the kNN of a projection head's output and the effective rank."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import seedzoo
from seedzoo.evaluation import HeadOutput, effective_rank, extract_features, knn_evaluate
from seedzoo.models import mocov2_head

pytestmark = pytest.mark.usefixtures("single_thread")


def with_singular_values(values: list[float], n: int = 64, d: int = 16) -> torch.Tensor:
    """An n x d matrix whose singular values are `values` (orthonormal factors from a seeded QR)."""
    gen = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(n, len(values), generator=gen, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(d, len(values), generator=gen, dtype=torch.float64))
    return u @ torch.diag(torch.tensor(values, dtype=torch.float64)) @ v.T


@pytest.mark.parametrize("rank", [1, 3, 16])
def test_effective_rank_of_equal_singular_values_is_their_number(rank):
    x = with_singular_values([2.5] * rank)
    assert effective_rank(x, l2_normalize=False) == pytest.approx(rank, rel=1e-9)


def test_effective_rank_is_exp_of_the_entropy_of_normalised_singular_values():
    values = [4.0, 2.0, 1.0, 1.0]
    p = torch.tensor(values, dtype=torch.float64) / sum(values)
    expected = math.exp(-float((p * p.log()).sum()))
    assert effective_rank(with_singular_values(values), l2_normalize=False) == pytest.approx(expected, rel=1e-9)
    assert 1 < expected < len(values)


def test_effective_rank_ignores_scale_and_normalises_rows_by_default():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(200, 8, generator=gen)
    assert effective_rank(7.0 * x, l2_normalize=False) == pytest.approx(effective_rank(x, l2_normalize=False))
    # one huge row dominates the raw matrix, not the L2-normalised one
    spiked = torch.cat([x, 1e4 * torch.randn(1, 8, generator=gen)])
    assert effective_rank(spiked, l2_normalize=False) < 1.1
    assert effective_rank(spiked) > 7.0  # isotropic directions: close to the width 8


def test_effective_rank_of_collapsed_features_is_one():
    crowded = torch.randn(1, 32).repeat(100, 1) + 1e-9 * torch.randn(100, 32)
    assert effective_rank(crowded) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("bad", [torch.zeros(0, 4), torch.zeros(3), torch.zeros(5, 4)])
def test_effective_rank_refuses_what_has_none(bad):
    with pytest.raises(ValueError):
        effective_rank(bad, l2_normalize=False)


def test_head_output_features_are_the_head_applied_to_the_representation():
    torch.manual_seed(0)
    backbone = seedzoo.create_model("seed_resnet18", num_classes=0)
    head = mocov2_head(512)
    data = TensorDataset(torch.randn(6, 3, 32, 32), torch.arange(6) % 2)
    kw = dict(batch_size=4, device="cpu", progress=False)
    projected, labels = extract_features(HeadOutput(backbone, head), data, **kw)
    features, _ = extract_features(backbone, data, **kw)
    with torch.no_grad():
        assert projected.shape == (6, 128)
        assert torch.allclose(projected, head(features), atol=1e-5)


def test_knn_of_head_output_sees_what_the_head_keeps():
    # a backbone whose features hold the class in dimension 0; a head that keeps it, and one that drops it
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(200) % 2
    x = torch.randn(200, 4, generator=gen)
    x[:, 0] = 4.0 * labels - 2.0
    backbone = nn.Identity()
    keep, drop = nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        keep.weight.copy_(torch.eye(4))
        drop.weight.copy_(torch.diag(torch.tensor([0.0, 1.0, 1.0, 1.0])))
    for head, expected in ((keep, 100.0), (drop, None)):
        f, y = extract_features(HeadOutput(backbone, head), TensorDataset(x, labels), device="cpu", progress=False)
        top1 = knn_evaluate(f[:100], y[:100], f[100:], y[100:], ks=(20,)).metrics["knn20_top1"]
        if expected is not None:
            assert top1 == expected
        else:
            assert top1 < 75.0  # the class is gone from the head's space
