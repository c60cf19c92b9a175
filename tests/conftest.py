"""Shared fixtures.

The golden vectors (computed with the SEED authors' code) are external fixtures: they are read from
`$SEEDZOO_GOLDEN`, by default `../shared/golden` beside the checkout. Without them the tests that need
them skip, naming the variable; under CI (`CI=true`) a missing fixture fails the run instead.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
GOLDEN_ENV = "SEEDZOO_GOLDEN"


def _share_the_cores() -> None:
    """Under pytest-xdist, each worker takes its share of the cores, and so do the commands its tests
    start (OMP_NUM_THREADS): workers that each used every core would slow one another down."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        threads = max(1, cores // workers)
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)


_share_the_cores()


def _golden_path() -> Path:
    configured = os.environ.get(GOLDEN_ENV)
    return Path(configured).expanduser() if configured else REPO.parent / "shared" / "golden"


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    path = _golden_path()
    if not path.is_dir():
        why = f"golden fixtures not found at {path}: set {GOLDEN_ENV} to the folder of the golden vectors"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why)
        pytest.skip(why)
    return path


@pytest.fixture(scope="module")
def hubconf():
    """hubconf.py imported from its file, as torch.hub does for source="local"."""
    spec = importlib.util.spec_from_file_location("hubconf", REPO / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 kB tmpfs (root only; skipped where mounting is not permitted)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no `mount` command here to make a small tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True,
                          check=False)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
