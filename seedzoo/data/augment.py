"""Self-supervised augmentations whose randomness comes from an explicit generator.

Every random choice of a view is drawn from a `torch.Generator` seeded by (seed, epoch, sample index)
(`sample_generator`), never from a global RNG. A sample therefore gets the same view whichever worker
loads it and whether the run was resumed, which makes mid-epoch resume exact and teacher embeddings
cacheable. The pipelines follow MoCo-v2 / SwAV / SEED's SimCLR (SEED's `tools/utils.py`), on tensors.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
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
class ViewParams:
    """The random choices of one view, drawn from its sample's generator (`ViewAugment.sample`)."""

    box: tuple[int, int, int, int]  # crop (top, left, h, w)
    jitter: tuple[tuple[int, float], ...]  # (op, factor) in the order applied; op 0-3: brightness,
    #                                        contrast, saturation, hue; empty: no colour jitter
    gray: bool
    sigma: float  # 0: no blur
    flip: bool


@dataclass(frozen=True)
class ViewAugment:
    """One random view: crop, colour distortion, blur, flip, normalisation. Input: uint8 or float CHW.

    The choices of each view are drawn from its own generator (`sample`); `batch` then applies the
    choices of many views at once: crop-resize and blur per image, the colour operations, grayscale,
    flip and normalisation as tensor operations over the batch (at 32 px a per-image pipeline is
    dispatch overhead, not arithmetic). A view does not depend on the batch it is computed in."""

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

    def sample(self, g: torch.Generator, height: int, width: int) -> ViewParams:
        box = crop_box(g, height, width, self.scale)
        jitter: tuple[tuple[int, float], ...] = ()
        if self.jitter_p > 0 and _coin(g, self.jitter_p):
            b, c, s, h = self.jitter
            ranges = [(max(0.0, 1 - b), 1 + b), (max(0.0, 1 - c), 1 + c), (max(0.0, 1 - s), 1 + s), (-h, h)]
            order = torch.randperm(4, generator=g).tolist()  # torchvision's ColorJitter order is random
            jitter = tuple((i, _uniform(g, *ranges[i])) for i in order)
        gray = self.grayscale_p > 0 and _coin(g, self.grayscale_p)
        sigma = _uniform(g, *self.blur_sigma) if self.blur_p > 0 and _coin(g, self.blur_p) else 0.0
        flip = self.flip_p > 0 and _coin(g, self.flip_p)
        return ViewParams(box, jitter, gray, sigma, flip)

    def __call__(self, image: Tensor, g: torch.Generator) -> Tensor:
        return self.batch([image], [g])[0]

    def batch(self, images: Sequence[Tensor], gens: Sequence[torch.Generator]) -> Tensor:
        """N x 3 x size x size: view i of `images[i]` from `gens[i]`."""
        params = [self.sample(g, img.shape[-2], img.shape[-1]) for img, g in zip(images, gens)]
        x = torch.stack([TF.resized_crop(_to_float_rgb(img), *p.box, [self.size, self.size], antialias=True)
                         for img, p in zip(images, params)]).clamp_(0, 1)
        for position in range(4):  # the k-th colour operation of every jittered view
            for op, fn in enumerate(_COLOR_OPS):
                rows = [i for i, p in enumerate(params) if len(p.jitter) > position and p.jitter[position][0] == op]
                if rows:
                    factors = torch.tensor([params[i].jitter[position][1] for i in rows]).view(-1, 1, 1, 1)
                    x[rows] = fn(x[rows], factors)
        gray = [i for i, p in enumerate(params) if p.gray]
        if gray:
            x[gray] = _gray(x[gray]).expand(-1, 3, -1, -1)
        blurred = [i for i, p in enumerate(params) if p.sigma]
        if blurred:
            x[blurred] = _gaussian_blur(x[blurred], torch.tensor([params[i].sigma for i in blurred]))
        flip = [i for i, p in enumerate(params) if p.flip]
        if flip:
            x[flip] = x[flip].flip(-1)
        mean, std = torch.tensor(self.mean).view(1, -1, 1, 1), torch.tensor(self.std).view(1, -1, 1, 1)
        return (x - mean) / std


# Colour operations on N x 3 x H x W in [0, 1] with one factor per image (N x 1 x 1 x 1), as
# torchvision's adjust_brightness / _contrast / _saturation / _hue compute them for one image.
def _gray(x: Tensor) -> Tensor:
    r, g, b = x.unbind(1)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(1)


def _blend(a: Tensor, b: Tensor, ratio: Tensor) -> Tensor:
    return (ratio * a + (1 - ratio) * b).clamp_(0, 1)


def _brightness(x: Tensor, f: Tensor) -> Tensor:
    return (x * f).clamp_(0, 1)


def _contrast(x: Tensor, f: Tensor) -> Tensor:
    return _blend(x, _gray(x).mean(dim=(1, 2, 3), keepdim=True), f)


def _saturation(x: Tensor, f: Tensor) -> Tensor:
    return _blend(x, _gray(x), f)


def _hue(x: Tensor, f: Tensor) -> Tensor:
    """Rotate the hue (HSV, as PIL) by f turns. Grey images (all channels equal) have no hue: they are
    returned as they are, which is what the rotation computes for them."""
    colour = (x.amax(1) != x.amin(1)).flatten(1).any(1)
    if not colour.all():
        out = x.clone()
        if colour.any():
            out[colour] = _hue(x[colour], f[colour])
        return out
    hi, lo = x.max(1).values, x.min(1).values
    delta = hi - lo
    flat = delta == 0
    safe = torch.where(flat, torch.ones_like(delta), delta)
    r, g, b = ((hi.unsqueeze(1) - x) / safe.unsqueeze(1)).unbind(1)  # distances to the max channel
    R, G = x[:, 0], x[:, 1]
    h = torch.where(hi == R, b - g, torch.where(hi == G, 2.0 + r - b, 4.0 + g - r))
    h = torch.where(flat, torch.zeros_like(h), h)
    h = (h / 6.0 + f.view(-1, 1, 1)).remainder(1.0)
    s = delta / torch.where(hi == 0, torch.ones_like(hi), hi)
    v = hi
    h6 = h * 6
    i = h6.floor()
    frac = h6 - i
    p, q, t = v * (1 - s), v * (1 - s * frac), v * (1 - s * (1 - frac))
    i = i.long().remainder(6)
    choices = torch.stack([torch.stack(c, 1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v),
                                                       (v, p, q))], 1)  # N x 6 x 3 x H x W
    out = choices.gather(1, i[:, None, None].expand(-1, 1, 3, -1, -1)).squeeze(1)
    return out.clamp_(0, 1)


_COLOR_OPS = (_brightness, _contrast, _saturation, _hue)


def _gaussian_blur(x: Tensor, sigma: Tensor) -> Tensor:
    """Each image of N x C x H x W blurred with its own sigma (px), as torchvision's gaussian_blur: a
    2-D kernel of 2 * ceil(3 sigma) + 1 taps (PIL's radius = sigma; 3 sigma covers the kernel), reflect
    padding. One grouped convolution per kernel size."""
    c, h, w = x.shape[1:]
    sizes = 2 * torch.ceil(3 * sigma).long() + 1
    out = torch.empty_like(x)
    for size in sizes.unique().tolist():
        rows = (sizes == size).nonzero().flatten()
        half = (size - 1) / 2
        taps = torch.linspace(-half, half, size)
        k1 = torch.softmax(-0.5 * (taps[None] / sigma[rows, None]) ** 2, dim=1)  # normalised Gaussians
        k2 = (k1[:, :, None] * k1[:, None, :]).repeat_interleave(c, 0)[:, None]  # (m*C) x 1 x size x size
        part = F.pad(x[rows].reshape(1, -1, h, w), [size // 2] * 4, mode="reflect")
        out[rows] = F.conv2d(part, k2, groups=len(rows) * c).view(-1, c, h, w)
    return out


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

    def batch(self, images: Sequence[Tensor], gens: Sequence[torch.Generator] | None = None) -> Tensor:
        return torch.stack([self(image) for image in images])


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
    mean, std = tuple(mean), tuple(std)
    blur_sigma = cast(tuple[float, float], tuple(blur_sigma))  # a YAML list arrives as a list
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
