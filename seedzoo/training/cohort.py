"""Which recipes can train together: several students of one run, one data stream and one teacher pass.

Students trained together share the batches, so everything that decides them must agree (`SHARED`); the
students that distil a teacher share its pass, so they must also agree on the teacher (`TEACHER`). The
methods may differ (SEED, MoCo-v2, ...): each student reads the views its method declared, made once per
image for all (`views.ViewSet`), so a view two students both read must be declared alike. Everything else
(the student, its head, optimiser, temperatures, queue size, precision, monitor, export) is each
student's own. Each student then follows exactly the trajectory it follows when trained alone.
"""
from __future__ import annotations

from collections.abc import Sequence

from .config import ConfigError, TrainConfig, to_dict
from .methods import get_method
from .metrics import flatten
from .views import view_conflicts

# Top-level keys that must agree (a section name covers every key under it).
SHARED = ("data", "epochs", "global_batch", "max_steps", "seed", "device", "save_every", "keep_last", "log_every")
TEACHER = ("teacher",)  # and, among the students that distil a teacher, these


def differing_keys(cfgs: Sequence[TrainConfig], sections: Sequence[str] = SHARED) -> list[str]:
    """The dotted keys under `sections` whose values are not the same in every config."""
    flat = [flatten({k: v for k, v in to_dict(c).items() if k in sections}) for c in cfgs]
    keys = sorted(set().union(*flat)) if flat else []
    return [k for k in keys if len({repr(f.get(k)) for f in flat}) > 1]


UNNAMED = "student"  # the name of a student whose config has none


def student_names(cfgs: Sequence[TrainConfig]) -> list[str]:
    """What a run calls its students (its export folders, checkpoint and metrics keys): their configs' names."""
    return [c.name or UNNAMED for c in cfgs]


def check_cohort(cfgs: Sequence[TrainConfig]) -> list[str]:
    """The students' names, after checking that `cfgs` can train together (`ConfigError` otherwise). One
    config is a cohort of one."""
    if not cfgs:
        raise ConfigError("no recipe to train: name at least one")
    names = student_names(cfgs)
    for name in names:
        if name in (".", "..") or "/" in name or "\\" in name:
            raise ConfigError(f"name={name!r}: a student's name is the folder of its export "
                              "(RUN_DIR/export/<name>/): use one without '/' or '\\'")
    if len(set(names)) != len(names):
        raise ConfigError(f"students trained together need distinct names (got {names}): set name=... in each "
                          "recipe; each exports to RUN_DIR/export/<name>/")
    methods = [get_method(c.method) for c in cfgs]
    alone = sorted({m.name for m in methods if not m.cohort})
    if alone and len(cfgs) > 1:
        raise ConfigError(f"method {', '.join(alone)} trains one student at a time: train those recipes separately")
    differ = differing_keys(cfgs) + differing_keys([c for c, m in zip(cfgs, methods) if m.needs_teacher], TEACHER)
    if differ:
        raise ConfigError(
            "recipes trained together share one data stream and one teacher pass, but these settings "
            f"differ: {', '.join(differ)}. Make them agree (e.g. with key=value overrides), or train the "
            "recipes separately")
    conflicts = view_conflicts((f"student {n}", v) for n, c, m in zip(names, cfgs, methods) for v in m.views(c))
    if conflicts:
        raise ConfigError(*conflicts)
    return names
