"""The prepared GPU check runs end to end in its CPU dry-run form (the GPU itself is not checked here)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run_passes_every_check_on_cpu():
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(REPO / "benchmarks" / "gpu_check.sh"), "--dry-run"], check=False, cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for line in ("[ok] bf16 SEED steps", "[ok] fp16 SEED steps", "[ok] one-process gloo group",
                 "[ok] images/s (dry run)", "all checks passed"):
        assert line in proc.stdout, line
