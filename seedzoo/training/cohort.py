"""Which recipes can train together: several students distilled from one teacher pass per step.

Students trained together share one teacher forward and one data stream, so everything that decides
the teacher's embeddings and the batches must agree (`SHARED`); everything else (the student, its
head, optimiser, temperatures, queue size, precision, monitor, export) is each student's own. Each
student then follows exactly the trajectory it follows when trained alone.
"""
from __future__ import annotations

from collections.abc import Sequence

from .config import ConfigError, TrainConfig, to_dict
from .metrics import flatten

# Top-level keys that must agree (a section name covers every key under it).
SHARED = ("method", "teacher", "data", "epochs", "global_batch", "max_steps", "seed", "device",
          "save_every", "keep_last", "log_every")


def differing_keys(cfgs: Sequence[TrainConfig]) -> list[str]:
    """The dotted shared keys whose values are not the same in every config."""
    flat = [flatten({k: v for k, v in to_dict(c).items() if k in SHARED}) for c in cfgs]
    keys = sorted(set().union(*flat))
    return [k for k in keys if len({repr(f.get(k)) for f in flat}) > 1]


def check_cohort(cfgs: Sequence[TrainConfig]) -> list[str]:
    """The students' names, after checking that `cfgs` can train together (`ConfigError` otherwise)."""
    if not cfgs:
        raise ConfigError("no recipe to train: name at least one")
    names = [c.name for c in cfgs]
    if len(cfgs) == 1:
        return names
    if any(c.method != "seed" for c in cfgs):
        raise ConfigError("several recipes train together only as SEED students of one teacher "
                          "(method=seed); train MoCo recipes one at a time")
    differ = differing_keys(cfgs)
    if differ:
        raise ConfigError(
            "recipes trained together share one teacher pass and one data stream, but these settings "
            f"differ: {', '.join(differ)}. Make them agree (e.g. with key=value overrides), or train the "
            "recipes separately")
    if any(not n for n in names) or len(set(names)) != len(names):
        raise ConfigError(f"students trained together need distinct, non-empty names (got {names}): set "
                          "name=... in each recipe; each exports to RUN_DIR/export/<name>/")
    return names
