"""seedzoo.files.write_atomic: a file is written whole or not at all, readable as the umask says."""
from __future__ import annotations

import os
import stat
import subprocess

import pytest

from seedzoo.files import DiskFullError, WriteError, partial_path, write_atomic


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_written_file_has_the_mode_the_umask_gives_not_600(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_atomic(tmp_path / "shared.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.read_bytes() == b"x"


def test_text_bytes_and_a_writer_function_all_arrive_whole(tmp_path):
    assert write_atomic(tmp_path / "a.txt", "é\n").read_text(encoding="utf-8") == "é\n"
    assert write_atomic(tmp_path / "b.bin", memoryview(b"abc")).read_bytes() == b"abc"
    assert write_atomic(tmp_path / "c.bin", lambda f: f.write(b"streamed")).read_bytes() == b"streamed"
    assert write_atomic(tmp_path / "new" / "d.txt", "in a new folder").is_file()
    assert leftovers(tmp_path) == []


def test_a_failed_check_leaves_the_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous")

    def refuse(tmp):
        assert tmp.read_bytes() == b"new"  # the check sees the complete file, under its temporary name
        raise ValueError("does not match")

    with pytest.raises(ValueError, match="does not match"):
        write_atomic(target, b"new", check=refuse)
    assert target.read_bytes() == b"previous" and leftovers(tmp_path) == []


def test_an_interrupt_mid_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "features.npy"
    target.write_bytes(b"previous")

    def interrupted(f):
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, interrupted)
    assert target.read_bytes() == b"previous" and leftovers(tmp_path) == []


def test_what_a_killed_writer_left_is_removed_by_the_next_write_and_a_live_writers_kept(tmp_path):
    writer = subprocess.Popen(["true"])
    writer.wait()
    dead = tmp_path / f".out.npy.tmp{writer.pid}"
    live = tmp_path / f".out.npy.tmp{os.getppid()}"
    for p in (dead, live):
        p.write_bytes(b"partial")
    write_atomic(tmp_path / "out.npy", b"whole")
    assert not dead.exists() and live.exists()


def test_a_folder_that_cannot_be_written_is_one_line_naming_the_path(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(WriteError, match=r"cannot write .*a_file/out.txt: .*choose another path") as info:
        write_atomic(tmp_path / "a_file" / "out.txt", "x")
    assert "\n" not in str(info.value) and not str(info.value).startswith("[Errno")


def test_a_full_disk_is_one_line_naming_the_folder_and_keeps_the_previous_file(tiny_disk):
    target = tiny_disk / "embeddings.npy"
    target.write_bytes(b"previous")
    with pytest.raises(DiskFullError, match=r"no space left in .* for embeddings\.npy: it needs 1 MB, .* are free; "
                                            r"free some space") as info:
        write_atomic(target, b"\0" * 1_000_000)  # known size: refused before writing
    assert "\n" not in str(info.value)
    with pytest.raises(DiskFullError, match="no space left in"):  # streamed: fails mid-write
        write_atomic(target, lambda f: [f.write(b"\0" * 65536) for _ in range(16)])
    assert target.read_bytes() == b"previous" and leftovers(tiny_disk) == []
    assert not partial_path(target).exists()


def test_weights_follow_the_umask(tmp_path):
    import torch

    from seedzoo.weights.io import save_weights

    old = os.umask(0o027)
    try:
        save_weights(tmp_path / "model.safetensors", {"w": torch.zeros(2)}, None, {"architecture": "resnet18"})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "model.safetensors").stat().st_mode) == 0o640
