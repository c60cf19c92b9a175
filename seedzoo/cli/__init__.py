"""The `seedzoo` command: a thin layer over the library. Each module below adds its sub-commands.

A failure the user can fix ends the command with one line, `seedzoo: error: <problem and fix>`, and
exit status 2; anything else with one line naming the exception and status 1. `--debug` (before or
after the command) shows the full traceback instead.

The command line answers at once: `seedzoo --help`, `--version` and the look-ups (`list`, `info`,
`cards`) import neither torch nor timm. Every command module is imported to build the parser, so a
command module imports only the standard library and seedzoo's light modules (`errors`, `zoo`, `cards`,
`cli.output`, `cli.lazy`) at its top, and whatever loads torch or timm inside the function that runs the
command; a choice list kept in such a module is a `LazyChoices`. tests/test_cli.py holds every command
module to this.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import select
import signal
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from .. import __version__
from ..errors import SeedzooError
from ..files import written_files

# Each module defines `register(subparsers)`, which adds sub-commands whose `func(args)` runs them
# (heavy imports inside `func`: see the module docstring).
_COMMAND_MODULES = ("zoo", "weights", "train", "distill", "evaluate", "embed", "demo")
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


def _worker_message(err: BaseException) -> str | None:
    """The original message of an error a DataLoader worker raised: torch re-raises it in the main process
    with the worker's whole traceback as its text ("Caught X in DataLoader worker process 0. Original
    Traceback ..."); its last line is the error as the worker saw it."""
    text = str(err)
    if "in DataLoader worker process" not in text or "Original Traceback" not in text:
        return None
    last = text.strip().splitlines()[-1]
    return last.split(": ", 1)[1] if ": " in last else last


def describe_error(err: BaseException) -> tuple[str, int]:
    """(one line naming the problem and, where known, the fix; the exit status) for an exception."""
    text = " ".join((_worker_message(err) or str(err)).split())  # one line, whatever the message looked like
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
    # Raised where the command is, so that its cleanup runs (partial files removed); the signal's name
    # travels as the argument.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def interrupted_message(err: KeyboardInterrupt, saved: list[Path], hint: str | None = None) -> tuple[str, int]:
    """(the one line an interrupted command ends with: the files it `saved` and how to continue; the exit
    status, 128 + the signal's number as a shell reports it)."""
    name = err.args[0] if err.args and err.args[0] in signal.Signals.__members__ else "SIGINT"
    signum = signal.Signals[name]
    if saved:
        names = ", ".join(str(p) for p in saved[-3:]) + (f" and {len(saved) - 3} more" if len(saved) > 3 else "")
        done = f"saved {len(saved)} complete file{'s' if len(saved) > 1 else ''} ({names})"
    else:
        done = "nothing was saved"
    how = hint or "run the same command again to finish"
    return (f"seedzoo: interrupted by {name}: {done}; no partial file was left; {how}",
            128 + int(signum))


def _stdout_closed() -> bool:
    """Whether stdout's reader has gone (`seedzoo list | head -1`), as opposed to a broken socket."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poll.poll(0))  # a pipe with no reader left
    except (OSError, ValueError, AttributeError):  # no poll here, or stdout is no file
        return False


def run_command(command: Callable[[], int], debug: bool = False,
                hint: Callable[[], str | None] = lambda: None) -> int:
    """Run `command` as the CLI does: SIGTERM stops it like Ctrl-C, and either ends in one line saying
    what was saved and how to continue (`hint()`, default: run it again); a closed stdout pipe ends it
    quietly; any other failure ends in one line (`describe_error`), or its traceback with `debug`."""
    # `kill` (SIGTERM) stops a command like Ctrl-C: cleanup runs (partial files are removed, stage timings
    # kept, the last checkpoint intact), and a background job, which ignores SIGINT, stops cleanly too.
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGINT)}
    before = len(written_files())
    try:
        status = int(command() or 0)
        sys.stdout.flush()  # a reader that left shows here, handled below, not in the interpreter's exit
        return status
    except KeyboardInterrupt as err:
        for s in previous:  # a second signal must not cut the message short
            signal.signal(s, signal.SIG_IGN)
        message, status = interrupted_message(err, written_files()[before:], hint())
        print(message, file=sys.stderr)
        return status
    except BrokenPipeError:
        if not _stdout_closed():
            raise
        # The reader had what it wanted: no error. Point stdout at /dev/null so that the interpreter's
        # final flush of what is still buffered does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:  # every failure ends in one line unless --debug asks for the traceback
        if debug:
            raise
        message, status = describe_error(err)
        print(f"seedzoo: error: {message}", file=sys.stderr)
        return status
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


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
    argv = list(sys.argv[1:] if argv is None else argv)
    parsed: list[argparse.Namespace] = []

    def command() -> int:  # parsing imports the commands' modules: a signal then is handled too
        parsed.append(parse_args(argv))
        return int(parsed[0].func(parsed[0]) or 0)

    # A command may say how to continue after an interrupt (`set_defaults(interrupt_hint=...)`).
    return run_command(command, debug="--debug" in argv,
                       hint=lambda: getattr(parsed[0], "interrupt_hint", None) if parsed else None)
