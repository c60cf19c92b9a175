"""seedzoo: SEED-distilled small vision backbones, their weights hub and their trainer.

    >>> import seedzoo
    >>> model = seedzoo.create_model("seed_mbv3_large", pretrained="path/to/checkpoint", num_classes=0)

With seedzoo imported, seedzoo's architectures and pretrained tags are timm names too
(`timm.create_model("seed_mobilenetv3_large.mocov2_r50_200ep")`). They are registered when timm is
imported (at once if it already is), not by `import seedzoo` itself: the registry (`seedzoo.zoo`) and
the command line's look-ups then run without loading torch or timm.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

from .errors import SeedzooError
from .lazy_exports import lazy_getattr
from .zoo import UnknownModelError, ZooEntry

__version__ = "0.1.0"

# Public API, imported on first use so that `import seedzoo` stays light (no torch, no timm).
_LAZY = {
    "create_model": "seedzoo.factory",
    "load_projection_head": "seedzoo.factory",
    "get_transform": "seedzoo.factory",
    "list_models": "seedzoo.factory",
    "model_info": "seedzoo.factory",
    "save_model": "seedzoo.weights.publish",
    "seed_loss": "seedzoo.training.loss",
    "distill": "seedzoo.training.distill",
}

__all__ = ["SeedzooError", "UnknownModelError", "ZooEntry", "__version__", *_LAZY]


__getattr__ = lazy_getattr(__name__, _LAZY)


def _register_with_timm() -> None:
    """Register the architectures and their pretrained tags (`seedzoo.models`), and the resolver that
    finds a tag's weights file when timm asks for it (`seedzoo.weights.resolve`)."""
    # A module already in sys.modules is registering itself (timm was imported from inside it).
    for module in ("seedzoo.models", "seedzoo.weights.resolve"):
        if module not in sys.modules:
            importlib.import_module(module)


class _RegisterAfterTimm(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `timm` as the other finders do, and registers seedzoo once timm's module has run."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None,
                  ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "timm":
            return None
        sys.meta_path.remove(self)  # once: the next finders locate timm itself
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            self._timm_loader = spec.loader
            spec.loader = self
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._timm_loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        if module.__spec__ is not None:  # timm's own loader from here on
            module.__spec__.loader = module.__loader__ = self._timm_loader
        self._timm_loader.exec_module(module)
        _register_with_timm()


if "timm" in sys.modules:
    _register_with_timm()
elif not any(isinstance(f, _RegisterAfterTimm) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterTimm())
