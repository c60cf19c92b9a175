"""What a run reports: `metrics.jsonl`, a progress bar on a TTY (plain lines otherwise), a kNN monitor."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

METRICS_FILE = "metrics.jsonl"


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of RUN_DIR/metrics.jsonl; a line a kill cut short (or any unreadable one) is skipped."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
    return records


def truncate_metrics(run_dir: str | Path, step: int) -> list[dict[str, Any]]:
    """Keep the records up to `step` (a resume point: what follows is about to run again); returns them."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    kept = [r for r in read_metrics(run_dir) if r["step"] <= step]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
    tmp.replace(path)
    return kept


class MetricsLogger:
    """Appends one JSON object per line to RUN_DIR/metrics.jsonl (main process only) and shows progress."""

    def __init__(self, run_dir: str | Path, enabled: bool, total_steps: int, start_step: int = 0,
                 log_every: int = 10) -> None:
        self.enabled, self.log_every = enabled, max(1, log_every)
        self.total = total_steps
        self.file = open(Path(run_dir) / METRICS_FILE, "a") if enabled else None
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True)

    def write(self, record: dict[str, Any]) -> None:
        if self.file is not None:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()

    def step(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.write(record)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(epoch=record["epoch"], loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.3g}")
        elif record["step"] % self.log_every == 0 or record["step"] == self.total:
            print(f"step {record['step']}/{self.total} epoch {record['epoch']} loss {record['loss']:.4f} "
                  f"lr {record['lr']:.4g} {record['images_per_s']:.1f} img/s "
                  f"data-wait {100 * record['data_wait']:.0f}%", flush=True)

    def info(self, message: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(message)
        else:
            print(message, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.file is not None:
            self.file.close()


def _cosine_knn(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor, k: int,
                temperature: float = 0.07) -> torch.Tensor:
    """Weighted cosine kNN vote (fallback when seedzoo.evaluation.knn is not installed)."""
    sim = F.normalize(test_f, dim=1) @ F.normalize(train_f, dim=1).T
    w, idx = sim.topk(min(k, len(train_f)), dim=1)
    votes = torch.zeros(len(test_f), int(train_y.max()) + 1)
    votes.scatter_add_(1, train_y[idx], (w / temperature).exp())
    return votes.argmax(1)


@torch.no_grad()
def extract_features(backbone: nn.Module, source, transform, indices: range, device: torch.device,
                     batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    feats, labels = [], []
    for lo in range(indices.start, indices.stop, batch_size):
        items = [source.load(i) for i in range(lo, min(lo + batch_size, indices.stop))]
        x = torch.stack([transform(img) for img, _ in items]).to(device)
        feats.append(backbone(x).float().cpu())
        labels += [y for _, y in items]
    return torch.cat(feats), torch.tensor(labels)


def knn_top1(backbone: nn.Module, train_source, test_source, transform, device: torch.device,
             n_train: int, n_test: int, k: int = 20) -> float:
    """Top-1 (%) of a cosine kNN on backbone features: a cheap progress signal, not the paper protocol."""
    was_training = backbone.training
    backbone.eval()
    try:
        tr_f, tr_y = extract_features(backbone, train_source, transform, range(min(n_train, len(train_source))),
                                      device)
        te_f, te_y = extract_features(backbone, test_source, transform, range(min(n_test, len(test_source))),
                                      device)
    finally:
        backbone.train(was_training)
    try:
        from ..evaluation.knn import knn_classify
    except ImportError:
        pred = _cosine_knn(tr_f, tr_y, te_f, k)
    else:
        pred = knn_classify(tr_f, tr_y, te_f, k=k, temperature=0.07, num_classes=int(tr_y.max()) + 1)
    return float((pred == te_y).float().mean() * 100)
