"""How fast the command line answers: `seedzoo --help`, `--version`, `list` and `info` against
`python -c "import torch"`, each a fresh interpreter, interleaved in every repeat.

Prints the median wall time of each command (seconds) and its ratio to importing torch; the target
is at most one third for `--help` and `--version`. The commands run as `python -m seedzoo` with the
interpreter running this script, so the installed console script's own start-up is not counted.

    python benchmarks/cli_startup.py [--repeats 7]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    'python -c "import torch"': ["-c", "import torch"],
    "seedzoo --help": ["-m", "seedzoo", "--help"],
    "seedzoo --version": ["-m", "seedzoo", "--version"],
    "seedzoo list": ["-m", "seedzoo", "list"],
    "seedzoo info seed_mbv3_large": ["-m", "seedzoo", "info", "seed_mbv3_large"],
}
BASELINE = 'python -c "import torch"'
TARGET = {"seedzoo --help": 1 / 3, "seedzoo --version": 1 / 3}


def _seconds(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="one repeat: checks that every command runs")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    for cmd in COMMANDS.values():  # warm the file cache and the bytecode of every module
        _seconds(cmd)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(repeats):
        for name, cmd in COMMANDS.items():
            times[name].append(_seconds(cmd))
    base = statistics.median(times[BASELINE])
    print(f"{'command':<32}{'median s':>10}{'spread s':>10}{'/ import torch':>16}  target")
    for name, values in times.items():
        median = statistics.median(values)
        target = f"<= {TARGET[name]:.2f}" if name in TARGET else ""
        print(f"{name:<32}{median:>10.3f}{max(values) - min(values):>10.3f}{median / base:>16.2f}  {target}")


if __name__ == "__main__":
    main()
