"""The one way seedzoo lists the images of a folder (training sources, `embed`, evaluation's image folders,
the kNN monitor), and the one way it decodes an image file.

Listing is recursive and sorted, and never silent about what it cannot see:
- a sub-folder or file that cannot be read (no permission, a broken link) is refused in one line: leaving
  it out would train or measure on part of the data without a word;
- symbolic links are followed, but a folder is walked once (a link back up the tree would loop, a link to
  a sibling class would count its images again) and a file is listed once, at its first path in sorted
  order: what was left out is recorded (`ImageScan.left_out`) for the caller to report.

Decoding applies the EXIF orientation (a photo taken upright is upright) and scales 16-bit images to 8
bits (`convert("RGB")` would clip every value above 255 to white).
"""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SeedzooError

if TYPE_CHECKING:
    from PIL import Image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".pbm", ".tif", ".tiff", ".webp", ".gif")


class UnreadableFolderError(SeedzooError, PermissionError):
    """A folder or file under a data root cannot be read: its images would be left out silently."""


@dataclass
class ImageScan:
    """The images of a folder: `files` (sorted) with their `labels` (the index into `classes`, or -1),
    what was `left_out` with the reason (`(path, why)`: a folder already walked, a file already listed),
    and the `fingerprint` of the files listed (`_Walk.fingerprint`)."""

    files: list[Path] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    left_out: list[tuple[Path, str]] = field(default_factory=list)
    fingerprint: str = ""

    def summary(self) -> str | None:
        """One line on what was left out, or None."""
        if not self.left_out:
            return None
        shown = ", ".join(f"{p} ({why})" for p, why in self.left_out[:3])
        more = f" and {len(self.left_out) - 3} more" if len(self.left_out) > 3 else ""
        return f"{len(self.left_out)} path(s) left out of the listing, reached twice through links: {shown}{more}"


class _Walk:
    """A depth-first walk in sorted order that remembers the folders and files it has seen (by device and
    inode), shared by the class folders of one tree. It fingerprints what it lists from the stat it makes
    of each file anyway, so that a cache keyed on the files needs no second listing."""

    def __init__(self, root: Path, extensions: tuple[str, ...] | None) -> None:
        self.root, self.extensions = root, extensions
        self.folders: set[tuple[int, int]] = set()
        self.files: set[tuple[int, int]] = set()
        self.left_out: list[tuple[Path, str]] = []
        self.digest = hashlib.sha256()

    @property
    def fingerprint(self) -> str:
        """sha256 over the files listed, in order: each one's path relative to the root, size, inode, and
        modification and change times (a file replaced by a copy with the same size and modification time
        still has a new change time)."""
        return "files-sha256:" + self.digest.hexdigest()

    def _listed(self, path: Path, info: os.stat_result) -> None:
        self.digest.update(f"{path.relative_to(self.root).as_posix()}|{info.st_size}|{info.st_ino}|"
                           f"{info.st_mtime_ns}|{info.st_ctime_ns}\n".encode())

    def _refuse(self, path: Path, err: OSError | str) -> UnreadableFolderError:
        why = err if isinstance(err, str) else (err.strerror or str(err)).lower()
        return UnreadableFolderError(f"cannot read {path} ({why}) under the data folder {self.root}: fix its "
                                     "permissions (or the link), or move it out of the folder; its images would "
                                     "otherwise be left out")

    def _wanted(self, path: Path) -> bool:
        return self.extensions is None or path.suffix.lower() in self.extensions

    def folder(self, folder: Path) -> list[Path]:
        try:
            info = folder.stat()
        except OSError as err:
            raise self._refuse(folder, err) from None
        key = (info.st_dev, info.st_ino)
        if key in self.folders:
            self.left_out.append((folder, "a folder already listed"))
            return []
        self.folders.add(key)
        try:
            with os.scandir(folder) as entries:
                names = sorted(e.name for e in entries)
        except OSError as err:
            raise self._refuse(folder, err) from None
        found: list[Path] = []
        for name in names:
            path = folder / name
            try:
                info = path.stat()  # follows links
            except OSError as err:
                if path.is_symlink() and self._wanted(path):
                    raise self._refuse(path, "a broken link") from None
                if not path.is_symlink():
                    raise self._refuse(path, err) from None
                continue  # a dangling link that is not an image: nothing was meant to be read there
            if stat.S_ISDIR(info.st_mode):
                found += self.folder(path)
            elif stat.S_ISREG(info.st_mode) and self._wanted(path):
                key = (info.st_dev, info.st_ino)
                if key in self.files:
                    self.left_out.append((path, "a file already listed"))
                    continue
                if not os.access(path, os.R_OK):
                    raise self._refuse(path, "permission denied")
                self.files.add(key)
                self._listed(path, info)
                found.append(path)
        return found


def _checked_root(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    return root


def scan_images(root: str | Path, extensions: tuple[str, ...] | None = IMAGE_EXTENSIONS) -> ImageScan:
    """Every image under `root` (every file, with `extensions=None`), recursively, sorted; labels -1."""
    root = _checked_root(root)
    walk = _Walk(root, extensions)
    files = walk.folder(root)
    return ImageScan(files, [-1] * len(files), [], walk.left_out, walk.fingerprint)


def class_folders(root: str | Path) -> list[str]:
    """The class names of an ImageFolder tree: its sub-folders (links to folders included), sorted."""
    root = _checked_root(root)
    try:
        return sorted(p.name for p in root.iterdir() if p.is_dir())
    except OSError as err:
        raise UnreadableFolderError(f"cannot read {root} ({(err.strerror or str(err)).lower()}): fix its "
                                    "permissions") from None


def scan_image_folder(root: str | Path, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> ImageScan:
    """`root/<class>/.../<image>`: classes are the sorted sub-folder names (torchvision's ImageFolder); an
    image reached from two classes (a link) keeps the first class's label and is listed once."""
    root = _checked_root(root)
    scan = ImageScan(classes=class_folders(root))
    walk = _Walk(root, extensions)
    walk.folders.add((root.stat().st_dev, root.stat().st_ino))  # a link from a class back to the root
    for label, name in enumerate(scan.classes):
        found = walk.folder(root / name)
        scan.files += found
        scan.labels += [label] * len(found)
    scan.left_out, scan.fingerprint = walk.left_out, walk.fingerprint
    return scan


def open_image(path: str | Path) -> Image.Image:
    """The image at `path` as 8-bit RGB, upright (EXIF orientation applied), 16-bit values scaled to 8 bits."""
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)  # a copy, upright; the same image when there is no orientation tag
        if img.mode.startswith("I"):  # 16-bit gray ("I;16", "I;16B"; older PIL's PNG reader gives "I")
            import numpy as np

            values = np.asarray(img, dtype=np.float64) / 257.0  # 65535 -> 255, as a 16-bit PNG means it
            img = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))
        return img.convert("RGB")
