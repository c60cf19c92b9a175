"""Shared fixtures. Golden files come from `../shared/golden` beside the checkout (as in CI)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
GOLDEN = SHARED / "golden"


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    if not GOLDEN.is_dir():
        pytest.fail(f"golden files missing: expected {GOLDEN} (shared/ beside the checkout)")
    return GOLDEN


def rel_max_err(a, b) -> float:
    """max |a - b| / max |b|: the tolerance measure of the golden vectors."""
    return float((a - b).abs().max() / b.abs().max())


@pytest.fixture(scope="module")
def single_thread():
    """Tiny inputs run fastest on one thread (and do not fight other processes for the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
