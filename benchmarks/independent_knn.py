"""kNN-20 of shipped or trained backbones, and of raw pixels, on Fashion-MNIST, by code outside seedzoo's
evaluation.

A cross-check of the cards' kNN numbers: the idx files are parsed here, the images resized and normalised
here, and the weighted kNN vote (k 20, T 0.07, cosine, over all 60,000 training features) written here.
seedzoo only builds the network and loads its weights. `pixels` stands for the network's input itself
(32 px, normalised, flattened) and `pixels_centred` for the same minus the training images' mean: the
registry's raw-pixel rows.

    python benchmarks/independent_knn.py seed_mbv3_large.fmnist_mocov2_r18 mocov2_mbv3_large.fmnist
    python benchmarks/independent_knn.py pixels pixels_centred
    python benchmarks/independent_knn.py runs/NAME/export/NAME --arch seed_mobilenetv3_large
"""
from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import seedzoo
from seedzoo.data.fashion_mnist import default_root  # where the files are, nothing more

MEAN, STD = 0.286, 0.353  # Fashion-MNIST's, as the fmnist entries record them
PIXELS = ("pixels", "pixels_centred")


def read_idx(root: Path, stem: str) -> np.ndarray:
    path = next(root.glob(f"{stem}*"), None)
    if path is None:
        raise SystemExit(f"no {stem}* file in {root}: install Fashion-MNIST (`make data`) or pass --root")
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    ndim = raw[3]
    dims = np.frombuffer(raw[4:4 + 4 * ndim], dtype=">i4")
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


@torch.no_grad()
def features(model: torch.nn.Module, images: np.ndarray, size: int = 32) -> torch.Tensor:
    """`model`'s output on the 32 px normalised images, in batches (not normalised: `knn_top1` does it)."""
    out = []
    for i in range(0, len(images), 1000):
        x = torch.from_numpy(images[i:i + 1000].astype(np.float32) / 255)[:, None]
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
        out.append(model((x - MEAN) / STD).float())
    return torch.cat(out)


def knn_top1(train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor,
             k: int = 20, t: float = 0.07) -> float:
    train, test = F.normalize(train, dim=1), F.normalize(test, dim=1)
    correct = 0
    for i in range(0, len(test), 500):
        sim, idx = (test[i:i + 500] @ train.T).topk(k, dim=1)
        votes = torch.zeros(len(sim), 10).scatter_add_(1, train_labels[idx], (sim / t).exp())
        correct += int((votes.argmax(1) == test_labels[i:i + 500]).sum())
    return 100 * correct / len(test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+",
                        help="zoo entries, export folders (with --arch), or pixels / pixels_centred (no network)")
    parser.add_argument("--arch", default="seed_mobilenetv3_large", help="architecture of export folders")
    parser.add_argument("--root", type=Path, default=default_root(),
                        help="folder of the idx files (default: where `make data` installs them)")
    args = parser.parse_args()
    xtr, xte = read_idx(args.root, "train-images"), read_idx(args.root, "t10k-images")
    ytr, yte = (torch.from_numpy(read_idx(args.root, s).astype(np.int64)) for s in ("train-labels", "t10k-labels"))
    for name in args.models:
        if name in PIXELS:
            model: torch.nn.Module = torch.nn.Flatten()
        elif Path(name).is_dir():
            model = seedzoo.create_model(args.arch, pretrained=name, num_classes=0)
        else:
            model = seedzoo.create_model(name, pretrained=True, num_classes=0)
        model.eval()
        train, test = features(model, xtr), features(model, xte)
        if name == "pixels_centred":
            mean = train.mean(0)
            train, test = train - mean, test - mean
        print(f"{name}: kNN-20 top-1 {knn_top1(train, ytr, test, yte):.2f}")


if __name__ == "__main__":
    main()
