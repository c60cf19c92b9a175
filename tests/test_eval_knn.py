"""kNN: identical predictions to a brute-force reference for any number of test points."""
from __future__ import annotations

import json

import pytest
import torch

from seedzoo.evaluation.knn import knn_classify, knn_evaluate


def brute_force_knn(train, train_labels, test, k, temperature, num_classes):
    """One test point at a time: sort all cosine similarities, vote with exp(sim / T)."""
    train = train / train.norm(dim=1, keepdim=True)
    test = test / test.norm(dim=1, keepdim=True)
    predictions = []
    for x in test:
        sims = (train * x).sum(dim=1)
        order = sorted(range(len(sims)), key=lambda i: -float(sims[i]))[:k]
        votes = [0.0] * num_classes
        for i in order:
            votes[int(train_labels[i])] += float(torch.exp(sims[i] / temperature))
        predictions.append(max(range(num_classes), key=lambda c: votes[c]))
    return torch.tensor(predictions)


@pytest.mark.parametrize("num_test", [1, 99, 100, 1000])
def test_knn_matches_brute_force_for_any_test_size(num_test):
    gen = torch.Generator().manual_seed(num_test)
    train = torch.randn(300, 16, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 7, (300,), generator=gen)
    test = torch.randn(num_test, 16, generator=gen, dtype=torch.float64)
    # small chunks so the largest case crosses many chunk borders, including a ragged last one
    predictions = knn_classify(train, labels, test, k=20, temperature=0.07, num_classes=7, chunk_size=64)
    assert predictions.shape == (num_test,)
    assert torch.equal(predictions, brute_force_knn(train, labels, test, 20, 0.07, 7))


def test_knn_k_larger_than_train_set_is_capped_with_a_warning():
    train = torch.randn(5, 4)
    labels = torch.tensor([0, 1, 1, 2, 2])
    test = torch.randn(3, 4)
    with pytest.warns(UserWarning, match="k=200 exceeds the 5 training points"):
        capped = knn_classify(train, labels, test, k=200, num_classes=3)
    assert torch.equal(capped, knn_classify(train, labels, test, k=5, num_classes=3))


def test_knn_scores_weight_neighbours_by_exp_similarity():
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1])
    test = torch.tensor([[1.0, 0.0]])
    _, scores = knn_classify(train, labels, test, k=2, temperature=0.5, return_scores=True)
    assert torch.allclose(scores, torch.tensor([[torch.exp(torch.tensor(2.0)), 1.0]]))


def test_knn_evaluate_records_protocol_settings_and_cap_note():
    gen = torch.Generator().manual_seed(0)
    centers = torch.randn(3, 8, generator=gen) * 5
    train_labels = torch.arange(60) % 3
    test_labels = torch.arange(30) % 3
    train = centers[train_labels] + torch.randn(60, 8, generator=gen)
    test = centers[test_labels] + torch.randn(30, 8, generator=gen)
    result = knn_evaluate(train, train_labels, test, test_labels, ks=(20, 200), model="m", dataset="toy")
    data = json.loads(result.to_json())
    assert data["protocol"] == "knn"
    assert data["settings"]["temperature"] == 0.07 and data["settings"]["ks"] == [20, 200]
    assert data["metrics"]["knn20_top1"] == 100.0
    assert any("k=200 capped" in note for note in data["notes"])
