"""The one way seedzoo writes a file: whole or not at all, and readable as the umask says.

A file is written as `.<name>.tmp<pid>` beside its target (the same file system, so the rename is
atomic), flushed and fsynced, optionally checked, then renamed over the target, and the folder is
fsynced: a kill leaves the old file or the new one, never half of one, and a failed check leaves the
old one. The temporary file is created by `open()`, so its mode is 0o666 less the umask, as any other
file the user creates (`tempfile.mkstemp` would give 0o600, unreadable to the group a shared export or
cache is meant for).

What a kill leaves behind is the temporary file: it is removed when the write fails, by the next write
to the same target, and by `remove_partial_files` (a run folder's start), once the process named in it
is gone. A full disk raises `DiskFullError`, one line that names the folder and the space needed.
"""
from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .errors import SeedzooError

__all__ = ["DiskFullError", "WriteError", "disk_full", "fsync_dir", "partial_path", "process_alive",
           "remove_partial_files", "write_atomic", "written_files"]

_PARTIAL = re.compile(r"^\..+\.tmp(\d+)$")
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)

Writer = Callable[[BinaryIO], object]


class WriteError(SeedzooError, OSError):
    """A file could not be written (permissions, a read-only file system, ...); the target is untouched."""

    def __init__(self, message: str, code: int = 0):
        super().__init__(message)
        self.errno = code  # the message stays one line: OSError(code, message) would prefix "[Errno N]"


class DiskFullError(WriteError):
    """No space was left for a file; nothing of it was left behind."""


def process_alive(pid: int) -> bool:
    """Whether process `pid` still runs (a partial file it left may still be being written)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def partial_path(path: str | Path) -> Path:
    """The temporary file this process writes `path` through."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def _is_partial_of_dead(p: Path) -> bool:
    m = _PARTIAL.match(p.name)
    return m is not None and p.is_file() and (int(m.group(1)) == os.getpid() or not process_alive(int(m.group(1))))


def remove_partial_files(*folders: str | Path) -> list[tuple[Path, int]]:
    """Remove the temporary files that killed writes left in `folders`; returns (path, size) of each.

    A file belongs to the process named in its suffix and is removed when that process is gone (or is
    this one, which has not started writing): a live writer's file is left alone.
    """
    removed = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            if _is_partial_of_dead(p):
                size = p.stat().st_size
                p.unlink(missing_ok=True)
                removed.append((p, size))
    return removed


def _mb(n: int) -> str:
    return f"{n / 1e6:.3g} MB"


def _free(folder: Path) -> int | None:
    """Bytes free in `folder`'s file system, None where it cannot tell."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def disk_full(folder: Path, name: str, needed: int | None) -> DiskFullError:
    """The one message for a full disk (the trainer's checkpoint says the same, with its own remedy)."""
    free = _free(folder)
    left = f"{_mb(free)} are free" if free is not None else "the free space is unknown"
    need = f"it needs {_mb(needed)}, {left}" if needed else left
    return DiskFullError(f"no space left in {folder} for {name}: {need}; free some space, then run "
                         "the command again (the file there before, if any, is unchanged)", errno.ENOSPC)


def fsync_dir(folder: Path) -> None:
    """Make a rename durable (a crash right after it must not bring back the old directory entry)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_WRITTEN: list[Path] = []  # this process's completed writes, oldest first


def written_files() -> list[Path]:
    """The files this process has written completely (an interrupted command names them)."""
    return list(_WRITTEN)


def write_atomic(path: str | Path, data: str | bytes | bytearray | memoryview | Writer, *,
                 check: Callable[[Path], object] | None = None) -> Path:
    """Write `data` to `path` whole or not at all; returns `path`.

    `data` is the content (text is UTF-8) or a function that writes into the open binary file.
    `check(tmp)` runs on the complete, fsynced temporary file before it is renamed into place: if it
    raises, the target is left as it was.
    A full disk raises `DiskFullError`, any other failure to write `WriteError`; the temporary file
    is removed on every failure, an interrupt included.
    """
    path = Path(path)
    name = path.name
    folder = path.parent
    payload = data.encode("utf-8") if isinstance(data, str) else data
    size = len(payload) if isinstance(payload, (bytes, bytearray, memoryview)) else None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _write_error(err, path, name, size) from None
    for p in folder.glob(f".{glob_escape(path.name)}.tmp*"):  # what a killed earlier write left
        if _is_partial_of_dead(p):
            p.unlink(missing_ok=True)
    free = _free(folder)
    if size is not None and free is not None and free < size:
        raise disk_full(folder, name, size)
    tmp = partial_path(path)
    try:
        with open(tmp, "wb") as f:
            if callable(payload):
                payload(f)
            else:
                f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        if check is not None:
            check(tmp)
        os.replace(tmp, path)
    except BaseException as err:  # a KeyboardInterrupt mid-write too: never leave the partial file
        written = tmp.stat().st_size if tmp.exists() else 0
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and not isinstance(err, SeedzooError):
            raise _write_error(err, path, name, size or written or None) from None
        raise
    fsync_dir(folder)
    _WRITTEN.append(path)
    return path


def _write_error(err: OSError, path: Path, name: str, size: int | None) -> WriteError:
    if err.errno in _NO_SPACE:
        return disk_full(path.parent, name, size)
    reason = (err.strerror or str(err)).lower()
    return WriteError(f"cannot write {path}: {reason}; check the folder's permissions, or choose another path",
                      err.errno or 0)


def glob_escape(name: str) -> str:
    """`name` with glob's special characters taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", name)
