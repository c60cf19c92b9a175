"""Self-supervised augmentations whose randomness comes from an explicit generator.

Every random choice of a view is drawn from a `torch.Generator` seeded by (seed, epoch, sample index)
(`sample_generator`), never from a global RNG. A sample therefore gets the same view whichever worker
loads it and whether the run was resumed, which makes mid-epoch resume exact and teacher embeddings
cacheable. The pipelines follow MoCo-v2 / SwAV / SEED's SimCLR (SEED's `tools/utils.py`), on tensors.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A generator keyed on the triple (a hash, so that neighbouring triples are unrelated streams)."""
    digest = hashlib.sha256(f"{seed}:{epoch}:{index}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def _coin(g: torch.Generator, p: float) -> bool:
    return float(torch.rand((), generator=g)) < p


def crop_box(g: torch.Generator, height: int, width: int, scale: tuple[float, float],
             ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """RandomResizedCrop's box (top, left, h, w): area and log-aspect uniform, 10 tries, then centre."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * _uniform(g, *scale)
        aspect = math.exp(_uniform(g, *log_ratio))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (), generator=g))
            left = int(torch.randint(0, width - w + 1, (), generator=g))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        h, w = height, round(height * ratio[1])
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


@dataclass(frozen=True)
class ViewAugment:
    """One random view: crop, colour distortion, blur, flip, normalisation. Input: uint8 or float CHW."""

    size: int = 224
    scale: tuple[float, float] = (0.2, 1.0)
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    flip_p: float = 0.5
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)

    def __call__(self, image: Tensor, g: torch.Generator) -> Tensor:
        x = _to_float_rgb(image)
        top, left, h, w = crop_box(g, x.shape[-2], x.shape[-1], self.scale)
        x = TF.resized_crop(x, top, left, h, w, [self.size, self.size], antialias=True).clamp_(0, 1)
        if self.jitter_p > 0 and _coin(g, self.jitter_p):
            x = self._color_jitter(x, g)
        if self.grayscale_p > 0 and _coin(g, self.grayscale_p):
            x = TF.rgb_to_grayscale(x, num_output_channels=3)
        if self.blur_p > 0 and _coin(g, self.blur_p):
            sigma = _uniform(g, *self.blur_sigma)
            kernel = 2 * math.ceil(3 * sigma) + 1  # PIL's radius = sigma; 3 sigma covers the kernel
            x = TF.gaussian_blur(x, [kernel, kernel], [sigma, sigma])
        if self.flip_p > 0 and _coin(g, self.flip_p):
            x = TF.horizontal_flip(x)
        return TF.normalize(x, list(self.mean), list(self.std))

    def _color_jitter(self, x: Tensor, g: torch.Generator) -> Tensor:
        b, c, s, h = self.jitter
        ops = [
            lambda y: TF.adjust_brightness(y, _uniform(g, max(0.0, 1 - b), 1 + b)),
            lambda y: TF.adjust_contrast(y, _uniform(g, max(0.0, 1 - c), 1 + c)),
            lambda y: TF.adjust_saturation(y, _uniform(g, max(0.0, 1 - s), 1 + s)),
            lambda y: TF.adjust_hue(y, _uniform(g, -h, h)),
        ]
        for i in torch.randperm(4, generator=g).tolist():  # torchvision's ColorJitter order is random
            x = ops[i](x)
        return x


@dataclass(frozen=True)
class EvalTransform:
    """Resize the shorter side, centre crop, normalise (no randomness; `g` is ignored)."""

    size: int = 224
    crop_pct: float = 1.0
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)

    def __call__(self, image: Tensor, g: torch.Generator | None = None) -> Tensor:
        x = _to_float_rgb(image)
        x = TF.resize(x, [int(self.size / self.crop_pct)], antialias=True)
        x = TF.center_crop(x, [self.size, self.size])
        return TF.normalize(x.clamp(0, 1), list(self.mean), list(self.std))


def _to_float_rgb(image: Tensor) -> Tensor:
    x = image.float() / 255 if image.dtype == torch.uint8 else image.float()
    if x.ndim == 2:
        x = x[None]
    return x.expand(3, -1, -1) if x.shape[0] == 1 else x


def view_augment(kind: str, size: int, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                 scale: tuple[float, float] | None = None,
                 blur_sigma: tuple[float, float] = (0.1, 2.0)) -> ViewAugment | EvalTransform:
    """The named pipeline: `mocov2` (scale 0.2-1), `swav` (0.14-1), `simclr` (SEED's), `none` (eval).

    `blur_sigma` is in pixels of the output view: the official (0.1, 2.0) is meant for 224 px views;
    low-resolution recipes scale it down (at 32 px, sigma 2 would erase the image)."""
    mean, std, blur_sigma = tuple(mean), tuple(std), tuple(blur_sigma)
    if kind == "mocov2":
        return ViewAugment(size, scale or (0.2, 1.0), mean=mean, std=std, blur_sigma=blur_sigma)
    if kind == "swav":
        return ViewAugment(size, scale or (0.14, 1.0), mean=mean, std=std, blur_sigma=blur_sigma)
    if kind == "simclr":  # SEED's simclr_aug: jitter 0.4 on all four, always applied, no blur
        return ViewAugment(size, scale or (0.2, 1.0), jitter=(0.4, 0.4, 0.4, 0.4), jitter_p=1.0, blur_p=0.0,
                           mean=mean, std=std)
    if kind == "none":
        return EvalTransform(size, mean=mean, std=std)
    raise ValueError(f"unknown augmentation '{kind}': use mocov2, swav, simclr or none")
