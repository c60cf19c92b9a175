"""scikit-learn's digits: real images shipped in a PyPI package, used as data no seedzoo model has seen."""
from __future__ import annotations

import pytest
import torch

from seedzoo.evaluation.datasets import build_dataset, num_classes_of
from seedzoo.evaluation.runner import run_evaluation

pytest.importorskip("sklearn")


def test_digits_split_is_fixed_and_disjoint():
    train, test = build_dataset("digits", "train"), build_dataset("digits", "test")
    assert (len(train), len(test)) == (1000, 797) and num_classes_of(test) == 10
    assert not any(torch.equal(train.images[i], test.images[0]) for i in range(len(train)))
    image, label = train[0]
    assert image.size == (8, 8) and image.mode == "RGB" and label == 0


def test_linear_fast_with_a_label_fraction_uses_a_class_balanced_subset():
    torch.manual_seed(0)
    import timm

    model = timm.create_model("resnet18", num_classes=0, pretrained=False)
    r = run_evaluation("resnet18", "linear_fast:fraction=0.1,epochs=2,input_size=32", "digits", model=model,
                       progress=False)
    assert r.protocol == "linear_fast:epochs=2,fraction=0.1,input_size=32"
    assert r.settings["num_train"] == 100  # 10% of each class of the 1,000 training digits
