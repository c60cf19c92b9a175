"""Convert one official SEED release file into a seedzoo model folder.

    python conversion/convert.py --entry seed_mbv3_large.mocov2_r50_200ep --src FILE_OR_URL --out DIR

The same as `seedzoo convert`; see conversion/README.md for converting every release.
"""
from __future__ import annotations

import sys

from seedzoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["convert", *sys.argv[1:]]))
