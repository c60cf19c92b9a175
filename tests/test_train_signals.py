"""SIGINT and SIGTERM to a `seedzoo train` whose loader has worker processes, sent to its whole process
group as Ctrl-C and torchrun do: one line saying what was saved and how to continue, no traceback, and no
worker left behind."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from test_train import write_image_folder

REPO = Path(__file__).resolve().parents[1]


def _start(images: Path, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "seedzoo", "train", "--preset", "smoke", "--out", str(out), "device=cpu",
           "data.source=image_folder", f"data.path={images}", "data.workers=2", "data.image_size=16",
           "global_batch=8", "distill.queue_size=32", "epochs=1000", "monitor.knn_every=0", "save_every=2",
           "student.arch=test_efficientnet", "teacher.arch=test_resnet", "teacher.head_hidden=96"]
    return subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.mark.slow
def test_interrupts_with_loader_workers_end_in_one_line(tmp_path):
    images = write_image_folder(tmp_path / "train", n=32)
    runs = {sig: _start(images, tmp_path / sig.name) for sig in (signal.SIGINT, signal.SIGTERM)}  # side by side
    try:
        for sig, child in runs.items():
            assert child.stdout is not None
            for line in child.stdout:  # interrupt once a checkpoint is on disk and the workers are running
                if line.startswith("saved checkpoint"):
                    break
            os.killpg(child.pid, sig)
        for sig, child in runs.items():
            _, err = child.communicate(timeout=120)
            assert child.returncode == 128 + sig, err[-3000:]
            lines = [x for x in err.splitlines() if x.strip()]
            assert "Traceback" not in err and "exited unexpectedly" not in err, err[-3000:]
            assert lines[-1].startswith(f"seedzoo: interrupted by {sig.name}: saved") and "--resume auto" in lines[-1]
            try:  # the loader's workers ended with it
                os.killpg(child.pid, 0)
                raise AssertionError(f"processes of the interrupted run are still alive: {err[-2000:]}")
            except ProcessLookupError:
                pass
    finally:
        for child in runs.values():
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
