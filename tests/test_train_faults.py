"""Faults against the trainer's files, seeded and bounded: bit flips and truncations of checkpoints, a fuzz
of the checkpoint reader, kills during a save, a full disk, foreign files given to --resume. Each ends in
a one-line refusal or in a run that resumes from the newest intact checkpoint; nothing corrupt loads."""
from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from seedzoo.cli import main
from seedzoo.training.checkpoint import (
    VERSION,
    CheckpointError,
    CheckpointSaveError,
    DamagedCheckpointError,
    checkpoint_path,
    list_checkpoints,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
    state_digest,
)
from seedzoo.training.engine import NonFiniteLossError
from seedzoo.training.memory import footprint

from test_train import assert_same_state, run, tensors, tiny_config, write_image_folder

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("data") / "train")


def tiny_state(step: int = 1) -> dict:
    g = torch.Generator().manual_seed(step)
    return {"step": step, "epoch": 0, "loss": 1.5,
            "student": {"conv.weight": torch.randn(4, 3, 3, 3, generator=g), "conv.bias": torch.zeros(4)},
            "objective": {"queue": {"queue": torch.randn(8, 4, generator=g), "ptr": torch.tensor(3)}},
            "optimizer": {"state": {0: {"momentum_buffer": torch.randn(4, generator=g)}},
                          "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0], "foreach": None}]},
            "scaler": {}, "rng": {"torch": torch.get_rng_state()}, "config": {"seed": 0}, "config_hash": "ab"}


def tensor_offset(path: Path, member_suffix: str) -> int:
    """Byte offset of a zip member's data (its local header is 30 bytes + name + extra)."""
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(member_suffix))
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
    return info.header_offset + 30 + name_len + extra_len


def flip_bit(path: Path, offset: int, bit: int = 6) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


# --- the file format -------------------------------------------------------------------------

def test_checkpoint_records_the_sha256_of_its_content_and_reads_back_verified(tmp_path):
    path = save_checkpoint(tiny_state(), tmp_path, 1)
    raw = torch.load(path, weights_only=True)
    assert raw["sha256"] == state_digest(raw) and len(raw["sha256"]) == 64
    state = read_checkpoint(path)
    assert torch.equal(state["student"]["conv.weight"], tiny_state()["student"]["conv.weight"])
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary file


def test_one_flipped_bit_in_tensor_data_is_refused_as_damaged(tmp_path):
    """torch ignores the zip CRCs: without the checks this file loads with one weight changed."""
    path = save_checkpoint(tiny_state(), tmp_path, 1)
    flip_bit(path, tensor_offset(path, "data/0") + 2)
    with pytest.raises(DamagedCheckpointError, match="is damaged: member .* fails its CRC check"):
        read_checkpoint(path)


def test_a_checkpoint_of_an_unreleased_earlier_layout_is_refused_naming_the_fix(tmp_path):
    path = tmp_path / "step.pt"
    state = {"format": "seedzoo-train", "version": VERSION - 1, **tiny_state()}
    state["sha256"] = state_digest(state)
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=f"version {VERSION - 1}; this seedzoo reads version {VERSION}: "
                                              "it cannot be resumed: start the run again with --overwrite"):
        read_checkpoint(path)


def test_content_that_no_longer_matches_its_sha256_is_refused(tmp_path):
    """A consistent archive (valid CRCs) whose content was changed after the hash was taken."""
    path = tmp_path / "step.pt"
    state = {"format": "seedzoo-train", "version": VERSION, **tiny_state()}
    state["sha256"] = state_digest(state)
    state["student"]["conv.bias"][0] = 6.1e36
    torch.save(state, path)
    with pytest.raises(DamagedCheckpointError, match="does not match the sha256 it records"):
        read_checkpoint(path)


@pytest.mark.parametrize("keep", [0, 1, 100, 0.5, 0.99])
def test_truncated_checkpoint_is_refused_as_damaged(tmp_path, keep):
    path = save_checkpoint(tiny_state(), tmp_path, 1)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    with pytest.raises(DamagedCheckpointError, match="is (damaged|empty)"):
        read_checkpoint(path)


def test_fuzzed_checkpoints_are_refused_or_read_intact(tmp_path):
    """300 seeded mutations (bit flips, byte runs, truncations, cuts, insertions): the reader either
    refuses with a CheckpointError or returns exactly the content that was saved, never anything else."""
    original = save_checkpoint(tiny_state(), tmp_path / "src", 1)
    data = original.read_bytes()
    expected = state_digest(read_checkpoint(original))
    rng = random.Random(0)
    target = tmp_path / "mutant.pt"
    outcomes = {"refused": 0, "intact": 0}
    for _ in range(300):
        mutant = bytearray(data)
        kind, at = rng.randrange(5), rng.randrange(len(data))
        if kind == 0:
            mutant[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            mutant[at:at + 8] = bytes(rng.randrange(256) for _ in range(8))
        elif kind == 2:
            del mutant[at:]
        elif kind == 3:
            del mutant[at:at + rng.randrange(1, 64)]
        else:
            mutant[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
        target.write_bytes(bytes(mutant))
        try:
            state = read_checkpoint(target)
        except CheckpointError:
            outcomes["refused"] += 1
        else:
            assert state_digest(state) == expected
            outcomes["intact"] += 1
    assert outcomes["refused"] > 250


class Evil:
    def __reduce__(self):
        return os.system, ("echo pwned",)


@pytest.mark.parametrize("kind, message", [
    ("text", "not a seedzoo training checkpoint: it is a text file"),
    ("empty", "is empty"),
    ("safetensors", "it is a safetensors weights file"),
    ("state_dict", "it is a PyTorch file holding a dict of 2 entries \\(2 tensors\\)"),
    ("zip", "it is a zip archive, not a PyTorch file"),
    ("evil_zip", "its pickle would import or call posix.system"),
    ("evil_pickle", "a pickle file .* that would call posix.system"),
])
def test_foreign_files_are_refused_in_one_line_saying_what_they_are(tmp_path, kind, message):
    path = tmp_path / "file.pt"
    if kind == "text":
        path.write_text("hello\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "safetensors":
        from safetensors.torch import save_file

        save_file({"w": torch.zeros(2)}, str(path))
    elif kind == "state_dict":
        torch.save({"w": torch.zeros(2), "b": torch.zeros(1)}, path)
    elif kind == "zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("readme.txt", "hi")
    elif kind == "evil_zip":
        torch.save({"x": Evil()}, path)
    else:
        path.write_bytes(pickle.dumps(Evil(), protocol=2))
    with pytest.raises(CheckpointError, match=message) as err:
        read_checkpoint(path)
    assert "\n" not in str(err.value) and "weights_only=False" not in str(err.value)


# --- the trainer -----------------------------------------------------------------------------

def test_damaged_latest_checkpoint_resumes_from_the_newest_intact_one(images, tmp_path, capsys):
    full = run(tiny_config(images), tmp_path / "full")
    run(tiny_config(images, "max_steps=6"), tmp_path / "cut")  # checkpoints at steps 2, 4, 6
    newest = checkpoint_path(tmp_path / "cut", 6)
    flip_bit(newest, tensor_offset(newest, "data/0") + 1)
    capsys.readouterr()
    resumed = run(tiny_config(images), tmp_path / "cut", resume="auto")
    err = capsys.readouterr().err
    assert "step_000000006.pt is damaged" in err and "resuming from the older step_000000004.pt" in err
    assert resumed.step == 8
    assert_same_state(load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint))
    steps = [r["step"] for r in map(json.loads, (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines())]
    assert steps == list(range(1, 9))  # truncated to the resume point, then continued


def test_every_checkpoint_damaged_is_a_refusal_not_a_fresh_start(images, tmp_path):
    run(tiny_config(images, "max_steps=4"), tmp_path / "r")
    for path in list_checkpoints(tmp_path / "r"):
        path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DamagedCheckpointError, match="no usable checkpoint .* all 2 are damaged"):
        run(tiny_config(images), tmp_path / "r", resume="auto")


def test_half_written_metrics_line_does_not_stop_resume(images, tmp_path):
    run(tiny_config(images, "max_steps=4"), tmp_path / "r")
    with open(tmp_path / "r" / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "epoch": 1, "lo')  # a kill in the middle of a write
    result = run(tiny_config(images, "max_steps=6"), tmp_path / "r", resume="auto")
    lines = (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()
    assert result.step == 6 and [json.loads(x)["step"] for x in lines] == [1, 2, 3, 4, 5, 6]


def test_weights_that_turn_non_finite_are_never_checkpointed(images, tmp_path):
    """The loss of step 1 is finite; the update it makes is not. With save_every=1 the old guard wrote
    that state and named it as the last good checkpoint."""
    run(tiny_config(images, "max_steps=2", "save_every=1"), tmp_path / "r")
    with pytest.raises(NonFiniteLossError, match=r"weights became non-finite at step 3 .*nothing was saved, "
                                                  r"the last good checkpoint is .*step_000000002\.pt"):
        run(tiny_config(images, "save_every=1", "optim.base_lr=1e38"), tmp_path / "r", resume="auto")
    for path in list_checkpoints(tmp_path / "r"):
        state = read_checkpoint(path)
        assert all(torch.isfinite(t).all() for t in tensors(state["students"]).values())
    assert [p.name for p in list_checkpoints(tmp_path / "r")][-1] == "step_000000002.pt"


def test_nan_learning_rate_is_refused_before_any_work(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--preset", "smoke", "--out", str(out), "optim.base_lr=nan", "save_every=1"]) == 2
    err = capsys.readouterr().err
    assert err == "seedzoo: error: optim.base_lr=nan: must be a finite number > 0\n" and not out.exists()


# --- partial files, kills and a full disk ----------------------------------------------------

HANG_IN_SAVE = """\
import os, sys, time
sys.path.insert(0, "tests")
import torch
from test_train import run, tiny_config
torch.set_num_threads(int(sys.argv[3]))  # the parent's: float sums depend on the thread count
real_fsync = os.fsync
def fsync(fd):  # the second checkpoint's data is written, the file not yet renamed: stop mid-save
    if os.readlink(f"/proc/self/fd/{fd}").endswith(f".step_000000004.pt.tmp{os.getpid()}"):
        print("in save", flush=True)
        time.sleep(600)
    real_fsync(fd)
os.fsync = fsync
run(tiny_config(sys.argv[1]), sys.argv[2])
"""


@pytest.mark.slow
def test_run_killed_during_a_save_resumes_to_the_uninterrupted_result_and_removes_the_partial_file(
        images, tmp_path, capsys):
    out = tmp_path / "cut"
    threads = str(torch.get_num_threads())
    child = subprocess.Popen([sys.executable, "-c", HANG_IN_SAVE, str(images), str(out), threads], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    assert any(line.strip() == "in save" for line in child.stdout), "the run ended before its second save"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    partial = [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".step_")]
    assert [p.name for p in partial] == [f".step_000000004.pt.tmp{child.pid}"]
    assert [p.name for p in list_checkpoints(out)] == ["step_000000002.pt"]  # complete, or absent

    capsys.readouterr()
    resumed = run(tiny_config(images), out, resume="auto")
    assert f"removed .step_000000004.pt.tmp{child.pid}" in capsys.readouterr().err
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".")]
    full = run(tiny_config(images), tmp_path / "full")
    assert_same_state(load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint))


def test_partial_files_of_dead_writers_are_removed_at_the_next_start_and_a_live_ones_kept(images, tmp_path):
    run(tiny_config(images, "max_steps=2"), tmp_path / "r")
    writer = subprocess.Popen(["true"])
    writer.wait()
    dead = [tmp_path / "r" / f".metrics.jsonl.tmp{writer.pid}", tmp_path / "r" / f".run.json.tmp{writer.pid}",
            tmp_path / "r" / "checkpoints" / f".step_000000004.pt.tmp{writer.pid}"]
    live = tmp_path / "r" / "checkpoints" / f".step_000000009.pt.tmp{os.getppid()}"
    for p in [*dead, live]:
        p.write_bytes(b"partial")
    run(tiny_config(images, "max_steps=3"), tmp_path / "r", resume="auto")
    assert not any(p.exists() for p in dead) and live.exists()


def test_full_disk_names_the_folder_and_the_space_and_leaves_nothing_behind(tiny_disk):
    big = {"step": 1, "student": {"w": torch.randn(300, 300)}}  # 360 kB: more than the disk
    with pytest.raises(CheckpointSaveError, match=r"no space left in .*checkpoints for a checkpoint: it needs "
                                                  r"0\.362 MB, 0\.2.* MB are free"):
        save_checkpoint(big, tiny_disk, 1)
    assert list((tiny_disk / "checkpoints").iterdir()) == []
    small = {"step": 2, "student": {"w": torch.randn(50, 50)}}
    assert read_checkpoint(save_checkpoint(small, tiny_disk, 2))["step"] == 2  # the next save succeeds


def test_write_that_runs_out_of_space_midway_removes_its_partial_file(tiny_disk, monkeypatch):
    """Another writer takes the space between the free-space check and the write: the write hits ENOSPC."""
    state = {"step": 1, "student": {"w": torch.randn(40, 1000)}}  # about 160 kB
    filler = tiny_disk / "filler"
    filler.write_bytes(b"\0" * 150_000)
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=10**9))
    with pytest.raises(CheckpointSaveError, match="no space left in"):
        save_checkpoint(state, tiny_disk, 1)
    monkeypatch.undo()
    assert list((tiny_disk / "checkpoints").iterdir()) == []
    filler.unlink()
    assert read_checkpoint(save_checkpoint(state, tiny_disk, 1))["step"] == 1


def test_run_on_a_full_disk_stops_in_one_line_and_resumes_once_space_is_freed(images, tiny_disk, capsys):
    filler = tiny_disk / "filler"
    first = run(tiny_config(images, "max_steps=2", "keep_last=1"), tiny_disk / "run")
    free = os.statvfs(tiny_disk).f_bavail * os.statvfs(tiny_disk).f_frsize
    filler.write_bytes(b"\0" * (free - first.checkpoint.stat().st_size // 2))  # room for all but a checkpoint
    with pytest.raises(CheckpointSaveError, match="no space left in"):
        run(tiny_config(images, "max_steps=4", "keep_last=1"), tiny_disk / "run", resume="auto")
    assert not [p for p in (tiny_disk / "run" / "checkpoints").iterdir() if p.name.startswith(".")]
    filler.unlink()
    assert run(tiny_config(images, "max_steps=4", "keep_last=1"), tiny_disk / "run", resume="auto").step == 4


# --- through the command line ----------------------------------------------------------------

@pytest.mark.parametrize("override, message", [
    ("epochs=0", "epochs=0: must be > 0"),
    ("max_steps=-3", "max_steps=-3: must be >= 0"),
    ("global_batch=0", "global_batch=0: must be > 0"),
    ("global_batch=60", "distill.queue_size=1024 is not a multiple of global_batch=60: use 1020 or 1080"),
    ("distill.teacher_temperature=-1", "distill.teacher_temperature=-1.0: must be a finite number > 0"),
    ("distill.student_temperature=inf", "distill.student_temperature=inf: must be a finite number > 0"),
    ("optim.base_lr=0", "optim.base_lr=0.0: must be a finite number > 0"),
    ("optim.base_lr=1e300", "optim.base_lr=1e+300: too large"),
    # the sizes are checked by the trainer, which names the student it checked
    ("data.image_size=100000", "smoke: data.image_size=100000 with global_batch=64: a step needs at least"),
    ("data.image_size=2", "data.image_size=2 is too small for the blur of data.blur_sigma=(0.1, 2.0)"),
    ("teacher.arch=vit_tiny_patch16_224", ("smoke: data.image_size=32 does not pass through "
                                          "teacher.arch=vit_tiny_patch16_224 (Input height (32) doesn't match")),
])
def test_nonsense_configs_are_refused_in_one_line_before_any_work(tmp_path, capsys, override, message):
    out = tmp_path / "run"
    assert main(["train", "--preset", "smoke", "--out", str(out), override]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"seedzoo: error: {message}") and err.count("\n") == 1
    assert not out.exists()


def test_memory_floor_grows_with_the_image_area():
    small, large = footprint("test_resnet", 32), footprint("test_resnet", 64)
    assert small.params == large.params > 0
    assert 3.5 * small.activations < large.activations < 4.5 * small.activations


def test_half_written_metrics_line_does_not_stop_plot(images, tmp_path):
    pytest.importorskip("matplotlib")
    run(tiny_config(images, "max_steps=2"), tmp_path / "r")
    with open(tmp_path / "r" / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "ep')
    assert main(["plot", str(tmp_path / "r")]) == 0


def test_every_problem_of_a_config_is_listed_at_once(capsys):
    assert main(["train", "--preset", "smoke", "epochs=0", "global_batch=-1", "moco.temperature=0",
                 "distill.teacher_temperature=nan", "--print-config"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("=")[0] for line in lines] == ["seedzoo: error: epochs", "seedzoo: error: global_batch",
                                                       "seedzoo: error: distill.teacher_temperature"]


def test_duplicate_yaml_keys_are_an_error_naming_both_lines(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("epochs: 2\noptim:\n  base_lr: 0.1\n  base_lr: 0.2\nepochs: 3\n")
    assert main(["train", str(recipe), "--print-config"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"seedzoo: error: {recipe}, line 4: key 'base_lr' is given twice (first on line 3); keep one",
        f"seedzoo: error: {recipe}, line 5: key 'epochs' is given twice (first on line 1); keep one"]


@pytest.mark.parametrize("content", [b"hello\n", b"", b"PK\x03\x04garbage"])
def test_foreign_file_as_resume_is_one_line_and_writes_nothing(images, tmp_path, capsys, content):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"device: cpu\nglobal_batch: 8\ndistill: {{queue_size: 32}}\n"
                      f"data: {{source: image_folder, path: {images}, image_size: 16, workers: 0}}\n")
    out = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(out), "--resume", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"seedzoo: error: {bad} is ") and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()
