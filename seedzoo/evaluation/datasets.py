"""Labelled image datasets for evaluation, read from local files only (`download=False` always).

`build_dataset(name, split, root)` covers Fashion-MNIST (Debian's files; grayscale repeated to three
channels, resized by the transform to the model's input size), torchvision's CIFAR-10/100, STL-10,
Flowers-102, Food-101, SUN-397, and any ImageFolder tree. A missing dataset raises an error that
says where the files must be put.
"""
from __future__ import annotations

from collections.abc import Callable, Sized
from pathlib import Path
from typing import cast

import torch
from PIL import Image
from torch.utils.data import Dataset, Subset
from torchvision import datasets as tvd

from ..data.datasets import UnreadableImageError
from ..data.fashion_mnist import default_root as fashion_mnist_root
from ..data.fashion_mnist import load_fashion_mnist
from ..data.folders import class_folders, open_image, scan_image_folder, scan_images
from ..errors import SeedzooError

Transform = Callable[[Image.Image], torch.Tensor] | None


class _GrayImages(Dataset):
    """uint8 grayscale images (`images`, `targets`) served as RGB PIL images through `transform`."""

    num_classes = 10
    images: torch.Tensor
    targets: torch.Tensor
    transform: Transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.images[index].numpy(), mode="L").convert("RGB")
        return (self.transform(image) if self.transform else image), int(self.targets[index])


class FashionMNIST(_GrayImages):
    """Fashion-MNIST (Debian's files), the gray channel repeated to RGB."""

    def __init__(self, split: str = "train", root: str | Path | None = None, transform: Transform = None):
        self.images, self.targets = load_fashion_mnist(split, root)
        self.transform = transform


class Digits(_GrayImages):
    """scikit-learn's bundled handwritten digits (1,797 8x8 grayscale images, 10 classes): real images
    that ship inside a PyPI package, so an offline machine can test on data no seedzoo model was trained
    on. Fixed split: the first 1,000 images train, the other 797 test."""

    TRAIN_SIZE = 1000

    def __init__(self, split: str = "train", transform: Transform = None):
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise DatasetNotFoundError("the digits dataset ships with scikit-learn: pip install scikit-learn") from None
        data = load_digits()
        images = torch.as_tensor(data.images * (255.0 / 16.0)).round().to(torch.uint8)  # values 0..16
        part = slice(0, self.TRAIN_SIZE) if split == "train" else slice(self.TRAIN_SIZE, None)
        self.images, self.targets = images[part], torch.as_tensor(data.target[part], dtype=torch.long)
        self.transform = transform


# name -> (torchvision class, where its files go under ROOT, how the split argument is given)
_TORCHVISION = {
    "cifar10": (tvd.CIFAR10, "ROOT/cifar-10-batches-py/", "train"),
    "cifar100": (tvd.CIFAR100, "ROOT/cifar-100-python/", "train"),
    "stl10": (tvd.STL10, "ROOT/stl10_binary/", "split"),
    "flowers102": (tvd.Flowers102, "ROOT/flowers-102/ (jpg/, imagelabels.mat, setid.mat)", "split"),
    "food101": (tvd.Food101, "ROOT/food-101/ (images/, meta/)", "split"),
    "sun397": (tvd.SUN397, "ROOT/SUN397/ (ClassName.txt and the class folders)", None),
}
DATASET_NAMES = ("fashion_mnist", "digits", *_TORCHVISION, "image_folder")
DISPLAY_NAMES = {"fashion_mnist": "Fashion-MNIST", "digits": "Digits (scikit-learn)", "cifar10": "CIFAR-10",
                 "cifar100": "CIFAR-100", "stl10": "STL-10", "flowers102": "Flowers-102", "food101": "Food-101",
                 "sun397": "SUN-397", "image_folder": "ImageFolder"}
# Names seedzoo no longer accepts, and the one to use: one name per kind of data, as in `seedzoo train`.
_RENAMED = {"imagefolder": "image_folder"}
SUN397_TEST_FRACTION = 0.2  # torchvision's SUN397 has no split: a seeded 80/20 split, fixed below
SUN397_SPLIT_SEED = 0


class DatasetNotFoundError(SeedzooError, FileNotFoundError):
    pass


class SplitMismatchError(SeedzooError, ValueError):
    """The train and test folders of an image folder do not hold the same classes."""


class ImageFolder(Dataset):
    """`root/<class>/<image>` with torchvision's ImageFolder interface (`classes`, `samples`, `targets`),
    listed and decoded by `seedzoo.data.folders`: an unreadable folder is refused, a link is followed
    once, images come upright and 16-bit images scaled. `left_out` records what the listing left out."""

    def __init__(self, root: str | Path, transform: Transform = None) -> None:
        scan = scan_image_folder(root)
        if not scan.files:
            raise DatasetNotFoundError(f"no images in the class folders of {root}: expected "
                                       f"{_where('image_folder')}")
        self.classes = scan.classes
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.samples = [(str(path), label) for path, label in zip(scan.files, scan.labels)]
        self.targets = scan.labels
        self.left_out = scan.left_out
        self.summary = scan.summary()
        self.fingerprint = scan.fingerprint
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        try:
            image = open_image(path)
        except Exception as err:  # PIL raises many types for broken files
            raise UnreadableImageError(f"cannot read image {path} ({type(err).__name__}: {err}); remove or replace "
                                       "it: an evaluation uses every image of its folder") from err
        return (self.transform(image) if self.transform else image), label


def build_dataset(name: str, split: str = "train", root: str | Path | None = None,
                  transform: Transform = None, limit: int | None = None) -> Dataset:
    """A dataset by name. `split` is "train" or "test"; `limit` keeps the first N samples."""
    name = name.lower().replace("-", "_")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    if name == "fashion_mnist":
        dataset: Dataset = FashionMNIST(split, root, transform)
    elif name == "digits":
        dataset = Digits(split, transform)
    elif name == "image_folder":
        dataset = _image_folder(split, root, transform)
    elif name in _TORCHVISION:
        dataset = _torchvision(name, split, root, transform)
    elif name in _RENAMED:
        raise ValueError(f"dataset '{name}' is called '{_RENAMED[name]}' (the name `seedzoo train` uses for "
                         f"data.source): pass --dataset {_RENAMED[name]}")
    else:
        raise ValueError(f"unknown dataset '{name}': choose one of {', '.join(DATASET_NAMES)}")
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        dataset = Subset(dataset, range(min(limit, num_samples(dataset))))
    return dataset


def _require_root(name: str, root: str | Path | None) -> Path:
    if root is None:
        raise DatasetNotFoundError(f"{DISPLAY_NAMES.get(name, name)} needs a data root: pass --data ROOT "
                                   f"(data_root=...), the folder that holds {_where(name)}")
    return Path(root)


def _where(name: str) -> str:
    if name == "image_folder":
        return "train/<class>/*.jpg and test/<class>/*.jpg (val/ is accepted for test)"
    return _TORCHVISION[name][1]


def _torchvision(name: str, split: str, root: str | Path | None, transform: Transform) -> Dataset:
    cls, _, split_arg = _TORCHVISION[name]
    root = _require_root(name, root)
    kwargs = {"train": split == "train"} if split_arg == "train" else {"split": split} if split_arg else {}
    try:
        dataset = cls(str(root), transform=transform, download=False, **kwargs)
    except (RuntimeError, FileNotFoundError) as err:  # torchvision: "Dataset not found or corrupted"
        raise DatasetNotFoundError(
            f"{DISPLAY_NAMES[name]} not found under {root}: seedzoo never downloads. Put the files of "
            f"torchvision's {cls.__name__} at {_where(name).replace('ROOT', str(root))} "
            f"(for example by running torchvision's {cls.__name__}(root, download=True) on a machine "
            f"with internet access). ({err})") from None
    if name == "sun397":
        dataset = Subset(dataset, _sun397_split(num_samples(dataset), split))
    return dataset


def _sun397_split(n: int, split: str) -> list[int]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SUN397_SPLIT_SEED)).tolist()
    n_test = int(round(n * SUN397_TEST_FRACTION))
    return sorted(order[:n_test] if split == "test" else order[n_test:])


def _split_folder(split: str, root: Path) -> Path | None:
    candidates = [root / split] + ([root / "val"] if split == "test" else [])
    return next((folder for folder in candidates if folder.is_dir()), None)


def _image_folder(split: str, root: str | Path | None, transform: Transform) -> Dataset:
    root = _require_root("image_folder", root)
    folder = _split_folder(split, root)
    if folder is None:
        raise DatasetNotFoundError(f"no {split} folder under {root}: expected {_where('image_folder')}")
    check_same_classes(root)
    return ImageFolder(folder, transform=transform)


def check_same_classes(root: str | Path) -> None:
    """Refuse an image folder whose train and test splits name different classes: labels are the indices
    of the sorted folder names, so a class missing on one side shifts every label after it."""
    train, test = _split_folder("train", Path(root)), _split_folder("test", Path(root))
    if train is None or test is None:
        return
    a, b = class_folders(train), class_folders(test)
    if a != b:
        only_train, only_test = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        raise SplitMismatchError(
            f"{train} and {test} hold different classes (only in {train.name}: {', '.join(only_train) or '-'}; "
            f"only in {test.name}: {', '.join(only_test) or '-'}): labels are the sorted folder names, so they "
            "would not match; give both splits the same class folders (an empty folder is a class without images)")


def listing_note(dataset: Dataset, split: str) -> str | None:
    """What the listing of an image folder left out (links reaching a file twice), for the result."""
    base = _unwrapped(dataset)
    summary = base.summary if isinstance(base, ImageFolder) else None
    return f"{split}: {summary}" if summary else None


def _unwrapped(dataset: Dataset) -> Dataset:
    """The dataset under any `Subset` (`limit`, a split's indices)."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return dataset


def num_samples(dataset: Dataset) -> int:
    """The length of a map-style dataset (torch's `Dataset` declares no `__len__`; every one here has it)."""
    return len(cast(Sized, dataset))


def dataset_labels(dataset: Dataset) -> torch.Tensor:
    """All labels of a dataset without decoding its images (falls back to iterating)."""
    if isinstance(dataset, Subset):
        return dataset_labels(dataset.dataset)[torch.as_tensor(list(dataset.indices), dtype=torch.long)]
    for attr in ("targets", "labels", "_labels"):
        labels = getattr(dataset, attr, None)
        if labels is not None:
            return torch.as_tensor(labels, dtype=torch.long)
    return torch.tensor([int(dataset[i][1]) for i in range(num_samples(dataset))], dtype=torch.long)


def num_classes_of(dataset: Dataset) -> int:
    base = _unwrapped(dataset)
    classes = getattr(base, "classes", None) or getattr(base, "num_classes", None)
    if isinstance(classes, int):
        return classes
    if classes:
        return len(classes)
    return int(dataset_labels(dataset).max()) + 1


def dataset_identity(name: str, split: str, root: str | Path | None, limit: int | None,
                     preprocessing: object, dataset: Dataset | None = None) -> str:
    """A string naming exactly which samples went through which transform (the feature cache's key): the
    content of the files the split is read from (`data_fingerprint`), not the folder's path, so replacing,
    adding or removing an image gives a new key. `dataset`, the split as `build_dataset` returned it,
    spares an image folder a second listing."""
    return f"{name}|{split}|{data_fingerprint(name, split, root, dataset)}|limit={limit}|{preprocessing!r}"


def data_fingerprint(name: str, split: str, root: str | Path | None, dataset: Dataset | None = None) -> str:
    """The fingerprint of the files a split is read from (`folders.ImageScan.fingerprint`: each file's
    path, size, inode, modification and change times): an image folder's images, taken from `dataset`'s
    own listing when it is given; every file of a torchvision dataset's or Fashion-MNIST's folder.
    Digits: scikit-learn's version, which ships the data."""
    name = name.lower().replace("-", "_")
    if name == "digits":
        from sklearn import __version__ as sklearn_version

        return f"scikit-learn {sklearn_version}"
    if name == "image_folder":
        built = _unwrapped(dataset) if dataset is not None else None
        if isinstance(built, ImageFolder):
            return built.fingerprint
        split_folder = _split_folder(split, _require_root(name, root))
        return scan_image_folder(split_folder).fingerprint if split_folder is not None else "no files"
    if name == "fashion_mnist":
        folder: Path | None = Path(root) if root is not None else fashion_mnist_root()
    elif name in _TORCHVISION:  # the dataset's own sub-folder, not everything else kept under ROOT
        folder = _require_root(name, root) / _where(name).split("/")[1]
    else:
        folder = None
    if folder is None or not folder.is_dir():
        return "no files"
    return scan_images(folder, extensions=None).fingerprint
