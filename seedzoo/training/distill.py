"""One call from a folder of images to a distilled student: `distill(DATA, teacher=T, student=S, out=DIR)`.

It builds a `TrainConfig` and runs it with the trainer (`engine.train`), nothing beside it:

1. the data: a folder with class sub-folders (`image_folder`, labels for the kNN monitor), a folder of
   images without them (`unlabeled_folder`, searched recursively), a text file listing images
   (`file_list`), or a registered data set (`fashion_mnist`);
2. the teacher: a zoo entry with weights, a seedzoo model folder or file, an `hf-hub:` id, or a timm
   architecture with its weights file (a plain timm or torchvision state dict or safetensors: its
   pooled features are the targets);
3. the recipe: the zoo recipe of that teacher and student, else one of that teacher, else one of that
   student, else the paper's (ResNet-18 from MoCo-v2 ResNet-50); the student, teacher and the teacher's
   preprocessing (input size, mean and std) put in;
4. the recipe scaled to the number of images (`scaling.scale_to_data`), then the user's `key=value`
   overrides, which scaling leaves as they are.

Every choice is returned (`DistillPlan.choices`), printed by the command, and written with the run
(`choices.json`, and as comments at the top of `config.yaml`).
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ..errors import SeedzooError
from .config import TrainConfig, apply_overrides, load_config, parse_yaml, recipe_text, validate
from .scaling import Choice, recipe_images, scale_to_data

DEFAULT_RECIPE = "seed_r18.mocov2_r50_200ep"  # the paper's standard setting
REGISTERED_DATA = ("fashion_mnist",)  # data sets `data.source` reads by name


class DistillInputError(SeedzooError, ValueError):
    """The data, teacher or student of a `distill` call cannot be used as given."""


@dataclass
class DistillPlan:
    """What `distill` will run: the config, the recipe it came from, and every choice made."""

    config: TrainConfig
    recipe: str
    images: int
    choices: list[Choice]

    def describe(self) -> list[str]:
        return [c.describe() for c in self.choices]

    def record(self) -> dict[str, Any]:
        return {"recipe": self.recipe, "images": self.images, "choices": [c.record() for c in self.choices]}


# --- data --------------------------------------------------------------------------------------

def data_source(data: str | os.PathLike) -> tuple[str, str, str]:
    """(data.source, data.path, what it is) for DATA: a registered data set's name, or a path
    (`data.datasets.detect_source`: a file list, a class tree, a folder of images)."""
    from ..data.datasets import detect_source

    if str(data) in REGISTERED_DATA:
        return str(data), "", "a registered data set"
    try:
        source, what = detect_source(Path(data))
    except FileNotFoundError:
        raise DistillInputError(f"data {str(data)!r}: no such folder or file, and not a registered data set "
                                f"({', '.join(REGISTERED_DATA)})") from None
    return source, str(Path(data).expanduser()), what


# --- teacher and student -----------------------------------------------------------------------

@dataclass(frozen=True)
class _Teacher:
    arch: str
    entry: str  # zoo entry, "" if none
    pretrained: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    what: str


def _teacher(teacher: str, weights: str | None) -> _Teacher:
    from ..weights.resolve import HF_PREFIX, is_model_path, resolve
    from ..zoo import UnknownModelError, get_entry

    def spec(arch: str, entry: str, pretrained: str, data: Any, what: str) -> _Teacher:
        norm = data.normalization
        mean, std = (cast(tuple[float, float, float], tuple(v)) for v in (norm.mean, norm.std))
        return _Teacher(arch, entry, pretrained, int(data.input_size[-1]), mean, std, what)

    if weights is not None:
        import timm

        from .. import models  # noqa: F401  (seedzoo's architectures are timm names too)
        from ..weights.preprocessing import architecture_data_config

        if not timm.is_model(teacher):
            raise DistillInputError(f"--teacher-weights goes with a timm architecture name; '{teacher}' is not one")
        if not Path(weights).expanduser().is_file():
            raise DistillInputError(f"--teacher-weights {weights}: no such file")
        return spec(teacher, "", str(Path(weights).expanduser()), architecture_data_config(teacher),
                    f"timm architecture {teacher} with the weights of {weights} (its pooled features are the targets)")
    if teacher.startswith(HF_PREFIX) or is_model_path(teacher):
        resolved = resolve(teacher, pretrained=True)
        entry = resolved.entry.name if resolved.entry is not None else ""
        return spec(resolved.architecture, entry, teacher, resolved.data,
                    f"{resolved.architecture} with the weights of {teacher}")
    try:
        record = get_entry(teacher)
    except UnknownModelError as err:
        import timm

        if timm.is_model(teacher):
            raise DistillInputError(f"--teacher {teacher} is an architecture without weights: name a zoo teacher "
                                    "(`seedzoo list --role teacher`), a model folder or file, an hf-hub: id, or add "
                                    f"--teacher-weights FILE for {teacher}'s weights") from None
        raise DistillInputError(str(err)) from None
    if not record.has_file:
        raise DistillInputError(f"--teacher {record.name} has no weights to load: name a teacher with weights or "
                                "pass the path of its file")
    return spec(record.architecture, record.name, "zoo", record.data, f"zoo entry {record.name}")


def _student_arch(student: str) -> str:
    """The architecture a student name stands for (a zoo entry or alias gives its architecture)."""
    import timm

    from .. import models  # noqa: F401
    from ..zoo import UnknownModelError, get_entry

    try:
        return get_entry(student).architecture
    except UnknownModelError:
        if timm.is_model(student):
            return student
        raise DistillInputError(f"--student {student!r}: neither a zoo name nor a timm architecture "
                                "(`seedzoo list`, `timm.list_models()`)") from None


# --- recipe ------------------------------------------------------------------------------------

def choose_recipe(teacher_entry: str, student_arch: str) -> tuple[str, str]:
    """(recipe name, why): the zoo's SEED recipe of this teacher and student, or the closest one."""
    from ..zoo import list_entries

    recipes = []
    for entry in list_entries():
        if entry.recipe is None or entry.recipe.method != "seed":
            continue
        data = parse_yaml(recipe_text(entry.recipe.config[: -len(".yaml")]), entry.recipe.config)
        recipes.append((entry.name, (data.get("teacher") or {}).get("entry", ""),
                        (data.get("student") or {}).get("arch", "")))
    for name, teacher, student in recipes:
        if teacher_entry and teacher == teacher_entry and student == student_arch:
            return name, "the zoo recipe of this teacher and student"
    for name, teacher, _ in recipes:
        if teacher_entry and teacher == teacher_entry:
            return name, "the zoo recipe of this teacher (with another student)"
    for name, _, student in recipes:
        if student == student_arch:
            return name, "a zoo recipe of this student (with another teacher)"
    return DEFAULT_RECIPE, "no zoo recipe names this teacher or student: the paper's setting"


# --- the plan ----------------------------------------------------------------------------------

def _given_keys(overrides: Sequence[str]) -> list[str]:
    return [item.split("=", 1)[0].strip() for item in overrides if "=" in item]


def plan_distillation(data: str | os.PathLike, teacher: str, student: str, *, teacher_weights: str | None = None,
                      overrides: Sequence[str] = (), world_size: int | None = None) -> DistillPlan:
    """The config `distill` runs, and why each of its settings is what it is (nothing is trained)."""
    from ..data.datasets import build_source

    world_size = world_size or int(os.environ.get("WORLD_SIZE", "1") or 1)
    source, path, data_why = data_source(data)
    t = _teacher(teacher, teacher_weights)
    student_arch = _student_arch(student)
    recipe, recipe_why = choose_recipe(t.entry, student_arch)
    base = load_config(recipe)
    given = set(_given_keys(overrides))
    subset = int(apply_overrides(base, [o for o in overrides if o.startswith("data.subset=")]).data.subset)
    try:
        images = len(build_source(source, path, subset))
    except FileNotFoundError as err:
        raise DistillInputError(str(err)) from None

    choices = [Choice("recipe", recipe, recipe, recipe_why), Choice("data.source", source, base.data.source, data_why),
               Choice("data.path", path, base.data.path, f"{images:,} images")]
    blur = base.data.blur_sigma
    if t.input_size != base.data.image_size:  # the blur range is in pixels of the view
        blur = (blur[0] * t.input_size / base.data.image_size, blur[1] * t.input_size / base.data.image_size)
    cfg = dataclasses.replace(
        base, name="",  # not the zoo entry whose recipe it scales: its own data, its own run
        student=dataclasses.replace(base.student, arch=student_arch, pretrained="",
                                    head_hidden=0 if student_arch != base.student.arch else base.student.head_hidden),
        teacher=dataclasses.replace(base.teacher, arch=t.arch, entry=t.entry, pretrained=t.pretrained, target="auto"),
        data=dataclasses.replace(base.data, source=cast(Any, source), path=path, subset=0, image_size=t.input_size,
                                 mean=t.mean, std=t.std, blur_sigma=blur))
    choices += [Choice("student.arch", student_arch, base.student.arch, f"--student {student}"),
                Choice("teacher", t.arch, base.teacher.arch, t.what),
                Choice("data.image_size", t.input_size, base.data.image_size, "the teacher's input size"),
                Choice("data.mean/std", f"{list(t.mean)}/{list(t.std)}",
                       f"{list(base.data.mean)}/{list(base.data.std)}", "the teacher's normalisation")]
    if blur != base.data.blur_sigma:
        choices.append(Choice("data.blur_sigma", [round(v, 4) for v in blur], list(base.data.blur_sigma),
                              "the recipe's blur, in pixels of the teacher's input size"))
    cfg = apply_overrides(cfg, list(overrides))
    cfg, scaled = scale_to_data(cfg, images, recipe_data=recipe_images(base), world_size=world_size, given=given)
    if given:
        choices.append(Choice("overrides", " ".join(overrides), "", "given"))
    validate(cfg, world_size)
    return DistillPlan(cfg, recipe, images, choices + scaled)


def distill(data: str | os.PathLike, *, teacher: str, student: str, out: str | os.PathLike,
            teacher_weights: str | None = None, overrides: Sequence[str] = (), resume: str | None = None,
            overwrite: bool = False, command: str = "") -> Any:
    """Distil `teacher` into a fresh `student` on the images of `data`, into the run folder `out`.

    `data`: a folder (class sub-folders or not), a file list, or a registered data set (`fashion_mnist`);
    `teacher`: a zoo entry, model folder or file, `hf-hub:` id, or a timm architecture with
    `teacher_weights`; `student`: a zoo name or a timm architecture; `overrides`: `key=value` settings
    that win over the scaled recipe. Returns the trainer's `RunResult` (its `health` says whether the
    exported features are usable). The plan alone: `plan_distillation`.
    """
    from .engine import train

    plan = plan_distillation(data, teacher, student, teacher_weights=teacher_weights, overrides=overrides)
    return train(plan.config, Path(out), resume=resume, overwrite=overwrite, choices=plan.record(),
                 command=command or f"seedzoo.distill({str(data)!r}, teacher={teacher!r}, student={student!r})")


__all__ = ["DistillInputError", "DistillPlan", "choose_recipe", "data_source", "distill", "plan_distillation"]
