"""Training checkpoints that verify themselves: atomic, finite, hashed, loadable with weights_only=True.

A checkpoint holds the run's step, epoch, RNG states (as tensors) and random-init teacher, and under
`students.<name>` each student's network (backbone + head), objective state (queues and pointers; MoCo's
key encoder), optimizer, GradScaler, RNG stream and resolved config with its hash. Files are
`RUN_DIR/checkpoints/step_<step>.pt`.

Every file records the sha256 of its own content (`sha256`: a canonical digest of every key, value and
tensor byte, computed before writing and again after reading), and is checked twice before use: the zip
CRC of each member before torch parses anything (torch itself ignores the CRCs), then the digest of what
was read. A file is written only from finite tensors, to a temporary file that is fsynced and renamed, so
a killed save leaves a complete file or none; the partial file is removed on failure, and on the next
start when a kill left it (`files.remove_partial_files`).
"""
from __future__ import annotations

import hashlib
import io
import math
import pickle
import re
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import SeedzooError
from ..files import DiskFullError, WriteError, write_atomic

CHECKPOINT_DIR = "checkpoints"
FORMAT = "seedzoo-train"
# The layout this seedzoo writes and reads: the run's step, epoch, RNG and random-init teacher at the top,
# each student's state under `students.<name>`, the sha256 of the content. Earlier versions were never
# released, and are refused.
VERSION = 3
_NAME = re.compile(r"step_(\d+)\.pt$")
DIGEST_KEY = "sha256"


class CheckpointError(SeedzooError, ValueError):
    """A file given or found as a checkpoint that cannot be used: not one, damaged, or unsafe."""


class DamagedCheckpointError(CheckpointError):
    """A seedzoo checkpoint whose bytes changed after it was written (bit flip, truncation)."""


class CheckpointSaveError(SeedzooError, OSError):
    """A checkpoint could not be written (disk full, read-only folder); nothing partial is left."""


class NonFiniteStateError(SeedzooError, FloatingPointError):
    """The state holds NaN or infinite tensors: it is not written, so every checkpoint on disk is good."""


# --- names -----------------------------------------------------------------------------------

def checkpoint_path(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{step:09d}.pt"


def checkpoint_step(path: str | Path) -> int | None:
    m = _NAME.search(Path(path).name)
    return int(m.group(1)) if m else None


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoints of a run, oldest first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(step, p) for p in folder.iterdir() if (step := checkpoint_step(p)) is not None]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest checkpoint file by step (not verified: `find_resume_point` verifies)."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


# --- content digest and finiteness ------------------------------------------------------------

def _walk(obj: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, leaf) for every leaf of nested dicts/lists/tuples, in their own (deterministic) order."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk(v, f"{path}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _walk(v, f"{path}/{i}")
    else:
        yield path, obj


def state_digest(state: dict[str, Any]) -> str:
    """sha256 over every key path, value and tensor byte of `state` (its own `sha256` key excluded).

    The digest is of the content, not of torch's zip layout, so it is the same before writing and after
    reading, on any device and in any process.
    """
    h = hashlib.sha256()
    for path, leaf in _walk({k: v for k, v in state.items() if k != DIGEST_KEY}):
        h.update(path.encode())
        if isinstance(leaf, torch.Tensor):
            t = leaf.detach().cpu().contiguous()
            h.update(f"|{t.dtype}|{tuple(t.shape)}|".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().data)
        else:
            h.update(f"|{type(leaf).__name__}|{leaf!r}|".encode())
    return h.hexdigest()


def non_finite_tensors(state: Any) -> list[str]:
    """Paths of the floating-point tensors (and floats) of `state` that hold a NaN or an infinity."""
    floats = [(path, leaf) for path, leaf in _walk(state) if isinstance(leaf, torch.Tensor)
              and (leaf.is_floating_point() or leaf.is_complex()) and leaf.numel()]
    # The largest magnitude of each tensor is finite exactly when the tensor is (amax propagates NaN);
    # it costs a reduction, where isfinite().all() materialises a mask.
    peaks = torch.stack([t.detach().abs().amax().float().cpu() for _, t in floats]) if floats else torch.ones(0)
    bad = [path for (path, _), ok in zip(floats, torch.isfinite(peaks).tolist()) if not ok]
    return bad + [path for path, leaf in _walk(state) if isinstance(leaf, float) and not math.isfinite(leaf)]


# --- writing ---------------------------------------------------------------------------------

def save_checkpoint(state: dict[str, Any], run_dir: str | Path, step: int, keep_last: int = 3) -> Path:
    """Write `state` as the checkpoint of `step` and keep only the newest `keep_last` (0: keep all).

    Refuses a state with non-finite tensors (`NonFiniteStateError`); on a full disk raises
    `CheckpointSaveError` naming the folder and the space needed, with no partial file left behind.
    """
    bad = non_finite_tensors({k: v for k, v in state.items() if k != "config"})
    if bad:
        shown = ", ".join(p.lstrip("/") for p in bad[:3]) + (", ..." if len(bad) > 3 else "")
        raise NonFiniteStateError(f"{len(bad)} non-finite tensor(s) in the training state ({shown})")
    payload = {"format": FORMAT, "version": VERSION, **state}
    payload[DIGEST_KEY] = state_digest(payload)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getbuffer()

    path = checkpoint_path(run_dir, step)
    folder = path.parent
    try:
        write_atomic(path, data)
    except DiskFullError:
        raise _no_space(folder, len(data), shutil.disk_usage(folder).free) from None
    except WriteError as err:
        raise CheckpointSaveError(f"cannot write a checkpoint into {folder}: {err}") from None
    if keep_last > 0:
        for old in list_checkpoints(run_dir)[:-keep_last]:
            old.unlink(missing_ok=True)
    return path


def _no_space(folder: Path, needed: int, free: int) -> CheckpointSaveError:
    return CheckpointSaveError(
        f"no space left in {folder} for a checkpoint: it needs {_mb(needed)}, {_mb(free)} are free; "
        "free some space (or lower keep_last), then continue with --resume auto")


def _mb(n: int) -> str:
    return f"{n / 1e6:.3g} MB"


def discard_after(run_dir: str | Path, step: int) -> list[Path]:
    """Remove the run's checkpoints newer than `step`, the point it resumes from: they belong to the
    continuation being replaced (or are damaged), and a later --resume auto must not pick them."""
    removed = [p for p in list_checkpoints(run_dir) if (checkpoint_step(p) or 0) > step]
    for p in removed:
        p.unlink(missing_ok=True)
    return removed


# --- reading ---------------------------------------------------------------------------------

def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A verified checkpoint: a file, or a run folder (its newest valid checkpoint).

    Raises `CheckpointError` (one line saying what the file is or what is wrong with it) for anything
    that is not an intact seedzoo training checkpoint. Nothing is unpickled beyond tensors and containers.
    """
    path = Path(path)
    if path.is_dir():
        point = find_resume_point(path)
        if point is None:
            raise CheckpointError(f"no checkpoint in {path / CHECKPOINT_DIR}")
        state = point.state
    else:
        state = read_checkpoint(path)
    return _to_device(state, map_location)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """One checkpoint file, verified (zip CRCs, then the recorded sha256), on the CPU."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file")
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        raise DamagedCheckpointError(f"{path} is empty (a save that never completed?)")
    if len(head) < 4 and b"PK\x03\x04".startswith(head):
        raise DamagedCheckpointError(f"{path} is damaged: truncated to {len(head)} byte(s)")
    if not head.startswith(b"PK\x03\x04"):
        raise CheckpointError(f"{path} is not a seedzoo training checkpoint: it is {_describe(head, path)}"
                              f"{_WEIGHTS_HINT}")
    _check_zip(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if (called := _unsafe_global(str(err))) is not None:
            raise CheckpointError(f"{path} is refused: its pickle would import or call {called}; nothing in it "
                                  "was run. It is not a seedzoo training checkpoint") from None
        raise DamagedCheckpointError(f"{path} is damaged: its pickle does not read ({_first_line(err)})") from None
    except Exception as err:  # noqa: BLE001 (torch raises RuntimeError, EOFError, ... on a damaged archive)
        raise DamagedCheckpointError(f"{path} is damaged: {_first_line(err)}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        what = f"a PyTorch file holding {_summary(state)}"
        raise CheckpointError(f"{path} is not a seedzoo training checkpoint: it is {what}{_WEIGHTS_HINT}")
    version = state.get("version")
    if version != VERSION:
        fix = "upgrade seedzoo" if isinstance(version, int) and version > VERSION else \
            "it cannot be resumed: start the run again with --overwrite"
        raise CheckpointError(f"{path} is a seedzoo training checkpoint of version {version!r}; this seedzoo "
                              f"reads version {VERSION}: {fix}")
    recorded = state.get(DIGEST_KEY)
    if not isinstance(recorded, str) or state_digest(state) != recorded:
        raise DamagedCheckpointError(f"{path} is damaged: its content does not match the sha256 it records")
    return state


_WEIGHTS_HINT = "; to start from weights, use student.pretrained=PATH instead of --resume"


def _check_zip(path: Path) -> None:
    """Every member's CRC-32, read before torch parses anything (a flipped bit fails here)."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if not any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
                raise CheckpointError(f"{path} is not a seedzoo training checkpoint: it is a zip archive, "
                                      "not a PyTorch file")
            bad = z.testzip()
    except CheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 (BadZipFile, EOFError, struct.error, ... from a mangled file)
        raise DamagedCheckpointError(f"{path} is damaged: not a readable zip archive "
                                     f"(truncated?): {_first_line(err)}") from None
    if bad is not None:
        raise DamagedCheckpointError(f"{path} is damaged: member {bad} fails its CRC check")


def _describe(head: bytes, path: Path) -> str:
    if head[:1] == b"\x80":
        called = _pickle_calls(path)
        return ("a pickle file (the old torch.save format, which is not read here)"
                + (f" that would call {', '.join(called)}" if called else ""))
    if len(head) >= 9 and head[8:9] == b"{":
        return "a safetensors weights file"
    with open(path, "rb") as f:
        chunk = f.read(4096)
    return "an unknown binary file" if b"\x00" in chunk else "a text file"


def _pickle_calls(path: Path, limit: int = 1 << 20) -> list[str]:
    """The globals a pickle would import, read from its opcodes without running any of them."""
    import pickletools

    found: list[str] = []
    strings: list[str] = []
    with open(path, "rb") as f:
        ops = pickletools.genops(io.BytesIO(f.read(limit)))
        try:
            for op, arg, _ in ops:
                if op.name == "GLOBAL" and isinstance(arg, str):
                    found.append(arg.replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(".".join(strings[-2:]))
                elif isinstance(arg, str):
                    strings.append(arg)
        except Exception:  # noqa: BLE001, S110 (a mangled pickle: what was read before it is reported)
            pass
    harmless = ("torch.", "collections.OrderedDict")
    return sorted({g for g in found if not g.startswith(harmless)})[:3]


def _summary(state: Any) -> str:
    if isinstance(state, dict):
        n = sum(isinstance(v, torch.Tensor) for v in state.values())
        if n:
            return f"a dict of {len(state)} entries ({n} tensors)"
        return f"a dict with keys {sorted(map(str, state))[:5]}"
    return f"a {type(state).__name__}"


def _unsafe_global(message: str) -> str | None:
    m = re.search(r"(?:Unsupported global|GLOBAL)[:\s]+(?:GLOBAL\s+)?([\w.]+)", message)
    return m.group(1) if m else None


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def _to_device(state: dict[str, Any], device: str | torch.device) -> dict[str, Any]:
    if torch.device(device).type == "cpu":
        return state

    def move(obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            return obj.to(device)
        if isinstance(obj, dict):
            return {k: move(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [move(v) for v in obj]
        return obj

    return move(state)


# --- choosing where to resume -----------------------------------------------------------------

@dataclass
class ResumePoint:
    """The checkpoint a run continues from, and the newer ones that were found damaged."""

    path: Path
    state: dict[str, Any]
    damaged: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def step(self) -> int:
        return int(self.state["step"])


def find_resume_point(run_dir: str | Path) -> ResumePoint | None:
    """The newest checkpoint of `run_dir` that verifies, or None when the run has none.

    Damaged newer ones are listed in `damaged` (the caller reports them); when every checkpoint is
    damaged, `DamagedCheckpointError` lists them all.
    """
    damaged: list[tuple[Path, str]] = []
    for path in reversed(list_checkpoints(run_dir)):
        try:
            return ResumePoint(path, read_checkpoint(path), damaged)
        except CheckpointError as err:
            damaged.append((path, str(err)))
    if damaged:
        raise DamagedCheckpointError(
            f"no usable checkpoint in {Path(run_dir) / CHECKPOINT_DIR}: all {len(damaged)} are damaged "
            f"(newest: {damaged[0][1]}); start the run again with --overwrite")
    return None


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def resolve_resume(resume: str | Path | None, run_dir: str | Path) -> ResumePoint | None:
    """Where `--resume` points: None (fresh run), "auto" (the newest valid checkpoint of `run_dir`, if
    any), a run folder (its newest valid one; it must have one) or a checkpoint file (that file)."""
    if not resume:
        return None
    if str(resume) == "auto":
        return find_resume_point(run_dir)
    path = Path(resume)
    if path.is_dir():
        point = find_resume_point(path)
        if point is None:
            raise CheckpointError(f"--resume {path}: no checkpoint in {path / CHECKPOINT_DIR}")
        return point
    return ResumePoint(path, read_checkpoint(path))
