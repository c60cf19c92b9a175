"""`python -m seedzoo ...` (what torchrun launches: `torchrun --nproc-per-node=N -m seedzoo train ...`)."""
import sys

from .cli import main

sys.exit(main())
