"""The transforms an evaluation runs with: those of the weights it evaluates.

The preprocessing comes from the weights' own record (`seedzoo.weights.resolve`): an entry's published
one, or what a model folder (a run's export) recorded in its config.json; `seedzoo.weights.preprocessing`
builds the transforms (SEED's protocols: Resize + CenterCrop for eval, RandomResizedCrop + flip to train).
"""
from __future__ import annotations

import os

from ..weights.preprocessing import Preprocessing
from ..weights.resolve import Pretrained, resolve

__all__ = ["Preprocessing", "preprocessing_for"]


def preprocessing_for(name: str | os.PathLike, input_size: int | None = None,
                      pretrained: Pretrained = False) -> Preprocessing:
    """The preprocessing of `name`'s weights (`pretrained` as in `create_model`: a path reads that file's
    or folder's record); `input_size` overrides the resolution."""
    data = resolve(name, False if pretrained is True else pretrained).data
    return Preprocessing.from_data_config(data, input_size)
