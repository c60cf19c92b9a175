"""The teacher's nearest neighbours of every training image ("bags"), for methods that read views of a
neighbour (`ViewSpec.neighbours`, BINGO's).

The bags are computed once per run, from the teacher's L2-normalised pooled backbone features of a
centre view of each image (resize, centre crop of 0.875 as BINGO's `compute_knn.py`, eval mode), and kept
in the run folder (`neighbours.safetensors`): a resume reads them back instead of running the teacher
over the data again. The file records what it was computed from (teacher, data, number of images and of
neighbours); a file that does not match is computed again.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save
from torch import Tensor, nn

from ..data.augment import EvalTransform
from ..data.datasets import ImageSource, UnreadableImageError
from ..files import write_atomic
from . import distributed as D
from .config import TrainConfig, to_dict
from .networks import Encoder
from .run_folder import BAGS_FILE

CENTRE_CROP = 0.875  # 224 of 256, as the authors' Resize(256) + CenterCrop(224)


@torch.no_grad()
def nearest_neighbours(features: Tensor, k: int, chunk: int = 1024) -> Tensor:
    """N x k indices of each row's k most similar other rows (cosine similarity, most similar first)."""
    if not 0 < k < len(features):
        raise ValueError(f"{k} neighbours need more than {k} images; there are {len(features)}")
    f = F.normalize(features.float(), dim=1)
    out = []
    for start in range(0, len(f), chunk):
        sim = f[start:start + chunk] @ f.T
        rows = torch.arange(len(sim), device=f.device)
        sim[rows, rows + start] = -float("inf")  # an image is not its own neighbour
        out.append(sim.topk(k, dim=1).indices)
    return torch.cat(out)


@torch.no_grad()
def backbone_features(backbone: nn.Module, source: ImageSource, transform: EvalTransform, device: torch.device,
                      batch: int = 256) -> Tensor:
    """N x D L2-normalised features of every image of `source`, in order (an unreadable image: zeros)."""
    backbone.eval()
    out = []
    for start in range(0, len(source), batch):
        images, readable = [], []
        for i in range(start, min(start + batch, len(source))):
            try:
                images.append(transform(source.load(i)[0]))
                readable.append(True)
            except UnreadableImageError:
                images.append(torch.zeros(3, transform.size, transform.size))
                readable.append(False)
        f = F.normalize(backbone(torch.stack(images).to(device)).float(), dim=1)
        out.append(f * torch.tensor(readable, device=device, dtype=f.dtype)[:, None])
    return torch.cat(out).cpu()


def _record(cfg: TrainConfig, images: int, k: int) -> dict[str, str]:
    """What the bags are computed from: a file recording anything else is stale."""
    t, d = to_dict(cfg)["teacher"], to_dict(cfg)["data"]
    made_of: dict[str, Any] = {  # a random-init teacher is drawn from the seed
        "teacher": {k: t[k] for k in ("arch", "entry", "pretrained", "target", "head_hidden", "head_batch_norm",
                                       "embed_dim")},
        "data": {k: d[k] for k in ("source", "path", "subset", "image_size", "mean", "std")}, "seed": cfg.seed}
    return {"format": "seedzoo-neighbours", "images": str(images), "neighbours": str(k),
            "made_of": json.dumps(made_of, sort_keys=True)}


def run_neighbours(run_dir: Path, teacher: nn.Module, source: ImageSource, cfg: TrainConfig, k: int,
                   device: torch.device) -> Tensor:
    """The run's bags (N x k, int64): read from `run_dir` when they were computed from this teacher and
    data, else computed on the main process with `teacher`'s backbone and written there."""
    path = run_dir / BAGS_FILE
    record = _record(cfg, len(source), k)
    bags = _read(path, record)
    if bags is None:
        if D.rank() == 0:
            d = cfg.data
            transform = EvalTransform(d.image_size, CENTRE_CROP, tuple(d.mean), tuple(d.std))
            # a teacher network of seedzoo's is backbone + head; another module is taken whole
            backbone = teacher.backbone if isinstance(teacher, Encoder) else teacher
            bags = nearest_neighbours(backbone_features(backbone, source, transform, device), k)
            write_atomic(path, save({"bags": bags.contiguous()}, metadata=record))
        D.barrier()
        bags = _read(path, record) if bags is None else bags
        if bags is None:
            raise RuntimeError(f"{path}: the neighbour bags were not written by the main process")
    return bags


def _read(path: Path, record: dict[str, str]) -> Tensor | None:
    if not path.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        if f.metadata() != record:
            return None
    return load_file(str(path))["bags"]
