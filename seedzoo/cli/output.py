"""`--json [FILE]`, shared by the commands that report a result: a file, or stdout for `-` (the default).

When the JSON goes to stdout, the command's human-readable lines go to stderr, so that
`seedzoo eval ... --json - | jq .metrics` reads clean JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from ..files import write_atomic

STDOUT = "-"


def add_json_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", nargs="?", const=STDOUT, metavar="FILE",
                        help=f"write {what} as JSON to FILE; `-` or no FILE: stdout (the table goes to stderr)")


def human(args: argparse.Namespace) -> TextIO:
    """Where the human-readable output goes: stderr when the JSON takes stdout."""
    return sys.stderr if getattr(args, "json", None) == STDOUT else sys.stdout


def write_json(data: Any, dest: str) -> Path | None:
    """Write `data` to `dest` (`-`: stdout); returns the file written, None for stdout."""
    text = json.dumps(data, indent=2) + "\n"
    if dest == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return None
    return write_atomic(dest, text)
