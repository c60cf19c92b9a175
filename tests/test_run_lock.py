"""One run per folder: a live run's folder lock refuses a second writer (two real processes), and goes
with its process however that ends."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from seedzoo.training.run_folder import LOCK_FILE, RunFolderBusyError, hold_run_folder

from test_train import run, tiny_config, write_image_folder

REPO = Path(__file__).resolve().parents[1]
# Holds the folder's lock until its stdin closes (the test ends it, or its end closes the pipe).
_HOLDER = ("import sys\nfrom seedzoo.training.run_folder import hold_run_folder\n"
           "with hold_run_folder(sys.argv[1]):\n    print('held', flush=True)\n    sys.stdin.read()\n")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _start_holder(run_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _HOLDER, str(run_dir)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=_env())


def _held(proc: subprocess.Popen) -> subprocess.Popen:
    assert proc.stdout.readline() == "held\n"
    return proc


@pytest.mark.slow
def test_a_live_runs_folder_refuses_overwrite_and_resume(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text('{"step": 1}\n')  # the live run's files
    holder = _held(_start_holder(run_dir))
    try:
        cli = subprocess.run([sys.executable, "-m", "seedzoo", "train", "--preset", "smoke", "--out", str(run_dir),
                              "--overwrite", "device=cpu", "data.workers=0", "student.arch=test_efficientnet",
                              "teacher.arch=test_resnet", "teacher.head_hidden=96"],
                             cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
        assert cli.returncode == 2, cli.stderr[-2000:]
        assert cli.stderr.count("\n") == 1 and f"PID {holder.pid}" in cli.stderr and "in use" in cli.stderr
        images = write_image_folder(tmp_path / "train")
        with pytest.raises(RunFolderBusyError, match=f"PID {holder.pid}"):
            run(tiny_config(images), run_dir, resume="auto")
        assert (run_dir / "metrics.jsonl").read_text() == '{"step": 1}\n'  # nothing of it was touched
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


@pytest.mark.slow
def test_the_lock_goes_with_its_process(tmp_path):
    ends = {"exit": None, "sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL}
    holders = {name: _start_holder(tmp_path / name) for name in ends}  # started together: imports are slow
    for name, sig in ends.items():
        run_dir, holder = tmp_path / name, _held(holders[name])
        with pytest.raises(RunFolderBusyError):
            with hold_run_folder(run_dir):
                pass
        if sig is None:
            holder.stdin.close()
        else:
            holder.send_signal(sig)
        holder.wait(timeout=60)
        holder.stdin.close()
        # An exit removes the lock file; a signal that kills outright leaves it, naming a dead process: taken over.
        assert (run_dir / LOCK_FILE).exists() == (sig is not None)
        with hold_run_folder(run_dir):
            assert (run_dir / LOCK_FILE).read_text().split()[0] == str(os.getpid())
        assert not (run_dir / LOCK_FILE).exists()


def test_a_run_leaves_no_lock_behind(tmp_path):
    images = write_image_folder(tmp_path / "train")
    result = run(tiny_config(images, "max_steps=2"), tmp_path / "run")
    assert result.step == 2 and not (tmp_path / "run" / LOCK_FILE).exists()
    with hold_run_folder(tmp_path / "run"):  # free again
        pass
