"""seedzoo's MoCo-v2 trainer against lightly's MoCo-v2, side by side on the same everything.

seedzoo: `seedzoo.training.train` on a recipe (default `mocov2_r18.fmnist`, resized by the options below).
lightly: a loop written here from lightly's parts, as lightly's MoCo example builds it: `MoCoProjectionHead`,
`NTXentLoss(temperature, memory_bank_size=(K, dim))`, `update_momentum`, `batch_shuffle`/`batch_unshuffle`
and lightly's `SplitBatchNorm` (as in its CIFAR ResNet) in both encoders. Shared by the two: the backbone
architecture and its initial weights, the images, the batches and their augmented views (seedzoo's seeded
sampler and views, so both see the same pixels in the same order), SGD (lr x B/256, momentum, weight
decay), the lr schedule, the temperature, momentum, queue size and BN groups of the recipe, and the kNN
monitor (seedzoo's, run on both backbones after every epoch). What each side draws on its own: the head's
initial weights, the initial queue and the key shuffles.

    python benchmarks/moco_vs_lightly.py [--subset 4096] [--epochs 3] [--batch 256] [--queue 4096]
        [--knn-train 2000] [--knn-test 1000] [--recipe mocov2_r18.fmnist] [key=value ...]

Prints one row per epoch: the mean training loss and the kNN top-1 of each side, and their difference.
Needs `pip install lightly` (the `test` extra) and Fashion-MNIST (or a recipe whose data has labels).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import timm
import torch
from torch import nn
from torch.utils.data import DataLoader

from seedzoo.data.datasets import KeyedViewDataset, build_source
from seedzoo.data.sampler import GlobalBatchSampler
from seedzoo.training.cohort import UNNAMED
from seedzoo.training.config import TrainConfig, load_config
from seedzoo.training.engine import train
from seedzoo.training.methods import get_method
from seedzoo.training.metrics import METRICS_FILE, student_records
from seedzoo.training.monitor import knn_monitor, monitor_split
from seedzoo.training.networks import backbone_width, create_backbone
from seedzoo.training.views import ViewSet


@dataclass
class Curve:
    """Per-epoch mean training loss and kNN top-1 of one side, and its wall time."""

    loss: list[float] = field(default_factory=list)
    knn: list[float] = field(default_factory=list)
    seconds: float = 0.0


def config(recipe: str, subset: int, epochs: int, batch: int, queue: int, knn_train: int, knn_test: int,
           overrides: list[str] = ()) -> TrainConfig:
    """The recipe at the benchmark's size, monitored after every epoch, on the CPU or GPU it finds."""
    return load_config(recipe, [
        f"data.subset={subset}", f"epochs={epochs}", f"global_batch={batch}", f"moco.queue_size={queue}",
        "monitor.knn_every=1", f"monitor.knn_train={knn_train}", f"monitor.knn_test={knn_test}",
        "data.workers=0", "log_every=1000000", "save_every=1000000", "keep_last=1", "export=false", "name=",
        *overrides,
    ])


def initial_backbone(cfg: TrainConfig) -> nn.Module:
    torch.manual_seed(cfg.seed)
    return create_backbone(cfg.student.arch)


def _knn(cfg: TrainConfig, backbone: nn.Module, device: torch.device) -> float:
    """The trainer's kNN monitor, on the same split it draws for the run."""
    split = monitor_split(cfg.data, cfg.monitor, cfg.seed)
    assert split is not None, "the benchmark's data has labels"
    return knn_monitor(backbone, split, cfg.monitor.knn_k, device)


def run_seedzoo(cfg: TrainConfig, backbone: nn.Module) -> Curve:
    """seedzoo's trainer, its curves read back from the run's metrics.jsonl."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        result = train(cfg, run_dir, student=copy.deepcopy(backbone), command="benchmarks/moco_vs_lightly.py")
        records = [json.loads(line) for line in (Path(run_dir) / METRICS_FILE).read_text().splitlines()]
    steps_per_epoch = result.step // cfg.epochs
    records = student_records(records, UNNAMED)  # the run's one student (the config is unnamed)
    losses = [r["loss"] for r in records if "loss" in r]
    knn_key = f"knn{cfg.monitor.knn_k}_top1"
    return Curve(loss=[sum(chunk) / len(chunk) for chunk in _chunks(losses, steps_per_epoch)],
                 knn=[r[knn_key] for r in records if knn_key in r], seconds=time.perf_counter() - start)


def _chunks(values: list[float], size: int) -> Iterator[list[float]]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


def _lightly_backbone(cfg: TrainConfig, init: nn.Module) -> nn.Module:
    """The same architecture with lightly's SplitBatchNorm, holding `init`'s parameters."""
    from lightly.models.batchnorm import SplitBatchNorm

    splits = cfg.moco.bn_splits
    kwargs = {"norm_layer": partial(SplitBatchNorm, num_splits=splits)} if splits > 1 else {}
    try:
        backbone = timm.create_model(cfg.student.arch, num_classes=0, **kwargs)
    except TypeError as err:
        raise SystemExit(f"{cfg.student.arch} takes no norm_layer, so lightly's SplitBatchNorm cannot be put "
                         f"in it: compare a ResNet, or set moco.bn_splits=1 ({err})") from None
    with torch.no_grad():
        params = dict(init.named_parameters())
        for name, p in backbone.named_parameters():
            p.copy_(params[name])
    return backbone


def run_lightly(cfg: TrainConfig, init: nn.Module) -> Curve:
    """MoCo-v2 from lightly's parts, on seedzoo's batches and views, with the recipe's optimiser."""
    from lightly.loss import NTXentLoss
    from lightly.models.modules import MoCoProjectionHead
    from lightly.models.utils import batch_shuffle, batch_unshuffle, deactivate_requires_grad, update_momentum

    start = time.perf_counter()
    device = torch.device("cuda" if torch.cuda.is_available() and cfg.device != "cpu" else "cpu")
    torch.manual_seed(cfg.seed)
    s, moco, optim = cfg.student, cfg.moco, cfg.optim
    backbone = _lightly_backbone(cfg, init).to(device)
    head = MoCoProjectionHead(backbone_width(backbone), s.head_hidden or backbone_width(backbone),
                              s.embed_dim).to(device)
    backbone_key, head_key = copy.deepcopy(backbone), copy.deepcopy(head)
    deactivate_requires_grad(backbone_key)
    deactivate_requires_grad(head_key)
    criterion = NTXentLoss(temperature=moco.temperature, memory_bank_size=(moco.queue_size, s.embed_dim))
    params = [*backbone.parameters(), *head.parameters()]
    peak = optim.base_lr * cfg.global_batch / 256
    optimizer = torch.optim.SGD(params, lr=peak, momentum=optim.momentum, weight_decay=optim.weight_decay)

    source = build_source(cfg.data.source, cfg.data.path, cfg.data.subset)
    dataset = KeyedViewDataset(source, ViewSet(get_method("moco").views(cfg)), seed=cfg.seed)
    sampler = GlobalBatchSampler(len(dataset), cfg.global_batch, 0, 1, cfg.seed)
    steps_per_epoch = len(dataset) // cfg.global_batch
    curve = Curve()
    for module in (backbone, head, backbone_key, head_key):
        module.train()
    for epoch in range(cfg.epochs):
        sampler.set_epoch(epoch)
        losses = []
        for i, batch in enumerate(DataLoader(dataset, batch_sampler=sampler, num_workers=0)):
            # MoCo-v2's cosine without warm-up (main_moco.py --cos); "step" evaluates it per step
            t = epoch + i / steps_per_epoch if optim.schedule == "step" else epoch
            lr = peak * 0.5 * (1 + math.cos(math.pi * t / cfg.epochs))
            if optim.warmup_epochs:
                raise SystemExit("the lightly side implements MoCo-v2's schedule without warm-up")
            for group in optimizer.param_groups:
                group["lr"] = lr
            update_momentum(backbone, backbone_key, m=moco.momentum)
            update_momentum(head, head_key, m=moco.momentum)
            query = head(backbone(batch["image"].to(device)))
            with torch.no_grad():
                shuffled, order = batch_shuffle(batch["key_image"].to(device))
                key = batch_unshuffle(head_key(backbone_key(shuffled)), order)
            loss = criterion(query, key)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        curve.loss.append(sum(losses) / len(losses))
        curve.knn.append(_knn(cfg, backbone, device))
    curve.seconds = time.perf_counter() - start
    return curve


def compare(cfg: TrainConfig) -> tuple[Curve, Curve]:
    """(seedzoo's curve, lightly's curve) of `cfg`, both from the same initial backbone."""
    init = initial_backbone(cfg)
    return run_seedzoo(cfg, init), run_lightly(cfg, init)


def table(cfg: TrainConfig, ours: Curve, theirs: Curve) -> str:
    k = cfg.monitor.knn_k
    lines = [f"{cfg.student.arch}, {cfg.data.subset or 'all'} images at {cfg.data.image_size} px, batch "
             f"{cfg.global_batch}, queue {cfg.moco.queue_size}, bn_splits {cfg.moco.bn_splits}, lr "
             f"{cfg.optim.base_lr} x B/256 ({cfg.optim.schedule}), kNN-{k} on {cfg.monitor.knn_train} / "
             f"{cfg.monitor.knn_test} images",
             f"{'epoch':>5} {'loss seedzoo':>13} {'loss lightly':>13} {'kNN seedzoo':>12} {'kNN lightly':>12} "
             f"{'diff':>6}"]
    for e, (lo, lt, ko, kt) in enumerate(zip(ours.loss, theirs.loss, ours.knn, theirs.knn), start=1):
        lines.append(f"{e:>5} {lo:13.4f} {lt:13.4f} {ko:12.2f} {kt:12.2f} {ko - kt:+6.2f}")
    lines.append(f"wall time: seedzoo {ours.seconds:.0f} s, lightly {theirs.seconds:.0f} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="mocov2_r18.fmnist")
    parser.add_argument("--subset", type=int, default=4096, help="training images (0: all)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--queue", type=int, default=4096)
    parser.add_argument("--knn-train", type=int, default=2000)
    parser.add_argument("--knn-test", type=int, default=1000)
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="further recipe overrides")
    args = parser.parse_args()
    cfg = config(args.recipe, args.subset, args.epochs, args.batch, args.queue, args.knn_train, args.knn_test,
                 args.overrides)
    print(table(cfg, *compare(cfg)))


if __name__ == "__main__":
    main()
