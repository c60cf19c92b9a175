"""Whether a trained network's features in eval mode are usable: batch-norm statistics recomputed for the
weights the run ended with, and the spread of the features checked against the architecture at random init.

Why both. In training mode batch norm normalises with each batch's own statistics; in eval mode (every
export, every evaluation) with running averages updated by `momentum` per step. After a short run those
averages still describe the weights of many steps ago (or the initial 0/1), and the exported network can
map every image to nearly the same vector (a 28-step run on 2,000 images: mean pairwise cosine 1.000 in
eval mode, 0.056 in train mode) while the loss, computed in training mode, falls steadily.

`recompute_batch_norm` replaces the running averages by the exact average over a fixed set of training
images passed through the final weights (momentum None: a cumulative mean), as Precise-BN does. The
images go through the evaluation transform, not the augmented training views: the statistics are for
the eval-mode network, which sees clean images (a resize and centre crop), so they should describe the
activations of clean images; the augmented views (crops of 20-100 % of the image, colour jitter, blur)
shift them away from what the export sees.

`feature_spread` measures what an export gives: 1 - the mean pairwise cosine of its L2-normalised
features on a fixed sample (0: every image maps to one direction) and the effective rank of the centred
features (exp of the entropy of the normalised singular values). `check_spread` compares the trained
network with the same architecture at random init on the same images, so the threshold does not depend
on the architecture or the data: features whose spread is below `COLLAPSE_FRACTION` of the random
network's are called collapsed.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

COLLAPSE_FRACTION = 0.2  # a trained network spreads its features less than a fifth as much as at random init
SETTLED_WEIGHT = 0.01  # running statistics have settled when their initial values weigh less than this


def batch_norms(model: nn.Module) -> list[_BatchNorm]:
    """The batch-norm layers of `model` that keep running statistics."""
    return [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


def steps_to_settle(model: nn.Module) -> int:
    """Steps after which every running average of `model` weighs its start by less than `SETTLED_WEIGHT`:
    (1 - momentum) ** steps < SETTLED_WEIGHT for the slowest layer (0 when it has no batch norm)."""
    momenta = [m.momentum for m in batch_norms(model) if m.momentum]
    if not momenta:
        return 0
    slowest = min(momenta)
    return math.ceil(math.log(SETTLED_WEIGHT) / math.log1p(-slowest)) if slowest < 1 else 1


@torch.no_grad()
def recompute_batch_norm(model: nn.Module, batches: Iterable[Tensor]) -> int:
    """Replace the running statistics of every batch norm in `model` by their average over `batches`
    (each a batch as the network takes it), leaving its other layers in eval mode (no dropout) and its
    modes and momenta as they were. Returns how many images were used (0: no batch norm or no batches,
    nothing changed)."""
    norms = batch_norms(model)
    if not norms:
        return 0
    modes = {m: m.training for m in model.modules()}
    momenta = [m.momentum for m in norms]
    kept = [(m.running_mean.clone(), m.running_var.clone()) for m in norms]  # type: ignore[union-attr]
    seen = 0
    try:
        model.eval()
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: every batch weighs the same
            m.train()
        for x in batches:
            model(x)
            seen += len(x)
    finally:
        for m, momentum, (mean, var) in zip(norms, momenta, kept):
            m.momentum = momentum
            if not seen:  # nothing to average: the statistics stay as they were
                m.running_mean.copy_(mean)  # type: ignore[union-attr]
                m.running_var.copy_(var)  # type: ignore[union-attr]
        for module, mode in modes.items():
            module.train(mode)
    return seen


@dataclass(frozen=True)
class Spread:
    """How spread out a network's features are on a sample (see the module's docstring)."""

    spread: float  # 1 - mean pairwise cosine (pairs of different images); 0: one direction for all
    effective_rank: float


@torch.no_grad()
def embed(model: nn.Module, batches: Iterable[Tensor]) -> Tensor:
    """The features of `batches` in eval mode, in fp32 on the CPU; the model's mode is restored."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(x).float().cpu() for x in batches])
    finally:
        model.train(was_training)


def feature_spread(features: Tensor) -> Spread:
    """The spread of N x D features (N >= 2)."""
    n = len(features)
    if n < 2:
        raise ValueError("the spread of features needs at least 2 images")
    z = F.normalize(features.double().flatten(1), dim=1)
    total = z.sum(0)
    mean_cosine = float((total @ total - n) / (n * (n - 1)))  # every pair of different images
    singular = torch.linalg.svdvals(z - z.mean(0))
    p = singular / singular.sum().clamp_min(1e-300)
    entropy = float(-(p * p.clamp_min(1e-300).log()).sum())
    return Spread(spread=1.0 - mean_cosine, effective_rank=math.exp(entropy) if singular.sum() > 0 else 0.0)


@dataclass(frozen=True)
class SpreadCheck:
    """A trained network's spread against its architecture at random init, on the same images."""

    trained: Spread
    random_init: Spread
    images: int

    @property
    def ratio(self) -> float:
        return self.trained.spread / self.random_init.spread if self.random_init.spread > 0 else math.inf

    @property
    def collapsed(self) -> bool:
        return self.ratio < COLLAPSE_FRACTION

    def record(self) -> dict[str, Any]:
        return {"collapsed": self.collapsed, "spread": round(self.trained.spread, 6),
                "random_init_spread": round(self.random_init.spread, 6), "ratio": round(self.ratio, 4),
                "effective_rank": round(self.trained.effective_rank, 3),
                "random_init_effective_rank": round(self.random_init.effective_rank, 3), "images": self.images,
                "threshold": COLLAPSE_FRACTION}

    def describe(self) -> str:
        """One line: the numbers and, when collapsed, what it means."""
        numbers = (f"feature spread {self.trained.spread:.4f} (1 - mean pairwise cosine, eval mode, {self.images} "
                   f"images) vs {self.random_init.spread:.4f} at random init; effective rank "
                   f"{self.trained.effective_rank:.1f} vs {self.random_init.effective_rank:.1f}")
        if not self.collapsed:
            return numbers
        return (f"COLLAPSED: {numbers}: the features in eval mode barely tell images apart (spread below "
                f"{COLLAPSE_FRACTION:g} of the random network's)")


def check_spread(trained: Tensor, random_init: Tensor) -> SpreadCheck:
    """The check of `trained` features against `random_init` features of the same images."""
    if len(trained) != len(random_init):
        raise ValueError(f"{len(trained)} trained and {len(random_init)} random-init features: pass the same images")
    return SpreadCheck(feature_spread(trained), feature_spread(random_init), len(trained))


def spread_record(spread: Spread) -> dict[str, float]:
    return {k: round(v, 6) for k, v in asdict(spread).items()}


# --- what the trainer calls --------------------------------------------------------------------

SPREAD_IMAGES = 256  # the fixed sample whose features are checked
RECOMPUTE_IMAGES = 2048  # images whose activations give the recomputed statistics


def sample_indices(n: int, seed: int) -> tuple[list[int], list[int]]:
    """(the spread sample, the images for recomputing statistics) among `n` images: a seeded shuffle,
    disjoint where there are enough images (a small data set gives all its images to both)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    sample = order[:SPREAD_IMAGES]
    rest = order[SPREAD_IMAGES:SPREAD_IMAGES + RECOMPUTE_IMAGES]
    return sample, rest if len(rest) >= min(RECOMPUTE_IMAGES, n // 2) else order[:RECOMPUTE_IMAGES]


def image_batches(source: Any, indices: list[int], transform: Any, batch_size: int,
                  device: torch.device) -> Iterable[Tensor]:
    """The images `indices` of an image source, through `transform`, in batches on `device`."""
    from ..data.datasets import UnreadableImageError

    for lo in range(0, len(indices), batch_size):
        images = []
        for i in indices[lo:lo + batch_size]:
            try:
                images.append(transform(source.load(i)[0]))
            except UnreadableImageError:  # the run skips it (data.on_error=skip) or has stopped on it already
                continue
        if images:
            yield torch.stack(images).to(device)


@dataclass
class ExportHealth:
    """What was done to an export's batch-norm statistics, and the spread check of its features."""

    check: SpreadCheck
    batch_norm: str  # one line: recomputed (why, over how many images) or kept (why)
    before: SpreadCheck | None = None  # the check with the running statistics the run ended with

    @property
    def collapsed(self) -> bool:
        return self.check.collapsed

    def record(self) -> dict[str, Any]:
        out = {**self.check.record(), "batch_norm": self.batch_norm}
        if self.before is not None:
            out["before_recompute"] = self.before.record()
        return out


def export_health(backbone: nn.Module, reference: Tensor, sample: Iterable[Tensor], recompute_on: Iterable[Tensor],
                  *, steps: int, mode: str = "auto") -> ExportHealth:
    """Recompute `backbone`'s batch-norm statistics where needed, then check its features in eval mode.

    `reference`: the features of the random-init architecture on `sample` (`embed`); `recompute_on`: the
    training batches for the statistics (eval transform); `mode`: "recompute" (always), "keep" (never) or
    "auto": when the run's `steps` are fewer than its batch norm needs to settle, or when its features
    in eval mode have collapsed with the statistics the run left.
    """
    sample = list(sample)
    before = check_spread(embed(backbone, sample), reference)
    settle = steps_to_settle(backbone)
    if not batch_norms(backbone):
        return ExportHealth(before, "none (the network has no batch norm)")
    if mode == "keep":
        return ExportHealth(before, "kept (export_batch_norm=keep)")
    if mode == "recompute":
        why = "export_batch_norm=recompute"
    elif steps < settle:
        why = f"the run's {steps} steps are fewer than the {settle} its batch norm needs to settle"
    elif before.collapsed:
        why = "the features in eval mode had collapsed with the running statistics the run left"
    else:
        return ExportHealth(before, f"kept (the run's {steps} steps let them settle; features spread)")
    images = recompute_batch_norm(backbone, recompute_on)
    after = check_spread(embed(backbone, sample), reference)
    return ExportHealth(after, f"recomputed over {images} training images (eval transform): {why}", before)


class RunChecks:
    """The fixed images of one run's checks and each student's random-init reference features: the
    monitor's spread at every check, and the export's statistics and spread at the end.

    `source`: the training images; `transform`: the evaluation transform of the run's image size;
    `seed`: the run's seed (the same images in every process and on resume).
    """

    def __init__(self, source: Any, transform: Any, seed: int, batch_size: int, device: torch.device) -> None:
        self.source, self.transform, self.batch_size, self.device = source, transform, batch_size, device
        self.sample, self.rest = sample_indices(len(source), seed)
        self.references: dict[str, Tensor] = {}

    def batches(self, indices: list[int]) -> Iterable[Tensor]:
        return image_batches(self.source, indices, self.transform, self.batch_size, self.device)

    def add_reference(self, name: str, random_init: nn.Module) -> None:
        """Record the features of `name`'s architecture at random init (a network in that state)."""
        self.references[name] = embed(random_init, self.batches(self.sample))

    def spread(self, name: str, backbone: nn.Module) -> SpreadCheck:
        """`backbone`'s features in eval mode, as they are now, against its reference."""
        return check_spread(embed(backbone, self.batches(self.sample)), self.references[name])

    def export(self, name: str, backbone: nn.Module, steps: int, mode: str) -> ExportHealth:
        """`export_health` of `backbone` (its batch-norm statistics are changed in place where needed)."""
        return export_health(backbone, self.references[name], self.batches(self.sample), self.batches(self.rest),
                             steps=steps, mode=mode)
