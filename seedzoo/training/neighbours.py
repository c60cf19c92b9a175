"""The teacher's nearest neighbours of every training image ("bags"), for methods that read views of a
neighbour (`ViewSpec.neighbours`, BINGO's).

The bags are computed once per run, from the teacher's L2-normalised pooled backbone features of a
centre view of each image (resize, centre crop of 0.875 as BINGO's `compute_knn.py`, eval mode), and kept
in the run folder (`neighbours.safetensors`): a resume reads them back instead of running the teacher
over the data again. The file records what it was computed from (teacher, data, number of images and of
neighbours); a file that does not match is computed again. The work is shared by the processes of a
run: each embeds a slice of the images (in data-loader workers) and ranks a slice of them against all,
on its device.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from ..data.augment import EvalTransform
from ..data.datasets import ImageSource, UnreadableImageError
from ..files import write_atomic
from . import distributed as D
from .config import TrainConfig, to_dict
from .networks import Encoder
from .run_folder import BAGS_FILE

CENTRE_CROP = 0.875  # 224 of 256, as the authors' Resize(256) + CenterCrop(224)


@torch.no_grad()
def nearest_neighbours(features: Tensor, k: int, rows: range | None = None) -> Tensor:
    """The indices of the k most similar other rows of `features` (cosine similarity, most similar first),
    for the rows `rows` (all by default): len(rows) x k, on the features' device."""
    if not 0 < k < len(features):
        raise ValueError(f"{k} neighbours need more than {k} images; there are {len(features)}")
    rows = range(len(features)) if rows is None else rows
    f = F.normalize(features.float(), dim=1)
    chunk = max(1, min(1024, 2**27 // len(f)))  # similarities of at most 2^27 pairs (512 MB) at a time
    out = [f.new_zeros((0, k), dtype=torch.long)]
    for start in range(rows.start, rows.stop, chunk):
        stop = min(start + chunk, rows.stop)
        sim = f[start:stop] @ f.T
        mine = torch.arange(stop - start, device=f.device)
        sim[mine, mine + start] = -float("inf")  # an image is not its own neighbour
        out.append(sim.topk(k, dim=1).indices)
    return torch.cat(out)


class _CentreViews(Dataset):
    """(centre view, readable) of the images `indices` of `source`: an unreadable image is zeros, False."""

    def __init__(self, source: ImageSource, transform: EvalTransform, indices: range) -> None:
        self.source, self.transform, self.indices = source, transform, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[Tensor, bool]:
        try:
            return self.transform(self.source.load(self.indices[i])[0]), True
        except UnreadableImageError:
            return torch.zeros(3, self.transform.size, self.transform.size), False


@torch.no_grad()
def backbone_features(backbone: nn.Module, source: ImageSource, transform: EvalTransform, device: torch.device,
                      indices: range | None = None, workers: int = 0, batch: int = 256) -> Tensor:
    """len(indices) x D L2-normalised features of the images `indices` of `source` (all by default), in
    order, on `device`; an unreadable image's are zeros."""
    backbone.eval()
    views = _CentreViews(source, transform, range(len(source)) if indices is None else indices)
    out = []
    for x, readable in DataLoader(views, batch_size=batch, num_workers=workers):
        f = F.normalize(backbone(x.to(device)).float(), dim=1)
        out.append(f * readable.to(device=device, dtype=f.dtype)[:, None])
    return torch.cat(out)


def _slice(n: int) -> tuple[range, int]:
    """This process's equal share of n items (the last may be short) and the share's full length."""
    per = -(-n // D.world_size())
    return range(min(D.rank() * per, n), min((D.rank() + 1) * per, n)), per


def _gather(part: Tensor, per: int, n: int) -> Tensor:
    """Every process's `part` (padded to `per` rows) concatenated in rank order, the first n rows."""
    padded = part.new_zeros((per, *part.shape[1:]))
    padded[:len(part)] = part
    return D.all_gather_cat(padded)[:n]


def compute_neighbours(teacher: nn.Module, source: ImageSource, cfg: TrainConfig, k: int,
                       device: torch.device) -> Tensor:
    """N x k bags (int64, on the CPU) from `teacher`'s backbone; every process of the run takes part."""
    d = cfg.data
    transform = EvalTransform(d.image_size, CENTRE_CROP, tuple(d.mean), tuple(d.std))
    # a teacher network of seedzoo's is backbone + head; another module is taken whole
    backbone = teacher.backbone if isinstance(teacher, Encoder) else teacher
    n = len(source)
    mine, per = _slice(n)
    # a process whose share is empty (more processes than images per share) embeds one image for the width
    features = backbone_features(backbone, source, transform, device, mine or range(1), d.workers)[:len(mine)]
    features = _gather(features, per, n)
    return _gather(nearest_neighbours(features, k, mine), per, n).cpu()


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
    """The run's bags (N x k, int64): read from `run_dir` when every process finds them computed from this
    teacher and data, else computed by all processes and written there by the main one."""
    path = run_dir / BAGS_FILE
    record = _record(cfg, len(source), k)
    bags = _read(path, record)
    found = int(D.all_reduce_sum(torch.tensor(int(bags is not None), device=device)).item())
    if bags is not None and found == D.world_size():
        return bags
    bags = compute_neighbours(teacher, source, cfg, k, device)
    if D.rank() == 0:
        write_atomic(path, save({"bags": bags.contiguous()}, metadata=record))
    return bags


def _read(path: Path, record: dict[str, str]) -> Tensor | None:
    if not path.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        if f.metadata() != record:
            return None
    return load_file(str(path))["bags"]
