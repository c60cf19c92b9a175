"""seedzoo: SEED-distilled small vision backbones, their weights hub and their trainer.

    >>> import seedzoo
    >>> model = seedzoo.create_model("seed_mbv3_large", pretrained="path/to/checkpoint", num_classes=0)

Importing seedzoo registers its architectures with timm, so `timm.create_model` builds them too.
"""
from __future__ import annotations

from typing import Any

from . import models  # noqa: F401  (registers the architectures with timm)
from .errors import SeedzooError
from .timm_cfg import register_pretrained_tags as _register_pretrained_tags
from .zoo import UnknownModelError, ZooEntry

__version__ = "0.1.0"

_register_pretrained_tags()  # every entry with weights becomes a timm pretrained tag `<architecture>.<tag>`

# Public API, imported on first use so that `import seedzoo` stays light (no trainer, no evaluation).
_LAZY = {
    "create_model": "seedzoo.factory",
    "load_projection_head": "seedzoo.factory",
    "get_transform": "seedzoo.factory",
    "list_models": "seedzoo.factory",
    "model_info": "seedzoo.factory",
    "save_model": "seedzoo.weights.publish",
    "seed_loss": "seedzoo.training.loss",
}

__all__ = ["SeedzooError", "UnknownModelError", "ZooEntry", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'seedzoo' has no attribute '{name}'")
