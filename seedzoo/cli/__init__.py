"""The `seedzoo` command: a thin layer over the library. Each module below adds its sub-commands."""
from __future__ import annotations

import argparse
import importlib
import signal
import sys

# Each module defines `register(subparsers)`, which adds sub-commands whose `func(args)` runs them.
_COMMAND_MODULES = ("zoo", "weights", "train", "evaluate", "demo")
DESCRIPTION = ("SEED-distilled vision backbones: list and inspect the zoo, fetch and verify weights, "
               "train (distil or pre-train), evaluate.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seedzoo", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # `kill` (SIGTERM) stops a run like Ctrl-C: cleanup runs (stage timings are kept, the last checkpoint
    # is intact), and a background job, which ignores SIGINT, can still be stopped cleanly.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
