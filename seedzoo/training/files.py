"""Atomic writes for a run's files, and the removal of the partial files that a killed write leaves.

A file is written as `.<name>.tmp<pid>` beside its target, then renamed over it: a kill leaves the old
file or the new one, never half of one. What a kill leaves behind is the temporary file; it is removed
on failure, and by `remove_partial_files` on the next start once the process named in it is gone.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from ..weights.cache import process_alive

_PARTIAL = re.compile(r"^\..+\.tmp(\d+)$")


def partial_path(path: Path) -> Path:
    """The temporary file this process writes `path` through."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename (removed if the write fails)."""
    path = Path(path)
    tmp = partial_path(path)
    try:
        if isinstance(data, str):
            tmp.write_text(data)
        else:
            tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
            m = _PARTIAL.match(p.name)
            if m and p.is_file() and (int(m.group(1)) == os.getpid() or not process_alive(int(m.group(1)))):
                size = p.stat().st_size
                p.unlink(missing_ok=True)
                removed.append((p, size))
    return removed
