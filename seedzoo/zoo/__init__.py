"""The zoo registry: look-ups over the records of `entries.py`."""
from __future__ import annotations

import difflib
import fnmatch

from ..errors import SeedzooError
from .entries import ENTRIES, EXCLUDED_RELEASES
from .schema import (
    DataConfig,
    HeadSpec,
    Lineage,
    Metric,
    Normalization,
    OfficialSource,
    Recipe,
    Weights,
    ZooEntry,
)

__all__ = [
    "ENTRIES", "EXCLUDED_RELEASES", "UnknownModelError", "aliases", "get_entry", "list_entries",
    "register_entry", "DataConfig", "HeadSpec", "Lineage", "Metric", "Normalization", "OfficialSource",
    "Recipe", "Weights", "ZooEntry",
]

_ENTRIES: dict[str, ZooEntry] = {}
_ALIASES: dict[str, str] = {}


class UnknownModelError(SeedzooError, KeyError):
    """A name that is neither an entry, an alias nor a registered architecture."""

    def __init__(self, name: str, candidates: list[str]) -> None:
        close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        super().__init__(f"Unknown seedzoo model '{name}'.{hint} `seedzoo list` shows every entry.")
        self.name, self.suggestions = name, close

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


def register_entry(entry: ZooEntry) -> None:
    """Add an entry (the first of an architecture name becomes its alias's target)."""
    if entry.name in _ENTRIES:
        raise ValueError(f"zoo entry '{entry.name}' is registered twice")
    _ENTRIES[entry.name] = entry
    _ALIASES.setdefault(entry.arch_name, entry.name)


for _e in ENTRIES:
    register_entry(_e)


def aliases() -> dict[str, str]:
    """Short name -> default entry, e.g. 'seed_mbv3_large' -> 'seed_mbv3_large.mocov2_r50_200ep'."""
    return dict(_ALIASES)


def get_entry(name: str) -> ZooEntry:
    """The record of an entry or alias; unknown names raise `UnknownModelError` with suggestions."""
    if name in _ENTRIES:
        return _ENTRIES[name]
    if name in _ALIASES:
        return _ENTRIES[_ALIASES[name]]
    raise UnknownModelError(name, sorted(set(_ENTRIES) | set(_ALIASES)))


def list_entries(pattern: str = "*", pretrained: bool | None = None, teacher: str | None = None,
                 role: str | None = None) -> list[ZooEntry]:
    """Entries whose name matches `pattern` (fnmatch); `pretrained` filters on a file being available,
    `teacher` on the teacher's entry name or alias (fnmatch), `role` on student/teacher."""
    out = []
    for e in _ENTRIES.values():
        if not fnmatch.fnmatch(e.name, pattern) and not fnmatch.fnmatch(e.arch_name, pattern):
            continue
        if pretrained is not None and e.has_file != pretrained:
            continue
        if role is not None and e.role != role:
            continue
        if teacher is not None:
            t = e.teacher.entry if e.teacher else ""
            if not (fnmatch.fnmatch(t, teacher) or fnmatch.fnmatch(t.split(".")[0], teacher)):
                continue
        out.append(e)
    return out
