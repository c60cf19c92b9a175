"""The augmented views of one image that a run's objectives read, made once per image for every student.

A method declares its views as `ViewSpec`s (a name, an augmentation, a size, how many crops); a run makes
the union of its students' views (`ViewSet`), in data-loader workers. Each view draws its randomness from
its own stream: the main view (`MAIN`) from the sample's generator (keyed on seed, epoch and index), every
other view from a stream keyed on that generator's seed and the view's name (`view_generator`). A view is
therefore the same tensor whichever other views are made beside it: a student sees the same batches in a
cohort as alone, whatever the other students' methods need.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..data.augment import EvalTransform, ViewAugment, view_augment

MAIN = "image"  # the view every objective reads: teacher and student see the same tensor of it
NEIGHBOUR_STREAM = "neighbour"  # the stream each sample draws its neighbour from (no view has this name)


@dataclass(frozen=True)
class ViewSpec:
    """One augmented view of each image. `crops` None: one view (N x C x H x W in a batch); an int: that
    many crops, stacked (N x crops x C x H x W, the crops of one image adjacent)."""

    name: str
    augmentation: str  # `data.augment.view_augment`'s kinds: mocov2, swav, simclr, none
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: tuple[float, float] | None = None  # the crop's area range; None: the augmentation's own
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    crops: int | None = None
    neighbours: int = 0  # 0: a view of the image; k: of one of its k nearest neighbours (the run's bags)

    def augment(self) -> ViewAugment | EvalTransform:
        return view_augment(self.augmentation, self.size, self.mean, self.std, scale=self.scale,
                            blur_sigma=self.blur_sigma)


def view_generator(g: torch.Generator, name: str) -> torch.Generator:
    """The stream view `name` draws from, given the sample's generator `g` (the main view: `g` itself)."""
    if name == MAIN:
        return g
    digest = hashlib.sha256(f"{g.initial_seed()}:{name}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def view_conflicts(specs: Iterable[tuple[str, ViewSpec]]) -> list[str]:
    """One line per view name that two owners (e.g. students) declare differently."""
    seen: dict[str, tuple[str, ViewSpec]] = {}
    out = []
    for owner, spec in specs:
        first = seen.setdefault(spec.name, (owner, spec))
        if first[1] != spec:
            out.append(f"view '{spec.name}' differs between {first[0]} ({_describe(first[1])}) and {owner} "
                       f"({_describe(spec)}): make the settings that make it agree")
    return out


def _describe(spec: ViewSpec) -> str:
    crops = f", {spec.crops} crops" if spec.crops is not None else ""
    of = f", of one of {spec.neighbours} neighbours" if spec.neighbours else ""
    return f"{spec.augmentation} {spec.size} px, scale {spec.scale}{crops}{of}"


class ViewSet:
    """The views of a run: the union of what its objectives read, each made once per image. Picklable
    (it runs in data-loader workers); `KeyedViewDataset` calls `batch` with each sample's generator.

    Views of a neighbour (`ViewSpec.neighbours` k > 0, BINGO's) need the run's bags, `bags` (N x >= k
    indices of each image's nearest neighbours, most similar first, `training.neighbours`): each sample
    draws one of its k first neighbours from its own stream (`neighbour`), and every view of a neighbour
    is a view of that one image."""

    bags: Tensor | None = None

    def __init__(self, specs: Sequence[ViewSpec]) -> None:
        unique: dict[str, ViewSpec] = {}
        for spec in specs:
            if unique.setdefault(spec.name, spec) != spec:
                raise ValueError(view_conflicts((str(i), s) for i, s in enumerate(specs))[0])
        self.specs = tuple(unique.values())
        self.augments = {spec.name: spec.augment() for spec in self.specs}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.specs)

    @property
    def neighbours(self) -> int:
        """The bag size the views of a neighbour draw from (0: no such view)."""
        return max((spec.neighbours for spec in self.specs), default=0)

    def neighbour(self, index: int, g: torch.Generator) -> int:
        """The neighbour of image `index` whose views this sample holds, from the sample's generator `g`."""
        if self.bags is None:
            raise RuntimeError("views of a neighbour need the run's bags: set ViewSet.bags first")
        pick = torch.randint(self.neighbours, (), generator=view_generator(g, NEIGHBOUR_STREAM))
        return int(self.bags[index, pick])

    def __call__(self, image: Tensor, g: torch.Generator) -> dict[str, Tensor]:
        return {k: v[0] for k, v in self.batch([image], [g]).items()}

    def batch(self, images: list[Tensor], gens: list[torch.Generator],
              neighbours: list[Tensor] | None = None) -> dict[str, Tensor]:
        """Every view of a batch (each sample's views from its own streams, as `view_generator` says);
        `neighbours`: each sample's neighbour (`neighbour`), for the views of a neighbour."""
        out = {}
        for spec in self.specs:
            streams = [view_generator(g, spec.name) for g in gens]
            augment = self.augments[spec.name]
            of = images
            if spec.neighbours:
                if neighbours is None:
                    raise ValueError(f"the view '{spec.name}' is of a neighbour: pass each sample's neighbour")
                of = neighbours
            if spec.crops is None:
                out[spec.name] = augment.batch(of, streams)
            else:  # each stream gives crop 0 of its image, then crop 1, ...
                out[spec.name] = torch.stack([augment.batch(of, streams) for _ in range(spec.crops)], dim=1)
        return out
