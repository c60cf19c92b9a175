"""Signals and pipes through the `seedzoo` command, in real subprocesses: SIGTERM and SIGINT end a command
in one line saying what was saved, with nothing partial left and nothing that was there lost; a closed
stdout pipe ends it quietly; a full disk is one line."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seedzoo.cli import main

REPO = Path(__file__).resolve().parents[1]
MODEL = "test_resnet"  # timm's smallest ResNet: the commands' cost is mostly the start
ENV = {**os.environ, "PYTHONPATH": str(REPO), "SEEDZOO_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}

# Runs `seedzoo ARGS...`, but stops in the fsync of the temporary file that will become TARGET (the file
# is complete, not yet renamed) and says so: the moment a kill does the most harm.
HANG_BEFORE_RENAME = """
import os, sys, time
target = sys.argv[1]
real_fsync = os.fsync
def fsync(fd):
    name = os.readlink(f"/proc/self/fd/{fd}")
    if os.path.basename(name) == f".{os.path.basename(target)}.tmp{os.getpid()}":
        print("writing", flush=True)
        time.sleep(600)
    real_fsync(fd)
os.fsync = fsync
from seedzoo.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture()
def images(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / f"{i}.png")
    return root


def _hang(target: Path, *args: str) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", HANG_BEFORE_RENAME, str(target), *args], cwd=REPO, env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.strip() == "writing", f"the command ended before writing {target}: {child.communicate()}"
    return child


@pytest.mark.slow
def test_sigterm_mid_embed_keeps_the_previous_file_and_ends_in_one_line(images, tmp_path):
    out = tmp_path / "features.npy"
    out.write_bytes(b"the previous features")
    child = _hang(out, "embed", MODEL, str(images), "--random-init", "--out", str(out), "--device", "cpu", "--quiet")
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines() == ["seedzoo: interrupted by SIGTERM: nothing was saved; no partial file "
                                        "was left; run the same command again to finish"]
    assert out.read_bytes() == b"the previous features"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.npy", "images"]


@pytest.mark.slow
def test_sigint_after_the_features_names_them_as_saved(images, tmp_path):
    out = tmp_path / "features.npy"
    child = _hang(tmp_path / "features.files.txt", "embed", MODEL, str(images), "--random-init", "--out", str(out),
                  "--device", "cpu", "--quiet")
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 128 + signal.SIGINT
    assert err.strip().splitlines() == [f"seedzoo: interrupted by SIGINT: saved 1 complete file ({out}); no partial "
                                        "file was left; run the same command again to finish"]
    assert np.load(out).shape == (3, 96)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.npy", "images"]


@pytest.mark.slow
def test_sigkill_mid_export_leaves_the_previous_onnx_and_the_next_export_clears_its_temporary(tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "model.onnx"
    out.write_bytes(b"the previous export")
    args = ["export", MODEL, "--random-init", "--onnx", str(out), "--input-size", "32"]
    child = _hang(out, *args)
    child.kill()
    child.wait(timeout=60)
    assert out.read_bytes() == b"the previous export"  # the unfinished file never took the name
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [f".model.onnx.tmp{child.pid}"]
    assert main(args) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
    assert out.read_bytes()[:20] != b"the previous export"


@pytest.mark.parametrize("argv", [["list"], ["info", "seed_r18"]])  # more than a pipe's buffer, and a few lines
def test_a_closed_stdout_pipe_ends_quietly(argv):
    child = subprocess.Popen([sys.executable, "-m", "seedzoo", *argv], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    child.stdout.close()  # the reader is gone before the first line (`seedzoo list | head -0`)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 0 and err == ""


def test_embed_on_a_full_disk_is_one_line_and_keeps_the_previous_file(images, tiny_disk, capsys):
    out = tiny_disk / "features.pt"
    out.write_bytes(b"the previous features")
    free = os.statvfs(tiny_disk).f_bavail * os.statvfs(tiny_disk).f_frsize
    (tiny_disk / "filler").write_bytes(b"\0" * (free - 1024))
    capsys.readouterr()
    assert main(["embed", MODEL, str(images), "--random-init", "--out", str(out), "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.fullmatch(
        rf"seedzoo: error: no space left in {tiny_disk} for features.pt: it needs 0.00\d+ MB, [\d.]+ MB are free; "
        r"free some space, then run the command again \(the file there before, if any, is unchanged\)", err[0])
    assert out.read_bytes() == b"the previous features"
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["features.pt", "filler"]


def test_eval_feature_cache_on_a_full_disk_is_one_line_and_leaves_nothing(tiny_disk, capsys):
    free = os.statvfs(tiny_disk).f_bavail * os.statvfs(tiny_disk).f_frsize
    (tiny_disk / "filler").write_bytes(b"\0" * (free - 8192))
    capsys.readouterr()
    assert main(["eval", MODEL, "--random-init", "--dataset", "digits", "--limit", "100", "--input-size", "16",
                 "--cache-dir", str(tiny_disk / "cache"), "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"seedzoo: error: no space left in {tiny_disk / 'cache'} for features-")
    assert list((tiny_disk / "cache").iterdir()) == []


def test_onnx_export_on_a_full_disk_is_one_line_and_keeps_the_previous_file(tiny_disk, capsys):
    pytest.importorskip("onnxruntime")
    out = tiny_disk / "model.onnx"
    out.write_bytes(b"the previous export")
    free = os.statvfs(tiny_disk).f_bavail * os.statvfs(tiny_disk).f_frsize
    (tiny_disk / "filler").write_bytes(b"\0" * (free - 4096))
    capsys.readouterr()
    assert main(["export", MODEL, "--random-init", "--onnx", str(out), "--input-size", "32"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"seedzoo: error: no space left in {tiny_disk} for model.onnx: it needs ")
    assert out.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler", "model.onnx"]
