"""The zoo registry: look-ups over the records of `entries.py`.

An entry has one name (`seed_mbv3_large.mocov2_r50_200ep`) and two spellings of it that other tools
need, both derived from it and both accepted by `get_entry`: its timm pretrained tag
(`ZooEntry.timm_name`, `seed_mobilenetv3_large.mocov2_r50_200ep`) and its torch.hub entrypoint
(`ZooEntry.hub_name`, `seed_mbv3_large__mocov2_r50_200ep`). `names()` is that table.
"""
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
    "ENTRIES", "EXCLUDED_RELEASES", "UnknownModelError", "aliases", "get_entry", "list_entries", "names",
    "register_entry", "DataConfig", "HeadSpec", "Lineage", "Metric", "Normalization", "OfficialSource",
    "Recipe", "Weights", "ZooEntry",
]

_ENTRIES: dict[str, ZooEntry] = {}
_ALIASES: dict[str, str] = {}
_SPELLINGS: dict[str, str] = {}  # timm tag or hub entrypoint -> entry name


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
    for spelling in (entry.timm_name, entry.hub_name):
        if _SPELLINGS.get(spelling, entry.name) != entry.name:
            raise ValueError(f"'{spelling}' would name both '{_SPELLINGS[spelling]}' and '{entry.name}'")
    _ENTRIES[entry.name] = entry
    _ALIASES.setdefault(entry.arch_name, entry.name)
    _SPELLINGS.update({entry.timm_name: entry.name, entry.hub_name: entry.name})


for _e in ENTRIES:
    register_entry(_e)


def aliases() -> dict[str, str]:
    """Short name -> default entry, e.g. 'seed_mbv3_large' -> 'seed_mbv3_large.mocov2_r50_200ep'."""
    return dict(_ALIASES)


def names() -> dict[str, dict[str, str]]:
    """Entry name -> its names in each tool: {"zoo", "timm", "hub"} (the alias table of the README)."""
    return {e.name: {"zoo": e.name, "timm": e.timm_name, "hub": e.hub_name} for e in _ENTRIES.values()}


def get_entry(name: str) -> ZooEntry:
    """The record of an entry, an alias, or an entry's timm tag or hub entrypoint; unknown names raise
    `UnknownModelError` with suggestions."""
    name = _ALIASES.get(name) or _SPELLINGS.get(name) or name
    if name in _ENTRIES:
        return _ENTRIES[name]
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
