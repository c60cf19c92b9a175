"""Raw pixels as a model: every protocol measures them with its own code, and the kNN protocol on them is
the weighted vote written out in numpy on the same input tensors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from seedzoo.evaluation import RawPixels, run_evaluation
from seedzoo.evaluation.datasets import build_dataset
from seedzoo.evaluation.transforms import preprocessing_for

ENTRY = "seed_mbv3_large.fmnist_mocov2_r18"  # its preprocessing: 32 px, Fashion-MNIST's mean/std
LIMIT = 120  # images per split


def _inputs(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The tensors a network of ENTRY receives for the first LIMIT digits of `split`, and their labels."""
    data = build_dataset("digits", split, None, preprocessing_for(ENTRY).eval_transform(), LIMIT)
    images, labels = zip(*(data[i] for i in range(LIMIT)))
    return torch.stack(images).double().numpy(), np.array(labels)


def _numpy_knn_top1(train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray,
                    k: int, t: float = 0.07) -> float:
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    test = test / np.linalg.norm(test, axis=1, keepdims=True)
    sim = test @ train.T
    nearest = np.argsort(-sim, axis=1)[:, :k]
    votes = np.zeros((len(test), 10))
    for i, row in enumerate(nearest):
        np.add.at(votes[i], train_labels[row], np.exp(sim[i, row] / t))
    return float((votes.argmax(1) == test_labels).mean() * 100)


@pytest.mark.parametrize("centred", [False, True])
def test_the_knn_protocol_on_raw_pixels_is_the_vote_computed_in_numpy(centred, single_thread):
    (train, train_labels), (test, test_labels) = _inputs("train"), _inputs("test")
    train_flat, test_flat = train.reshape(LIMIT, -1), test.reshape(LIMIT, -1)
    pixels = RawPixels()
    if centred:
        bank = build_dataset("digits", "train", None, preprocessing_for(ENTRY).eval_transform(), LIMIT)
        pixels = RawPixels.centred_on(bank, batch_size=50)  # several batches: the mean is summed across them
        mean = train_flat.mean(0)
        np.testing.assert_allclose(pixels.mean.flatten().numpy(), mean, atol=1e-6)
        train_flat, test_flat = train_flat - mean, test_flat - mean
    result = run_evaluation(ENTRY, "knn", "digits", model=pixels, limit=LIMIT, ks=(1, 20), device="cpu",
                            progress=False)
    for k in (1, 20):
        expected = _numpy_knn_top1(train_flat, train_labels, test_flat, test_labels, k)
        assert result.metrics[f"knn{k}_top1"] == pytest.approx(expected)


def test_centring_changes_the_knn_but_not_what_the_standardised_probe_sees(single_thread):
    bank = build_dataset("digits", "train", None, preprocessing_for(ENTRY).eval_transform(), LIMIT)
    plain, centred = RawPixels(), RawPixels.centred_on(bank)
    images = torch.stack([bank[i][0] for i in range(8)])
    assert plain(images).shape == (8, 3 * 32 * 32) and torch.equal(plain(images), images.flatten(1))
    assert torch.allclose(centred(images), images.flatten(1) - centred.mean.flatten())
    knn, probe = ({name: run_evaluation(ENTRY, protocol, "digits", model=model, limit=LIMIT, epochs=5,
                                        device="cpu", progress=False).metrics
                   for name, model in (("plain", plain), ("centred", centred))}
                  for protocol in ("knn", "linear_fast"))
    assert probe["plain"]["top1"] == pytest.approx(probe["centred"]["top1"])
    assert knn["plain"] != knn["centred"]


def test_the_feature_cache_tells_plain_from_centred_pixels(tmp_path, single_thread):
    bank = build_dataset("digits", "train", None, preprocessing_for(ENTRY).eval_transform(), LIMIT)
    plain, centred = RawPixels(), RawPixels.centred_on(bank)
    first, second = (run_evaluation(ENTRY, "knn", "digits", model=m, limit=LIMIT, cache_dir=tmp_path, device="cpu",
                                    progress=False).metrics for m in (plain, centred))
    assert len(list(tmp_path.glob("features-*.safetensors"))) == 4  # train and test of each: none reused
    assert first != second


def test_a_mean_image_of_another_shape_is_refused():
    with pytest.raises(ValueError, match="same preprocessing"):
        RawPixels(torch.zeros(3, 28, 28))(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="empty"):
        RawPixels.centred_on([])
