"""The training methods: one record per objective (`Method`), registered by name (`cfg.method`).

The engine, the config checks, the memory estimate and the cohort read a run's methods from here and
from nothing else: no module outside this package branches on `cfg.method`. Adding an objective is one
new module in this package that defines it and calls `register_method`, plus its import at the end of
this file.

The contract a method keeps
---------------------------
- `objective(student, cfg)` builds its `training.objective.Objective` around `student` (backbone +
  projection head, built from `cfg.student`, already on the student's memory layout). The objective's
  `model` is what the optimiser trains, DDP wraps, checkpoints hold as "student" and the export writes
  (its `backbone` and `head`). Everything else the objective keeps across a resume (queues, a momentum
  encoder) goes through its `state` / `load_state`.
- `views(cfg)` declares the augmented views of each image the objective reads, as `ViewSpec`s; the main
  view is `views.MAIN` ("image"). The engine never names a view: it makes the union of its students'
  views once per image (`views.ViewSet`) and hands each objective the whole dict. Each view draws from
  its own random stream, so a view is the same tensor alone or beside other views. Two students that
  declare one view name must declare it identically (the cohort check says which settings differ).
- `teacher_views(cfg)`: the views whose teacher embeddings the objective reads; `()` for a method
  without a teacher (`needs_teacher` False). Each step the run's teacher embeds the union of its
  students' teacher views once (`teacher.TeacherPass.targets`), and every objective's
  `compute(net, views, step, targets)` receives `targets = {view name: fp32 embeddings}`: N x D for a
  view, N x crops x D for a view of crops. An objective reads only the views it declared, and must not
  modify `views` or `targets` in place (the other students of the step read the same tensors).
- `config_problems(cfg, world_size)`: one line per value of the method's own settings that cannot run
  (`config.config_problems` adds them to the general checks).
- `config_warnings(cfg)`: one line per setting that runs but gives up what the method is for (BINGO: a
  warm-up as long as the run, so its bags never count); the run prints them when it starts.
- `memory(cfg)`: what the memory floor counts for the method (`MemoryNeeds`: which views the trained
  network forwards with gradients, how many copies of its weights live, the bytes of its queues).
- `trained_by` names the method in an export's lineage (`seedzoo.trained_by.method`); `lineage(cfg)`
  adds the method's settings an export's `teacher` block records (SEED: its teacher temperature).
- A method's own settings live in a section of `TrainConfig` (SEED: `distill`, MoCo-v2: `moco`); a new
  method adds its fields there, or a section of its own for settings no other method reads, and checks
  them in its `config_problems`. The `teacher` section is shared by every method that distils.
- `queues`: the config keys of the method's queue sizes, which a recipe scaled to a data set
  (`scaling.scale_to_data`) keeps within the images the run sees.
- `cohort`: whether the method may train beside other students in one run. A student in a cohort trains
  bitwise as it would alone: the batches and views are the same, the teacher pass is shared, and each
  student draws dropout and the like from its own RNG stream. A method without a teacher (MoCo-v2)
  takes part as well: it reads the views it declared and gets empty `targets`.
- Views of a neighbour: a `ViewSpec` with `neighbours=k` is a view of one of the image's k nearest
  neighbours by the teacher (BINGO's bags). The run computes the bags once, before training
  (`training.neighbours.run_neighbours`, kept in `RUN_DIR/neighbours.safetensors` and read back on
  resume); each sample draws its neighbour from its own stream, and all its views of a neighbour are
  views of that one image.
- `compute(net, views, step, targets, epoch)` also receives the epoch (0-based), for objectives whose
  loss changes with it (BINGO's warm-up).
- `export_head`: whether the export holds the trained head (False for SimReg, whose prediction head
  only serves training).
"""
from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import ConfigError, Problems, TrainConfig
from ..views import MAIN, ViewSpec

if TYPE_CHECKING:
    from ..networks import Encoder
    from ..objective import Objective


class UnknownMethodError(ConfigError):
    """`cfg.method` names no registered method."""


@dataclass(frozen=True)
class MemoryNeeds:
    """What a method adds to a run's memory floor (`memory.fit_problems`)."""

    student_views: tuple[str, ...] = (MAIN,)  # views the trained network forwards, keeping activations
    weight_copies: int = 3  # of the trained network's weights: weights, gradients, momentum (+ a momentum encoder)
    state_bytes: int = 0  # queues and other buffers


def _no_views(cfg: TrainConfig) -> tuple[str, ...]:
    return ()


def _no_problems(cfg: TrainConfig, world_size: int) -> list[str]:
    return []


def _main_view_only(cfg: TrainConfig) -> MemoryNeeds:
    return MemoryNeeds()


def _no_lineage(cfg: TrainConfig) -> dict[str, Any]:
    return {}


def _no_warnings(cfg: TrainConfig) -> list[str]:
    return []


@dataclass(frozen=True)
class Method:
    """One training method: how to build its objective and what the run around it must provide."""

    name: str  # the value of `cfg.method`
    trained_by: str  # the method's name in an export's lineage, e.g. "SEED"
    objective: Callable[[Encoder, TrainConfig], Objective]
    views: Callable[[TrainConfig], tuple[ViewSpec, ...]]
    needs_teacher: bool = False
    teacher_views: Callable[[TrainConfig], tuple[str, ...]] = _no_views
    config_problems: Callable[[TrainConfig, int], list[str]] = _no_problems
    # What a valid config gives up without saying so (e.g. a warm-up longer than the run): said when it starts.
    config_warnings: Callable[[TrainConfig], list[str]] = _no_warnings
    memory: Callable[[TrainConfig], MemoryNeeds] = _main_view_only
    lineage: Callable[[TrainConfig], dict[str, Any]] = _no_lineage
    cohort: bool = True  # may train beside other students, sharing one data stream and teacher pass
    export_head: bool = True  # whether the export holds the trained head (SimReg's prediction head is dropped)
    # The config keys of the queues it fills (a number of rows each): `scaling.scale_to_data` fits them to the data.
    queues: tuple[str, ...] = ()
    summary: str = ""  # one line for listings


_METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Add `method` under its name (a name is registered once)."""
    if method.name in _METHODS:
        raise ValueError(f"a training method named '{method.name}' is already registered")
    _METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The method registered as `name`; `UnknownMethodError` suggests the closest names."""
    try:
        return _METHODS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_METHODS), n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownMethodError(f"method={name!r}: no such training method.{hint} Methods: "
                                 f"{', '.join(list_methods())}") from None


def list_methods() -> list[str]:
    return sorted(_METHODS)


def main_view(cfg: TrainConfig, name: str = MAIN) -> ViewSpec:
    """The run's augmentation of `cfg.data` as a view called `name` (MoCo's key view is a second one)."""
    d = cfg.data
    return ViewSpec(name, d.augmentation, d.image_size, tuple(d.mean), tuple(d.std),
                    scale=None if d.crop_scale is None else tuple(d.crop_scale),  # type: ignore[arg-type]
                    blur_sigma=tuple(d.blur_sigma))  # type: ignore[arg-type]


def queue_problems(key: str, size: int, global_batch: int) -> list[str]:
    """A queue of `size` rows must take whole global batches."""
    from ..config import multiple_near

    if size <= 0:
        return [f"{key}={size}: must be > 0 (a multiple of global_batch)"]
    if global_batch > 0 and size % global_batch:
        return [f"{key}={size} is not a multiple of global_batch={global_batch}: use "
                f"{multiple_near(size, global_batch)}, or change global_batch"]
    return []


def momentum_queue_problems(section: str, queue_size: int, temperature: float, momentum: float,
                            global_batch: int) -> Problems:
    """The settings a method with an embedding queue and a momentum encoder shares (MoCo-v2, CompRess):
    `section` is its config section, e.g. "moco"."""
    out = Problems()
    out += queue_problems(f"{section}.queue_size", queue_size, global_batch)
    out.positive(f"{section}.temperature", temperature)
    out.need(0 <= momentum <= 1, f"{section}.momentum", momentum, "must be in [0, 1]")
    return out


def same_width_problems(cfg: TrainConfig, world_size: int = 1) -> list[str]:
    """The student's embedding is compared with the teacher's: both must have one width."""
    s, t = cfg.student.embed_dim, cfg.teacher.embed_dim
    if s == t:
        return []
    return [f"student.embed_dim={s} differs from teacher.embed_dim={t}: method={cfg.method} compares the two "
            f"embeddings, set student.embed_dim={t}"]


# Each module registers its method on import.
from . import bingo, compress, disco, l2, moco, seed, simreg  # noqa: E402, F401
