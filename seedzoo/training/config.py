"""The trainer's typed configuration: dataclasses, YAML recipes, `key=value` overrides, a stable hash.

A recipe is a YAML file of nested sections matching `TrainConfig`; seedzoo ships one per zoo entry with a
recipe (`seedzoo/recipes/<entry with '.' -> '__'>.yaml`) and presets such as `smoke`. Every key is checked
against the dataclasses: a misspelt key is an error that suggests the nearest valid one.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from ..errors import SeedzooError

RECIPES_PACKAGE = "seedzoo"  # YAMLs live in seedzoo/recipes/ (package data)
_FLOAT32_MAX = 3.4028234663852886e38  # the optimizer applies the learning rate as a float32


class ConfigError(SeedzooError, ValueError):
    """A recipe or an override names an unknown key, holds a value of the wrong type, or holds values
    that cannot run. `problems` lists every problem found, one line each (the message joins them)."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass
class StudentConfig:
    arch: str = "seed_resnet18"  # any timm-registered architecture (seedzoo's register themselves)
    pretrained: str = ""  # "" = random init; a path or zoo entry to start from
    head_hidden: int = 0  # 0: the backbone's width, as SEED's Linear(d, d) - ReLU - Linear(d, 128)
    embed_dim: int = 128


@dataclass
class TeacherConfig:
    arch: str = "seed_resnet50"
    entry: str = ""  # the zoo entry of the teacher: lineage for the export
    # "" = random init (smoke tests only); "zoo" = the entry's published weights; else a path (seedzoo
    # model folder, .safetensors, or an official checkpoint) passed to seedzoo.create_model.
    pretrained: str = ""
    # What the students distil. "head": the SSL projection head that trained with the weights (from the
    # entry, a seedzoo folder or an official checkpoint; a fresh one for a random teacher). "features":
    # the pooled backbone features, L2-normalised, of any timm model, e.g. from a timm or torchvision
    # state dict or safetensors file; the students' heads then output their width. "auto": "head" for
    # seedzoo architectures and entries, "features" for other timm names. Runs record the resolved value.
    target: Literal["auto", "head", "features"] = "auto"
    head_hidden: int = 2048
    head_batch_norm: bool = False
    embed_dim: int = 128
    # How the frozen teacher runs ("auto": chosen per device, see training/device_plan.py; the resolved
    # choice is written to RUN_DIR/device_plan.json). Its embeddings are cast to fp32 before the loss.
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    channels_last: Literal["auto", True, False] = "auto"
    compile: Literal["auto", True, False] = "auto"


@dataclass
class TrainDataConfig:
    """The `data:` section of a training config (the registry's preprocessing record is `zoo.DataConfig`)."""
    source: Literal["fashion_mnist", "image_folder", "unlabeled_folder", "file_list"] = "image_folder"
    path: str = ""  # folder, or file list (one image path per line, relative to the list's folder)
    subset: int = 0  # use the first n images only (0: all)
    image_size: int = 224
    augmentation: Literal["mocov2", "swav", "simclr", "none"] = "mocov2"
    # The random crop's area range, as a fraction of the image (None: the augmentation's own, e.g. MoCo-v2's
    # 0.2-1). Small images lose their object to a 0.2 crop sooner than 224 px ones.
    crop_scale: tuple[float, float] | None = None
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # px of the view; the official range is for 224 px
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    workers: int = 4
    on_error: Literal["raise", "skip"] = "raise"  # unreadable image: stop naming it, or skip and count


@dataclass
class OptimConfig:
    base_lr: float = 0.03  # scaled by global_batch / 256
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_epochs: int = 5
    # "epoch": SEED's own schedule, the lr changes once per epoch; "step": the same curve per step.
    schedule: Literal["epoch", "step"] = "epoch"


@dataclass
class DistillConfig:
    student_temperature: float = 0.2
    teacher_temperature: float = 1e-4  # official default; 0.01 in an independent reproduction
    queue_size: int = 65536
    small_patches: bool = False  # SwAV-style extra crops with their own queue (the paper's best setting)
    small_crops: int = 6
    small_size: int = 96
    small_scale: tuple[float, float] = (0.05, 0.14)


@dataclass
class MocoConfig:
    momentum: float = 0.999
    temperature: float = 0.2
    queue_size: int = 65536
    # Shuffle-BN: keys are computed on a batch permuted across ranks; `bn_splits` > 1 normalises each
    # rank's batch in that many groups, in the query and the key encoder alike (SplitBatchNorm, what keeps
    # shuffle-BN meaningful on one process, where there is no other rank to shuffle with).
    bn_splits: int = 1


@dataclass
class CompressConfig:
    """CompRess-2q (`method=compress`), the authors' defaults."""
    temperature: float = 0.04  # of both similarity distributions
    queue_size: int = 128000  # anchors, for teacher and student alike
    momentum: float = 0.999  # of the student's momentum copy, whose embeddings are the student's anchors


@dataclass
class BingoConfig:
    """BINGO (`method=bingo`), the authors' defaults for ResNet students."""
    temperature: float = 0.2  # 0.12 in the authors' EfficientNet-B0 script
    queue_size: int = 65536  # of the teacher's keys
    neighbours: int = 5  # the size of each image's bag: its nearest neighbours by the teacher's features
    weights: tuple[float, float] = (0.5, 0.5)  # of the key of the image and of the neighbour, per query
    warmup_epochs: int = 11  # first epochs with weights (1, 0), as the authors' `epoch > 10`
    cutmix_alpha: float = 2.0  # Beta(alpha, alpha) draws the area of the mixed query's pasted box


@dataclass
class MonitorConfig:
    knn_every: int = 0  # epochs; 0 = off. Needs a labeled source (fashion_mnist, image_folder).
    knn_train: int = 1000
    knn_test: int = 500
    knn_k: int = 20


@dataclass
class TrainConfig:
    name: str = ""  # the zoo entry this run reproduces (or a free name)
    method: str = "seed"  # a registered training method (`training.methods.list_methods()`)
    student: StudentConfig = field(default_factory=StudentConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    data: TrainDataConfig = field(default_factory=TrainDataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    moco: MocoConfig = field(default_factory=MocoConfig)
    compress: CompressConfig = field(default_factory=CompressConfig)
    bingo: BingoConfig = field(default_factory=BingoConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    epochs: int = 200
    global_batch: int = 256  # split evenly over the processes
    max_steps: int = 0  # stop after this many steps in all (0: run every epoch)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # The trainable network's autocast (bf16 also on CPU, fp16 on GPU only); the loss is always fp32.
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    channels_last: Literal["auto", True, False] = "auto"  # for the trainable network
    compile: Literal["auto", True, False] = "auto"  # torch.compile the trainable network
    save_every: int = 1000  # steps; a checkpoint is also written at every epoch end
    keep_last: int = 3
    log_every: int = 10
    export: bool = True
    # The export's batch-norm statistics (training/collapse.py): "auto" recomputes them over training images
    # when the run was too short for the running averages to settle, or when the features in eval mode
    # collapsed with them; "recompute" always; "keep" never. The run records which, and why.
    export_batch_norm: Literal["auto", "recompute", "keep"] = "auto"


# --- (de)serialisation -------------------------------------------------------------------------

def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def all_keys(cls: type = TrainConfig, prefix: str = "") -> list[str]:
    """Every dotted key of the configuration, e.g. `distill.teacher_temperature`."""
    out = []
    for f in dataclasses.fields(cls):
        tp = _hints(cls)[f.name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            out += all_keys(tp, f"{prefix}{f.name}.")
        else:
            out.append(prefix + f.name)
    return out


def _unknown(key: str, valid: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
    if not close:  # a right leaf under a wrong section, or the reverse
        leaf = key.rsplit(".", 1)[-1]
        close = [k for k in valid if k.rsplit(".", 1)[-1] == leaf][:3] or \
            [k for k in valid if leaf in k.rsplit(".", 1)[-1]][:3]
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(f"unknown config key '{key}'.{hint}")


_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """`value` as type `tp`; strings from the command line are parsed (never `bool("False")`)."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}.{hint}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None or value in ("none", "null", "None") else _coerce(key, value, args[0])
    if origin is tuple:
        items = typing.get_args(tp)
        if isinstance(value, str):
            value = [v for v in value.strip("()[] ").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or len(value) != len(items):
            raise ConfigError(f"{key}: expected {len(items)} comma-separated values, got {value!r}")
        return tuple(_coerce(key, v, a) for v, a in zip(value, items))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in _TRUE | _FALSE:
            return str(value).lower() in _TRUE
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not (isinstance(value, int) or str(value).lstrip("-").isdigit()):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return int(value)
    if tp is float:
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if tp is str:
        return "" if value is None else str(value)
    return value


def from_dict(data: dict[str, Any], cls: type = TrainConfig, prefix: str = "") -> Any:
    """Build `cls` from nested dicts, checking every key and value."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = _hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in hints:
            raise _unknown(prefix + key, all_keys())
        tp = hints[key]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            kwargs[key] = from_dict(value or {}, tp, f"{prefix}{key}.")
        else:
            kwargs[key] = _coerce(prefix + key, value, tp)
    if cls is TrainConfig and "method" in kwargs:  # a name the method registry knows, as a Literal would be
        from .methods import get_method

        get_method(kwargs["method"])
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(cfg)))  # tuples -> lists: YAML/JSON friendly


def config_hash(cfg: TrainConfig) -> str:
    """sha256 (first 16 hex digits) of the canonical JSON of the resolved configuration."""
    return hashlib.sha256(json.dumps(to_dict(cfg), sort_keys=True).encode()).hexdigest()[:16]


def apply_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """A copy of `cfg` with `key=value` overrides (dotted keys; values parsed as YAML scalars)."""
    data = to_dict(cfg)
    valid = all_keys()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not key=value (e.g. optim.base_lr=0.06)")
        key, raw = item.split("=", 1)
        key = key.strip()
        if key not in valid:
            raise _unknown(key, valid)
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node[leaf] = raw if isinstance(value, dict) else value
    return from_dict(data)


def _recipes_dir():
    return resources.files(RECIPES_PACKAGE) / "recipes"


def recipe_names() -> list[str]:
    return sorted(p.name[:-5] for p in _recipes_dir().iterdir() if p.name.endswith(".yaml"))


def recipe_text(name: str) -> str:
    """The YAML of a shipped recipe or preset, by file stem (`smoke`) or zoo entry name."""
    stem = name.replace(".", "__")
    path = _recipes_dir() / f"{stem}.yaml"
    if not path.is_file():
        close = difflib.get_close_matches(stem, recipe_names(), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"no shipped recipe '{name}' (seedzoo/recipes/{stem}.yaml).{hint}")
    return path.read_text()


def load_config(source: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """A recipe from a YAML path, a zoo entry name or a preset name, with overrides applied."""
    path = Path(source)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"recipe file not found: {path}")
        text = path.read_text()
    else:
        text = recipe_text(_entry_recipe_stem(str(source)))
    data = parse_yaml(text, str(source))
    cfg = apply_overrides(from_dict(data), overrides or [])
    validate(cfg, world_size=int(os.environ.get("WORLD_SIZE", "1") or 1))
    return cfg


class _StrictLoader(yaml.SafeLoader):
    """yaml's safe loader, except that a key given twice in one mapping is recorded (yaml keeps the last)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[int, str]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in first:
                message = f"line {line}: key '{key}' is given twice (first on line {first[key]}); keep one"
                self.duplicates.append((line, message))
            else:
                first[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, source: str = "recipe") -> dict[str, Any]:
    """A recipe's YAML as a mapping; invalid YAML and duplicate keys are errors (all duplicates listed)."""
    loader = _StrictLoader(text)
    try:
        data = loader.get_single_data() or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML ({' '.join(str(err).split())})") from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError(*(f"{source}, {d}" for _, d in sorted(loader.duplicates)))
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def _entry_recipe_stem(name: str) -> str:
    """A zoo entry or alias resolves to the YAML its recipe names; other names are taken as they are."""
    from ..zoo import UnknownModelError, get_entry

    try:
        entry = get_entry(name)
    except UnknownModelError:
        return name
    if entry.recipe is None:
        raise ConfigError(f"zoo entry '{entry.name}' has no training recipe (it is a {entry.role})")
    return entry.recipe.config[: -len(".yaml")]


def dump_yaml(cfg: TrainConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


# --- validation --------------------------------------------------------------------------------

def validate(cfg: TrainConfig, world_size: int = 1) -> None:
    """Refuse values that cannot run, before any work: every problem at once, one line each."""
    problems = config_problems(cfg, world_size)
    if problems:
        raise ConfigError(*problems)


def _architecture_problems(key: str, name: str) -> list[str]:
    """An architecture neither timm nor the zoo knows, with suggestions from both (any timm model trains)."""
    import timm

    from .. import models  # noqa: F401  (registers seedzoo's architectures with timm)
    from ..zoo import aliases, list_entries

    zoo = [e.name for e in list_entries()] + list(aliases())
    if timm.is_model(name) or name in zoo:
        return []
    close = difflib.get_close_matches(name, timm.list_models() + zoo, n=4, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return [f"{key}={name!r}: neither a timm architecture nor a zoo entry.{hint} `timm.list_models()` and "
            "`seedzoo list` show every name."]


class Problems(list[str]):
    """What is wrong with a config, one line per value: `key=value: rule`."""

    def need(self, ok: bool, key: str, value: Any, rule: str) -> None:
        if not ok:
            self.append(f"{key}={value!r}: {rule}")

    def positive(self, key: str, value: float, rule: str = "must be a finite number > 0") -> None:
        self.need(isinstance(value, (int, float)) and math.isfinite(value) and value > 0, key, value, rule)

    def at_least(self, key: str, value: float, low: float, rule: str) -> None:
        self.need(math.isfinite(value) and value >= low, key, value, rule)


def config_problems(cfg: TrainConfig, world_size: int = 1) -> list[str]:
    """What is wrong with `cfg` for a run on `world_size` processes (an empty list: nothing)."""
    from .methods import UnknownMethodError, get_method

    out = Problems()
    out.need(cfg.epochs > 0, "epochs", cfg.epochs, "must be > 0 (the schedule's length; max_steps=N stops earlier)")
    out.at_least("max_steps", cfg.max_steps, 0, "must be >= 0 (0: run every epoch)")
    batch_ok = cfg.global_batch > 0
    out.need(batch_ok, "global_batch", cfg.global_batch, "must be > 0 (images per step, over all processes)")
    if batch_ok and world_size > 1 and cfg.global_batch % world_size:
        out.append(f"global_batch={cfg.global_batch} is not divisible by the {world_size} processes: use a "
                   f"multiple of {world_size}, e.g. {multiple_near(cfg.global_batch, world_size)}")
    try:
        out += get_method(cfg.method).config_problems(cfg, world_size)
    except UnknownMethodError as err:
        out.append(str(err))

    o = cfg.optim
    out.positive("optim.base_lr", o.base_lr)
    if math.isfinite(o.base_lr) and max(o.base_lr, o.base_lr * cfg.global_batch / 256) >= _FLOAT32_MAX:
        out.append(f"optim.base_lr={o.base_lr!r}: too large, the learning rate it gives (up to base_lr x "
                   "global_batch / 256) must fit in float32 (< 3.4e38)")
    out.need(math.isfinite(o.momentum) and 0 <= o.momentum < 1, "optim.momentum", o.momentum, "must be in [0, 1)")
    out.at_least("optim.weight_decay", o.weight_decay, 0, "must be a finite number >= 0")
    out.at_least("optim.warmup_epochs", o.warmup_epochs, 0, "must be >= 0")
    for key, arch in (("student.arch", cfg.student.arch), ("teacher.arch", cfg.teacher.arch)):
        out += _architecture_problems(key, arch)
    out.positive("student.embed_dim", cfg.student.embed_dim, "must be > 0")
    out.at_least("student.head_hidden", cfg.student.head_hidden, 0, "must be >= 0 (0: the backbone's width)")

    d = cfg.data
    out.positive("data.image_size", d.image_size, "must be > 0 (pixels)")
    reach = math.ceil(3 * d.blur_sigma[1]) if all(math.isfinite(v) for v in d.blur_sigma) else 0
    if d.augmentation in ("mocov2", "swav") and 0 < d.image_size <= reach:  # the blur pads by its reach
        out.append(f"data.image_size={d.image_size} is too small for the blur of data.blur_sigma="
                   f"{tuple(d.blur_sigma)} (it reaches {reach} px): use more than {reach} px or a smaller sigma")
    out.need(all(math.isfinite(v) for v in d.mean), "data.mean", d.mean, "must be finite")
    out.need(all(math.isfinite(v) and v > 0 for v in d.std), "data.std", d.std, "must be finite and > 0")
    out.need(all(math.isfinite(v) and v >= 0 for v in d.blur_sigma) and d.blur_sigma[0] <= d.blur_sigma[1],
         "data.blur_sigma", d.blur_sigma, "must satisfy 0 <= min <= max")
    if d.crop_scale is not None:
        lo, hi = d.crop_scale
        out.need(0 < lo <= hi <= 1, "data.crop_scale", d.crop_scale, "must satisfy 0 < min <= max <= 1")
    out.at_least("data.subset", d.subset, 0, "must be >= 0 (0: every image)")
    out.at_least("data.workers", d.workers, 0, "must be >= 0")

    out += _reference_problems(cfg)

    m = cfg.monitor
    out.at_least("monitor.knn_every", m.knn_every, 0, "must be >= 0 (epochs; 0: off)")
    if m.knn_every:
        for key in ("knn_train", "knn_test", "knn_k"):
            out.positive(f"monitor.{key}", getattr(m, key), "must be > 0")
    out.positive("save_every", cfg.save_every, "must be > 0 (steps)")
    out.at_least("keep_last", cfg.keep_last, 0, "must be >= 0 (0: keep every checkpoint)")
    out.positive("log_every", cfg.log_every, "must be > 0 (steps)")
    return out


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, where the system has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def loader_workers(requested: int) -> int:
    """The loader workers a process starts for `data.workers`: at most the CPUs it may use, shared by the
    processes torchrun starts on its machine (a config written for a large machine runs on a small one)."""
    per_process = max(1, usable_cpus() // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)))
    return min(requested, per_process)


def _reference_problems(cfg: TrainConfig) -> list[str]:
    """What the config names that does not fit: a data.path its source cannot read, a teacher.arch that is
    not its teacher.entry's, weights that are neither "", zoo, an hf-hub: id nor an existing path."""
    from ..data.datasets import source_mismatch
    from ..weights.resolve import HF_PREFIX
    from ..zoo import UnknownModelError, get_entry
    from .methods import UnknownMethodError, get_method

    out = []
    if (mismatch := source_mismatch(cfg.data.source, cfg.data.path)) is not None:
        out.append(mismatch)
    try:
        distils = get_method(cfg.method).needs_teacher
    except UnknownMethodError:  # said by config_problems
        distils = False
    t = cfg.teacher
    if distils and t.entry:
        try:
            entry = get_entry(t.entry)
        except UnknownModelError:
            out.append(f"teacher.entry={t.entry!r}: not a zoo entry (`seedzoo list` shows them; \"\" for none)")
        else:
            if entry.architecture != t.arch and not _architecture_problems("teacher.arch", t.arch):
                out.append(f"teacher.arch={t.arch!r} is not the architecture of teacher.entry={t.entry!r} "
                           f"({entry.architecture}): set teacher.arch={entry.architecture}, or teacher.entry to "
                           "the entry of this teacher (\"\" for none)")
    weights = [("student.pretrained", cfg.student.pretrained, "")]
    if distils:
        weights.append(("teacher.pretrained", t.pretrained, t.entry))
    for key, value, entry_name in weights:
        if value in ("", "zoo") or value.startswith(HF_PREFIX) or Path(value).expanduser().exists():
            continue
        fix = (f"train the teacher first (seedzoo train {entry_name} --out DIR, then {key}=DIR) or pass"
               if key == "teacher.pretrained" and entry_name else "pass")
        out.append(f"{key}={value!r}: no such file or folder (nor 'zoo' or an {HF_PREFIX}ORG/NAME id): {fix} "
                   "the path of its weights")
    return out


def multiple_near(value: int, base: int) -> str:
    low, high = (value // base) * base, (value // base + 1) * base
    return " or ".join(str(v) for v in (low, high) if v > 0)
