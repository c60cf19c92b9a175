"""A run folder holds one run: a new run is refused where another one lives, and a finished run says so.

While a run works in its folder it holds the folder's lock (`hold_run_folder`): a second writer
(`--overwrite`, `--resume auto`, or a new run) is refused in one line naming the live run's PID. The lock
is the kernel's (`flock`) on `.seedzoo-run.lock`, so it goes with its process however that ends (exit,
SIGTERM, a crash, SIGKILL): a lock file left by a dead process is simply taken over.

What a run writes into its folder is listed here (`RUN_FILES`, `RUN_DIRS`); `--overwrite` removes exactly
those and nothing else a user may have put beside them. `run.json` is written when a run has finished
(its checkpoint, losses, kNN and exports): resuming it with the same configs then changes nothing.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import SeedzooError
from ..files import remove_partial_files, write_atomic
from .checkpoint import CHECKPOINT_DIR

RUN_FILE = "run.json"
CONFIG_FILE = "config.yaml"  # one YAML document per student
PLAN_FILE = "device_plan.json"
EXPORT_DIR = "export"  # one model folder per student: export/<name>/
BAGS_FILE = "neighbours.safetensors"  # the teacher's nearest neighbours of every image (training.neighbours)
CHOICES_FILE = "choices.json"  # how a recipe was scaled to the data (`seedzoo distill`)
RUN_FILES = (RUN_FILE, CONFIG_FILE, PLAN_FILE, CHOICES_FILE, "metrics.jsonl", "metrics.csv", "metrics.png", BAGS_FILE)
RUN_DIRS = (CHECKPOINT_DIR, "tensorboard", EXPORT_DIR)
LOCK_FILE = ".seedzoo-run.lock"


def export_dir(run_dir: str | Path, student: str) -> Path:
    """Where a run exports its student `student`, however many students it trains."""
    return Path(run_dir) / EXPORT_DIR / student


class RunFolderError(SeedzooError, FileExistsError):
    """The run folder holds another run, and neither --resume nor --overwrite says what to do with it."""


class RunFolderBusyError(RunFolderError):
    """Another live process is running in the folder."""


def _holder(fd: int) -> str:
    """Who holds the lock, as its file says ("PID 123 on host")."""
    try:
        pid, _, host = os.pread(fd, 256, 0).decode("utf-8", "replace").strip().partition(" ")
    except OSError:
        return "another process"
    if not pid.isdigit():
        return "another process"
    return f"PID {pid}" + (f" on {host}" if host and host != socket.gethostname() else "")


@contextmanager
def hold_run_folder(run_dir: str | Path) -> Iterator[None]:
    """Hold `run_dir`'s lock for the block; refuse with `RunFolderBusyError` if a live process holds it."""
    run_dir = Path(run_dir)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    for _ in range(100):  # only a release racing this acquire makes it go round; bounded all the same
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = _holder(fd)
            os.close(fd)
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise RunFolderError(f"cannot lock {path}: {err.strerror} (a file system without locks?); "
                                     "choose an --out on a local disk") from None
            raise RunFolderBusyError(f"{run_dir} is in use by a live seedzoo run ({holder}): wait for it to end "
                                     "(or stop it) before --overwrite or --resume, or choose another --out") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:  # the holder removed it as it released it: lock the new file instead
            same = False
        if same:
            break
        os.close(fd)
    else:
        raise RunFolderError(f"could not lock {path}: it keeps being replaced")
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)  # before the release: a waiting process then locks a new file
        os.close(fd)
        if created:
            try:
                run_dir.rmdir()  # a run refused before it wrote anything leaves no empty folder
            except OSError:
                pass


def run_contents(run_dir: str | Path) -> list[str]:
    """The names of what a run wrote that `run_dir` holds (empty folders do not count)."""
    run_dir = Path(run_dir)
    found = [name for name in RUN_FILES if (run_dir / name).is_file()]
    found += [name for name in RUN_DIRS if (run_dir / name).is_dir() and any((run_dir / name).iterdir())]
    return found


PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the installed seedzoo package


def check_run_folder(run_dir: str | Path, resume: str | None, overwrite: bool) -> None:
    """Refuse a new run into a folder that holds one, unless it is resumed or overwritten, and any run into
    the installed package (a reinstall or upgrade would delete it, and the package's data would mix with it)."""
    if Path(run_dir).resolve().is_relative_to(PACKAGE_DIR):
        raise RunFolderError(f"--out {run_dir} lies inside the installed seedzoo package ({PACKAGE_DIR}): choose a "
                             "folder of your own, e.g. --out runs/NAME")
    if resume and overwrite:
        raise RunFolderError("give --resume (continue the run) or --overwrite (start it over), not both")
    if resume or overwrite:
        return
    found = run_contents(run_dir)
    if found:
        raise RunFolderError(f"{run_dir} holds a run ({', '.join(found)}): continue it with --resume auto, "
                             "start it over with --overwrite (removes its checkpoints, metrics and export), "
                             "or choose another --out")


def clear_run(run_dir: str | Path) -> list[str]:
    """Remove what an earlier run wrote into `run_dir` (for --overwrite); returns the names removed."""
    run_dir = Path(run_dir)
    removed = run_contents(run_dir)
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for name in RUN_DIRS:
        if (run_dir / name).is_dir():
            shutil.rmtree(run_dir / name)
    return removed


def read_finished(run_dir: str | Path) -> dict[str, Any] | None:
    """The record of a run that finished, or None (none, or unreadable: the run is then finished again)."""
    path = Path(run_dir) / RUN_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("status") == "finished" else None


def is_finished(record: dict[str, Any] | None, step: int, config_hashes: dict[str, str]) -> bool:
    """Whether `record` says the run finished at `step` with these configs (by student name)."""
    if record is None or record.get("step") != step:
        return False
    students = record.get("students")
    return isinstance(students, dict) and {n: s.get("config_hash") for n, s in students.items()} == config_hashes


def mark_finished(run_dir: str | Path, record: dict[str, Any]) -> None:
    """Write run.json atomically: a kill leaves the old record or the new one."""
    write_atomic(Path(run_dir) / RUN_FILE, json.dumps({"status": "finished", **record}, indent=2) + "\n")


def remove_leftovers(run_dir: str | Path) -> list[tuple[Path, int]]:
    """Remove the partial files that killed writes left in the run folder and its checkpoints."""
    return remove_partial_files(run_dir, Path(run_dir) / CHECKPOINT_DIR)
