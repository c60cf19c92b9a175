"""Nearest neighbours of the training images ("bags"), for methods that read views of a neighbour (BINGO)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


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
