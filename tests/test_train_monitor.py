"""The kNN monitor: on an image folder its queries are held out of its bank (a seeded, class-stratified
split), so images without label information give chance, and on images with a signal it gives the number
`seedzoo eval --protocol knn` gives on the same split and weights."""
from __future__ import annotations

import shutil

import pytest
import torch
from PIL import Image

from seedzoo.evaluation.runner import run_evaluation
from seedzoo.training.config import MonitorConfig, TrainDataConfig
from seedzoo.training.engine import train
from seedzoo.training.monitor import monitor_split

from test_train import run, tiny_config, tiny_teacher

pytestmark = pytest.mark.usefixtures("single_thread")

K = 5
MONITOR = ("monitor.knn_every=1", "monitor.knn_train=60", "monitor.knn_test=36", f"monitor.knn_k={K}")


def write_folder(root, sizes: dict[str, int], signal: bool, size: int = 16):
    """Class folders of PNGs, written in class order (as the bug's class-sorted list was). With `signal`
    each class has its own colour under the noise; without, every image is noise alone."""
    g = torch.Generator().manual_seed(1)
    for c, (name, n) in enumerate(sizes.items()):
        (root / name).mkdir(parents=True)
        colour = torch.tensor([60 + 70 * c, 200 - 60 * c, 40 + 90 * (c % 2)], dtype=torch.float32)
        for i in range(n):
            noise = torch.randint(0, 256, (size, size, 3), generator=g).float()
            pixels = (colour + (noise - 128) * 0.3) if signal else noise
            Image.fromarray(pixels.clamp(0, 255).to(torch.uint8).numpy()).save(root / name / f"{i}.png")
    return root


def test_the_split_is_disjoint_class_stratified_and_seeded(tmp_path):
    folder = write_folder(tmp_path / "f", {"a": 60, "b": 40, "c": 20}, signal=False, size=4)
    data = TrainDataConfig(source="image_folder", path=str(folder), image_size=4)
    split = monitor_split(data, MonitorConfig(knn_train=60, knn_test=30), seed=0)
    bank, queries = split.bank.indices, split.queries.indices
    assert not set(bank) & set(queries)
    labels = split.bank.source.labels
    # each class in proportion to its size (60/40/20 of 120): 15/10/5 queries, 30/20/10 in the bank
    assert [sum(labels[i] == c for i in queries) for c in range(3)] == [15, 10, 5]
    assert [sum(labels[i] == c for i in bank) for c in range(3)] == [30, 20, 10]
    assert monitor_split(data, MonitorConfig(knn_train=60, knn_test=30), seed=0).queries.indices == queries
    assert monitor_split(data, MonitorConfig(knn_train=60, knn_test=30), seed=1).queries.indices != queries


def test_on_images_that_carry_no_label_information_the_monitor_is_near_chance(tmp_path):
    # Noise images under 4 labels: a query's nearest images tell nothing of its label. A monitor whose
    # queries sit in its bank finds each one's own copy at similarity 1 and reports 100%.
    folder = write_folder(tmp_path / "noise", {f"c{i}": 40 for i in range(4)}, signal=False)
    result = run(tiny_config(folder, "epochs=1", "global_batch=32", "distill.queue_size=64", *MONITOR),
                 tmp_path / "run")
    assert result.knn_top1 is not None and abs(result.knn_top1 - 25) < 20  # chance: 25% (36 queries, 9 a class)


def test_on_a_folder_with_a_signal_the_monitor_is_what_seedzoo_eval_measures_on_the_same_split(tmp_path):
    folder = write_folder(tmp_path / "colours", {"c0": 36, "c1": 36, "c2": 36}, signal=True)
    cfg = tiny_config(folder, "epochs=1", "global_batch=36", "distill.queue_size=72", "export=true",
                      "export_batch_norm=keep", *MONITOR, "student.arch=test_resnet", "student.head_hidden=16")
    torch.manual_seed(0)
    result = train(cfg, tmp_path / "run", teacher=tiny_teacher())
    assert result.knn_top1 is not None and result.knn_top1 > 50  # the colours separate the classes
    # export_batch_norm=keep: the export is the network the last monitor measured (no recomputed BN statistics).
    # The monitor's split as the image-folder layout `seedzoo eval` reads: train/ the bank, test/ the queries.
    split = monitor_split(cfg.data, cfg.monitor, cfg.seed)
    root = tmp_path / "split"
    for part, images in (("train", split.bank), ("test", split.queries)):
        for i in images.indices:
            path = images.source.files[i]
            (root / part / path.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, root / part / path.parent.name / path.name)
    measured = run_evaluation(str(result.export_dir), "knn", dataset="image_folder", data_root=root, ks=(K,),
                              device="cpu", progress=False)
    assert measured.metrics[f"knn{K}_top1"] == pytest.approx(result.knn_top1, abs=1e-9)
