"""A recipe scaled to the data it will train on: batch, epochs, warm-up, schedule, queue and monitor.

A zoo recipe is written for its own data (ImageNet-1k's 1.28 M images, or Fashion-MNIST's 60,000).
Run as it is on a folder of 2,000 images it trains for a few dozen steps with a queue that never fills,
and its batch-norm statistics never settle. `scale_to_data` keeps what the recipe means and changes its
sizes, one rule per setting, each recorded as a `Choice`:

- `global_batch`: the recipe's, but no more than an eighth of the images (a power of two), so an epoch
  has at least `MIN_STEPS_PER_EPOCH` steps (the learning rate follows it: base_lr x batch / 256);
- `epochs`: as many images seen as the recipe sees on its own data, but no fewer epochs than the recipe's
  and no more than `MAX_EPOCHS` (SEED's own 200);
- `optim.warmup_epochs`: the recipe's fraction of the schedule; `optim.schedule`: per step when the run
  has fewer than `STEP_SCHEDULE_EPOCHS` epochs (a per-epoch cosine would change the rate in a few jumps);
- the method's queues (`Method.queues`: SEED's `distill.queue_size`, MoCo's `moco.queue_size`): no
  larger than one epoch's images (a larger queue holds the same images twice, as negatives of themselves)
  nor than half the images the run sees (so it fills in the first half of the run), a multiple of the batch;
- the monitor: about `MONITORS` checks over the run, held-out sizes within the images there are;
- `log_every`: about 20 lines over the run, at most the recipe's interval.

A key the user set is never changed (`given`); it is recorded as given.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .config import TrainConfig

MIN_STEPS_PER_EPOCH = 8
MAX_EPOCHS = 200
STEP_SCHEDULE_EPOCHS = 10
MONITORS = 10
MIN_BATCH = 2  # batch norm in training mode needs two images
# The data the shipped recipes' epochs are counted on: Fashion-MNIST's training split, and ImageNet-1k's
# (the recipes whose image_folder has no path are the paper's, on ImageNet-1k train).
RECIPE_DATA_IMAGES = {"fashion_mnist": 60_000, "image_folder": 1_281_167}


@dataclass(frozen=True)
class Choice:
    """One setting of a scaled recipe: its value, the recipe's, and why."""

    key: str
    value: Any
    recipe: Any
    why: str

    def describe(self) -> str:
        was = "" if self.value == self.recipe or self.recipe in ("", None) else f" (recipe: {self.recipe})"
        return f"{self.key} = {self.value}{was}: {self.why}"

    def record(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "recipe": self.recipe, "why": self.why}


def recipe_images(cfg: TrainConfig) -> int:
    """How many images the recipe's epochs are counted on (its subset, or its data set's training split)."""
    full = RECIPE_DATA_IMAGES.get(cfg.data.source, RECIPE_DATA_IMAGES["image_folder"])
    return min(cfg.data.subset, full) if cfg.data.subset else full


def _power_of_two_at_most(n: int) -> int:
    return 1 << max(int(n).bit_length() - 1, 0)


def scale_to_data(recipe: TrainConfig, images: int, *, recipe_data: int | None = None, world_size: int = 1,
                  given: Iterable[str] = ()) -> tuple[TrainConfig, list[Choice]]:
    """`recipe` scaled to `images` training images on `world_size` processes, and every choice made.

    `recipe_data`: the images the recipe's epochs count (default: `recipe_images(recipe)`); `given`: the
    dotted keys the user set (already applied to `recipe`), which keep their values and are built on.
    """
    if images < MIN_BATCH:
        raise ValueError(f"{images} training image(s): distillation needs at least {MIN_BATCH} (batch norm)")
    given = set(given)
    cfg = copy.deepcopy(recipe)
    choices: list[Choice] = []

    def choose(key: str, value: Any, why: str) -> Any:
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = getattr(node, p)
        before = getattr(_get(recipe, parents), leaf)
        if key in given:  # `recipe` holds the user's value already
            value, why = before, "given"
        setattr(node, leaf, value)
        choices.append(Choice(key, value, before, why))
        return value

    # batch: at least MIN_STEPS_PER_EPOCH steps per epoch, and divisible by the processes
    cap = max(_power_of_two_at_most(images // MIN_STEPS_PER_EPOCH), MIN_BATCH)
    batch = min(recipe.global_batch, cap)
    batch = max(batch - batch % world_size, world_size)
    batch = choose("global_batch", batch,
                   f"at most 1/{MIN_STEPS_PER_EPOCH} of the {images:,} images, a power of two (learning rate "
                   f"{recipe.optim.base_lr:g} x batch / 256)" if batch < recipe.global_batch else "the recipe's")
    steps_per_epoch = images // batch
    if steps_per_epoch < 1:
        raise ValueError(f"global_batch={batch} is larger than the {images} training images: use a smaller batch")

    # epochs: the images the recipe sees, within [the recipe's epochs, MAX_EPOCHS]
    seen = recipe.epochs * (recipe_data or recipe_images(recipe))
    epochs = min(max(round(seen / images), recipe.epochs), max(MAX_EPOCHS, recipe.epochs))
    epochs = choose("epochs", epochs,
                    f"the recipe sees {seen:,} images; here {images:,} images x {min(round(seen / images), 10**9):,} "
                    f"epochs, kept within [{recipe.epochs}, {max(MAX_EPOCHS, recipe.epochs)}]")
    total = epochs * steps_per_epoch
    total = min(total, cfg.max_steps) if cfg.max_steps else total

    fraction = recipe.optim.warmup_epochs / recipe.epochs if recipe.epochs else 0.0
    choose("optim.warmup_epochs", min(round(fraction * epochs), epochs),
           f"the recipe's {100 * fraction:.3g}% of the schedule")
    if epochs < STEP_SCHEDULE_EPOCHS:
        choose("optim.schedule", "step", f"fewer than {STEP_SCHEDULE_EPOCHS} epochs: the rate changes every step")
    else:
        choose("optim.schedule", recipe.optim.schedule, "the recipe's")

    from .methods import get_method

    fill = min(steps_per_epoch * batch, total * batch // 2)
    for queue_key in get_method(cfg.method).queues:
        recipe_queue = _get(recipe, queue_key.split("."))
        queue = max(min(recipe_queue, fill) // batch * batch, batch)
        choose(queue_key, queue, f"at most one epoch's images ({steps_per_epoch * batch:,}) and half of the run's "
               f"({total * batch:,}), a multiple of the batch" if queue < recipe_queue else "the recipe's")

    every = max(epochs // MONITORS, 1)
    choose("monitor.knn_every", every, f"about {MONITORS} checks over {epochs} epochs (kNN where there are labels, "
           "and the spread of the features in eval mode)")
    held_out = min(recipe.monitor.knn_test, max(images // 5, 1))
    choose("monitor.knn_test", held_out, "held-out images of the kNN monitor, at most a fifth of the data")
    choose("monitor.knn_train", min(recipe.monitor.knn_train, images - held_out),
           "reference images of the kNN monitor, the others")
    choose("log_every", max(min(recipe.log_every, total // 20), 1), "about 20 lines over the run")
    return cfg, choices


def _get(cfg: TrainConfig, path: list[str]) -> Any:
    node: Any = cfg
    for p in path:
        node = getattr(node, p)
    return node
