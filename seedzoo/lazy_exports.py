"""A package's public names imported on first use (PEP 562 `__getattr__`), so that importing the package
stays light: `seedzoo` and `seedzoo.weights` load without torch or timm until a name that needs them is
used."""
from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """The module `__getattr__` of `package`: each name in `where` is imported from the module it maps to
    when first looked up, then kept on the package, so later look-ups do not come back here."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
