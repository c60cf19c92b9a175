"""`LazyChoices`: an argparse choice list that lives in a module heavy to import (torch, timm).

argparse reads `choices` only when the command that owns the argument is parsed or its help is shown,
so `seedzoo --help` and the other commands never import that module. Give the argument a `metavar`
(argparse would otherwise list the choices when the argument is added) and write `%(choices)s` in its
help to show them.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence


class LazyChoices(Sequence[str]):
    """The names `module.attribute` holds, imported on first use; `key` maps a value to the name it is
    checked against (e.g. the part before `:` of `linear:epochs=5`)."""

    def __init__(self, module: str, attribute: str, key: Callable[[str], str] = str) -> None:
        self.module, self.attribute, self.key = module, attribute, key

    def _names(self) -> Sequence[str]:
        return getattr(importlib.import_module(self.module), self.attribute)

    def __contains__(self, value: object) -> bool:
        return isinstance(value, str) and self.key(value) in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __getitem__(self, index):
        return self._names()[index]
