"""Feature extraction: pre-logits features, on-disk cache keyed by model and dataset."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

import seedzoo
from seedzoo.evaluation.features import extract_features, state_dict_sha256


def images(n: int = 6) -> TensorDataset:
    gen = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(n, 3, 32, 32, generator=gen), torch.arange(n) % 3)


def test_mobilenetv3_features_are_the_1280d_representation():
    model = seedzoo.create_model("seed_mobilenetv3_large")
    features, labels = extract_features(model, images(), batch_size=4, device="cpu", progress=False)
    assert features.shape == (6, 1280) and torch.equal(labels, torch.arange(6) % 3)


def test_feature_cache_is_reused_and_keyed_by_weights(tmp_path):
    torch.manual_seed(0)
    model = seedzoo.create_model("seed_resnet18")
    calls = []
    model.conv1.register_forward_hook(lambda *_: calls.append(1))
    kw = dict(batch_size=4, device="cpu", cache_dir=tmp_path, dataset_id="toy|train", progress=False)
    first, _ = extract_features(model, images(), **kw)
    assert len(calls) == 2 and len(list(tmp_path.glob("features-*.safetensors"))) == 1
    again, _ = extract_features(model, images(), **kw)
    assert len(calls) == 2 and torch.equal(first, again)  # served from the cache, no forward pass
    sha = state_dict_sha256(model)
    with torch.no_grad():
        model.conv1.weight.add_(1.0)
    assert state_dict_sha256(model) != sha
    changed, _ = extract_features(model, images(), **kw)
    assert len(calls) == 4 and not torch.equal(first, changed)
    assert len(list(tmp_path.glob("features-*.safetensors"))) == 2


def test_cache_without_dataset_identity_is_refused(tmp_path):
    with pytest.raises(ValueError, match="dataset_id"):
        extract_features(torch.nn.Flatten(), images(), cache_dir=tmp_path, device="cpu", progress=False)
