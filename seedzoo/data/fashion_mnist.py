"""Fashion-MNIST from the gzipped IDX files of Debian's `dataset-fashion-mnist` package.

Nothing is downloaded: the files are read from `root` (default: Debian's install location, or the
`SEEDZOO_FASHION_MNIST` environment variable).
"""
from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import torch

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot")
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def default_root() -> Path:
    return Path(os.environ.get("SEEDZOO_FASHION_MNIST", DEBIAN_DIR))


def available(root: str | Path | None = None) -> bool:
    root = Path(root) if root else default_root()
    return all(_find(root, f) is not None for pair in _FILES.values() for f in pair)


def _find(root: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    return None


def _read_idx(path: Path) -> torch.Tensor:
    """The array of an IDX file, decoded once per process and version of the file: every evaluation and
    training source reads the same four files, and gunzipping the training images takes about 0.2 s."""
    info = path.stat()
    return _decoded(path.resolve(), info.st_size, info.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _decoded(path: Path, size: int, mtime_ns: int) -> torch.Tensor:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    return torch.frombuffer(bytearray(data[offset:]), dtype=torch.uint8).reshape(shape)


def load_fashion_mnist(split: str = "train", root: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 N x 28 x 28, labels int64 N) of the `train` (60,000) or `test` (10,000) split. The
    images tensor is shared by every caller in the process: read it, never write to it."""
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    root = Path(root) if root else default_root()
    paths = [_find(root, stem) for stem in _FILES[split]]
    if any(p is None for p in paths):
        raise FileNotFoundError(
            f"Fashion-MNIST {split} files not found in {root}. Install them with "
            "`apt-get install dataset-fashion-mnist` (Debian), or point SEEDZOO_FASHION_MNIST at a folder "
            f"holding {', '.join(s + '.gz' for s in _FILES[split])}.")
    images, labels = (_read_idx(p) for p in paths)  # type: ignore[arg-type]
    return images, labels.long()
