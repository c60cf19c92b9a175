"""The `seedzoo` command: a thin layer over the library. Each module below adds its sub-commands.

A failure the user can fix ends the command with one line, `seedzoo: error: <problem and fix>`, and
exit status 2; anything else with one line naming the exception and status 1. `--debug` (before or
after the command) shows the full traceback instead.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import signal
import sys
from importlib import metadata

from .. import __version__
from ..errors import SeedzooError

# Each module defines `register(subparsers)`, which adds sub-commands whose `func(args)` runs them.
_COMMAND_MODULES = ("zoo", "weights", "train", "evaluate", "embed", "demo")
DESCRIPTION = ("SEED-distilled vision backbones: list and inspect the zoo, fetch and verify weights, "
               "train (distil or pre-train), evaluate, embed images, export to ONNX.")
USER_ERROR, UNEXPECTED_ERROR = 2, 1


def _version() -> str:
    def installed(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    return (f"seedzoo {__version__} (torch {installed('torch')}, timm {installed('timm')}, "
            f"Python {sys.version.split()[0]})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seedzoo", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    for command in sub.choices.values():  # `seedzoo eval ... --debug` works as well as `seedzoo --debug eval`
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show the full traceback of an error")
    return parser


# Messages torch gives when CUDA is asked for on a machine without a usable GPU.
_NO_CUDA = ("Torch not compiled with CUDA", "no NVIDIA driver", "CUDA driver", "no CUDA GPUs are available",
            "no CUDA device is available", "CUDA-capable device", "Invalid device id", "invalid device ordinal")
_OS_FIXES = {errno.ENOENT: "check the path", errno.EACCES: "check its permissions or choose another path",
             errno.EPERM: "check its permissions or choose another path", errno.ENOSPC: "free some disk space",
             errno.EISDIR: "a file was expected here, not a folder", errno.ENOTDIR: "a folder was expected here"}


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def describe_error(err: BaseException) -> tuple[str, int]:
    """(one line naming the problem and, where known, the fix; the exit status) for an exception."""
    text = " ".join(str(err).split())  # one line, whatever the library's message looked like
    if isinstance(err, SeedzooError):  # seedzoo's own refusals already name the problem and the fix
        return text or type(err).__name__, USER_ERROR
    if type(err).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without importing torch here
        return (f"out of GPU memory ({_first_line(str(err))}): lower the batch size (--batch-size, or "
                "global_batch=N for `seedzoo train`) or run on the CPU"), USER_ERROR
    if isinstance(err, (RuntimeError, AssertionError)) and any(hint in text for hint in _NO_CUDA):
        if "device=cpu" in text or "--device cpu" in text:  # seedzoo's own message already gives the fix
            return text, USER_ERROR
        return (f"CUDA is not usable on this machine ({_first_line(str(err))}): run on the CPU with "
                "--device cpu, or device=cpu for `seedzoo train`"), USER_ERROR
    if isinstance(err, OSError) and err.strerror and err.filename and text.startswith("[Errno"):
        # A bare error from the operating system: say which path, what happened and what to check.
        fix = _OS_FIXES.get(err.errno or 0, "")
        return f"{err.filename}: {err.strerror.lower()}" + (f"; {fix}" if fix else ""), USER_ERROR
    if type(err).__name__ == "UnidentifiedImageError":  # PIL, an OSError
        return f"{text}: not an image file PIL can read; remove or replace it", USER_ERROR
    if isinstance(err, (OSError, ValueError)) or type(err).__name__ == "UnknownModelError":
        return text or type(err).__name__, USER_ERROR
    return (f"{type(err).__name__}: {text} (unexpected; rerun with --debug for the traceback, and report it "
            "if it looks like a bug)"), UNEXPECTED_ERROR


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line parsed, with a command's positionals allowed after its options.

    argparse ends a `nargs="*"` positional at the first option, so in `train RECIPE --out X key=val` the
    `key=val` would be rejected; `parse_intermixed_args` does not work with sub-commands. A command that
    sets the default `positionals_after_options` to the name of its list gets such arguments appended.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    field: str | None = getattr(args, "positionals_after_options", None)
    if extra:
        if field is None or any(arg.startswith("-") for arg in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        getattr(args, field).extend(extra)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # `kill` (SIGTERM) stops a run like Ctrl-C: cleanup runs (stage timings are kept, the last checkpoint
    # is intact), and a background job, which ignores SIGINT, can still be stopped cleanly.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # every failure ends in one line unless --debug asks for the traceback
        if args.debug:
            raise
        message, status = describe_error(err)
        print(f"seedzoo: error: {message}", file=sys.stderr)
        return status
    finally:
        signal.signal(signal.SIGTERM, previous)
