"""The SEED authors' release list: the 19 files their README links, one row each, as they published it.

The rows live in `official_releases.tsv` beside this module (package data), so the registry and its tests
need nothing outside the package. `entries.py` takes every official URL from here; two rows are not
entries (`entries.EXCLUDED_RELEASES` says why).
"""
from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Release:
    """One row of the authors' list, with their spelling of architectures and methods."""

    role: str  # "teacher" or "student"
    arch: str  # e.g. "MobileV3-Large", "ResNet-50X2"
    teacher_arch: str  # empty for teachers
    ssl: str  # the teacher's method, e.g. "MoCo-V2", "SWAV"
    epochs: int
    url: str  # the signed download link, query string included
    note: str  # why a row is faulty, where it is

    @property
    def filename(self) -> str:
        """The file's name, without the link's signature."""
        return urlsplit(self.url).path.rsplit("/", 1)[-1]


@functools.cache
def official_releases() -> tuple[Release, ...]:
    """Every row of the release list, in the authors' order."""
    text = resources.files(__package__).joinpath("official_releases.tsv").read_text(encoding="utf-8")
    rows = csv.DictReader(io.StringIO(text), delimiter="\t")
    return tuple(Release(r["role"], r["arch"], r["teacher_arch"], r["ssl"], int(r["epochs"]), r["url"], r["note"])
                 for r in rows)


def release_url(filename: str) -> str:
    """The published link of a released file, by its name (a KeyError names a file not in the list)."""
    for release in official_releases():
        if release.filename == filename:
            return release.url
    raise KeyError(f"{filename} is not in the SEED authors' release list")
