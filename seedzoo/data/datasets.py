"""Image sources (ImageFolder, a folder of unlabeled images, a file list, Fashion-MNIST) and the
training dataset that turns a (epoch, index) key into augmented views.

A source returns raw images as uint8 C x H x W tensors with an integer label (-1: unlabeled).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import SeedzooError
from .augment import sample_generator
from .folders import IMAGE_EXTENSIONS, ImageScan, class_folders, open_image, scan_image_folder, scan_images
from .sources import SOURCES


class UnreadableImageError(SeedzooError, RuntimeError):
    """An image file could not be decoded."""


class ImageSource(Protocol):
    def __len__(self) -> int: ...
    def load(self, index: int) -> tuple[Tensor, int]: ...
    def describe(self, index: int) -> str: ...


def read_image(path: Path) -> Tensor:
    """uint8 3 x H x W, upright, 16-bit scaled (`folders.open_image`); any decoding problem becomes an
    `UnreadableImageError` naming the file."""
    import torchvision.transforms.v2.functional as TF

    try:
        return TF.pil_to_tensor(open_image(path))
    except Exception as err:  # PIL raises many types for broken files
        raise UnreadableImageError(
            f"cannot read image {path}: {err}. Remove or replace the file, or set data.on_error=skip "
            "to skip unreadable images (they are counted in metrics.jsonl)") from err


class _FileSource:
    def __init__(self, files: list[Path], labels: list[int], what: str) -> None:
        if not files:
            raise FileNotFoundError(f"no images found in {what} (extensions: {', '.join(IMAGE_EXTENSIONS)})")
        self.files, self.labels = files, labels
        self.left_out: list[tuple[Path, str]] = []

    def _record(self, scan: ImageScan) -> None:
        """Keep what the listing left out, and say so: a run must not see less than its folder silently."""
        self.left_out = scan.left_out
        if scan.summary():
            warnings.warn(scan.summary() or "", stacklevel=3)

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int) -> tuple[Tensor, int]:
        return read_image(self.files[index]), self.labels[index]

    def describe(self, index: int) -> str:
        return str(self.files[index])


class ImageFolderSource(_FileSource):
    """`root/<class>/<image>`: classes are the sorted sub-folder names (torchvision's ImageFolder)."""

    def __init__(self, root: str | Path) -> None:
        scan = scan_image_folder(root)
        self.classes = scan.classes
        super().__init__(scan.files, scan.labels, f"the class folders of {root}")
        self._record(scan)


class UnlabeledFolderSource(_FileSource):
    """Every image under `root`, recursively, label -1."""

    def __init__(self, root: str | Path) -> None:
        scan = scan_images(root)
        super().__init__(scan.files, scan.labels, str(root))
        self._record(scan)


class FileListSource(_FileSource):
    """A text file with one `path [label]` per line; relative paths are relative to the list's folder."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"file list not found: {path}")
        files, labels = [], []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, label = line.partition(" ")
            try:
                labels.append(int(label) if label.strip() else -1)
            except ValueError:
                raise ValueError(f"{path}:{n}: expected 'path [integer label]', got {line!r}") from None
            files.append(path.parent / name)
        super().__init__(files, labels, str(path))


class FashionMNISTSource:
    """Fashion-MNIST from Debian's files: 28 x 28 grayscale, repeated to 3 channels."""

    def __init__(self, split: str = "train", root: str | Path | None = None) -> None:
        from .fashion_mnist import CLASSES, load_fashion_mnist

        self.images, self.labels = load_fashion_mnist(split, root)
        self.classes = CLASSES

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> tuple[Tensor, int]:
        return self.images[index][None].expand(3, -1, -1), int(self.labels[index])

    def describe(self, index: int) -> str:
        return f"fashion-mnist[{index}]"


class Subset:
    """The first `n` images of a source."""

    def __init__(self, source: ImageSource, n: int) -> None:
        self.source, self.n = source, min(n, len(source))
        self.classes = getattr(source, "classes", None)

    def __len__(self) -> int:
        return self.n

    def load(self, index: int) -> tuple[Tensor, int]:
        return self.source.load(index)

    def describe(self, index: int) -> str:
        return self.source.describe(index)


def build_source(kind: str, path: str = "", subset: int = 0, split: str = "train") -> ImageSource:
    if kind == "fashion_mnist":
        source: ImageSource = FashionMNISTSource(split, path or None)
    elif not path:
        raise ValueError(f"data.source={kind} needs data.path (a folder or a file list)")
    elif kind == "image_folder":
        source = ImageFolderSource(path)
    elif kind == "unlabeled_folder":
        source = UnlabeledFolderSource(path)
    elif kind == "file_list":
        source = FileListSource(path)
    else:
        raise ValueError(f"unknown data source '{kind}': use one of {', '.join(SOURCES)}")
    return Subset(source, subset) if subset else source


def detect_source(path: str | Path) -> tuple[str, str]:
    """(the data.source that reads `path`, what `path` holds): a file is a file list, a folder with two
    or more class folders and no images beside them an image folder, any other folder of images an
    unlabeled folder, a folder of Fashion-MNIST's IDX files Fashion-MNIST."""
    from .fashion_mnist import available

    path = Path(path).expanduser()
    if path.is_file():
        return "file_list", "a file"
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such folder or file")
    if available(path):
        return "fashion_mnist", "Fashion-MNIST's IDX files"
    top_images = any(p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() for p in path.iterdir())
    classes = [name for name in class_folders(path) if scan_images(path / name).files]
    if len(classes) >= 2 and not top_images:
        return "image_folder", f"a folder of {len(classes)} class folders"
    return "unlabeled_folder", "a folder of images without class folders" if top_images or classes else "a folder"


# Which sources read what `detect_source` found (an unlabeled folder also reads a class tree: every image).
_READERS = {"file_list": ("file_list",), "fashion_mnist": ("fashion_mnist",),
            "image_folder": ("image_folder", "unlabeled_folder"), "unlabeled_folder": ("unlabeled_folder",)}


def source_mismatch(kind: str, path: str) -> str | None:
    """A one-line problem when data.source=`kind` cannot read data.path=`path` but another source can,
    naming that source; None when it can (or when `path` does not exist: the source says so itself)."""
    if not path or not Path(path).expanduser().exists():
        return None
    try:
        found, what = detect_source(path)
    except FileNotFoundError:
        return None
    if what == "a folder" or kind in _READERS[found]:  # an empty folder: the source says so itself
        return None
    return (f"data.path={path} is {what}, which data.source={kind} cannot read: add data.source={found} "
            f"({SOURCES[found]})")


Views = Callable[[Tensor, torch.Generator], dict[str, Tensor]]


class KeyedViewDataset(Dataset):
    """Maps a key (epoch, index) to `{"label", "index", "skipped", **views(image, generator)}`.

    Views that also read a neighbour of each image (a positive `neighbours`, BINGO's) name it with
    `neighbour(index, generator)` and take it as `batch(images, generators, neighbours)`; the neighbour is
    drawn from the sample's generator, so it too depends on the key alone.

    The generator is keyed on (seed, epoch, index) (`sample_generator`), so the views of a sample do not
    depend on which worker loads it, nor on what was loaded before.
    """

    def __init__(self, source: ImageSource, views: Views, seed: int = 0, on_error: str = "raise") -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        self.source, self.views, self.seed, self.on_error = source, views, seed, on_error

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Tensor | int]:
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: list[tuple[int, int]]) -> list[dict[str, Tensor | int]]:
        """A batch of keys at once (the DataLoader's batched fetch): views that offer `batch` augment the
        whole batch in one call; each sample is the same as alone."""
        loaded = [self._load(epoch, index) for epoch, index in keys]
        gens = [sample_generator(self.seed, epoch, index) for (epoch, _), (_, _, index, _) in zip(keys, loaded)]
        batch = getattr(self.views, "batch", None)
        if getattr(self.views, "neighbours", 0):  # views of a neighbour too, drawn by the sample's generator
            pick = self.views.neighbour  # type: ignore[attr-defined]
            others = [self._load(epoch, pick(index, g))[0]
                      for (epoch, _), (_, _, index, _), g in zip(keys, loaded, gens)]
            views = self.views.batch([image for image, *_ in loaded], gens, others)  # type: ignore[attr-defined]
            outs = [{k: v[i] for k, v in views.items()} for i in range(len(keys))]
        elif batch is not None:
            views = batch([image for image, *_ in loaded], gens)
            outs = [{k: v[i] for k, v in views.items()} for i in range(len(keys))]
        else:
            outs = [self.views(image, g) for (image, *_), g in zip(loaded, gens)]
        return [{**out, "label": label, "index": index, "skipped": skipped}
                for out, (_, label, index, skipped) in zip(outs, loaded)]

    def _load(self, epoch: int, index: int) -> tuple[Tensor, int, int, int]:
        """(image, label, index, skipped): an unreadable image is skipped for the next readable one."""
        skipped = 0
        for _ in range(len(self.source)):
            try:
                image, label = self.source.load(index)
                break
            except UnreadableImageError as err:
                if self.on_error == "raise":
                    raise
                # Skip to the next image, deterministically, so that batches keep their size.
                warnings.warn(f"skipping unreadable image {self.source.describe(index)}: {err.__cause__}",
                              stacklevel=1)
                skipped += 1
                index = (index + 1) % len(self.source)
        else:
            raise UnreadableImageError("no readable image in the data set")
        return image, label, index, skipped
