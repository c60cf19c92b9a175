"""Transfer: a linear probe on other classification datasets (CIFAR-10/100, STL-10, Flowers-102,
Food-101, SUN-397, Fashion-MNIST, any ImageFolder), read from a local root, never downloaded.

`fast=True` (default) probes cached eval-transform features (`linear_fast`); `fast=False` runs SEED's
full augmented protocol (`linear`). The result's protocol is prefixed `transfer_` either way.
"""
from __future__ import annotations

from pathlib import Path

from .backbones import Pretrained
from .results import EvalResult
from .runner import run_evaluation


def transfer_linear(name: str, dataset: str, data_root: str | Path | None = None, pretrained: Pretrained = True,
                    fast: bool = True, **kwargs) -> EvalResult:
    """Linear transfer of `name` to `dataset`; keyword arguments go to `run_evaluation`."""
    result = run_evaluation(name, "linear_fast" if fast else "linear", dataset, data_root, pretrained, **kwargs)
    result.protocol = "transfer_" + result.protocol
    return result
