"""Transfer: a linear probe on a local image-folder dataset (train/ and test/ of class folders)."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from seedzoo.evaluation.transfer import transfer_linear


def write_image_folder(root, per_class: int) -> None:
    colors = {"red": (220, 30, 30), "blue": (30, 30, 220)}
    gen = torch.Generator().manual_seed(0)
    for split in ("train", "test"):
        for cls, rgb in colors.items():
            (root / split / cls).mkdir(parents=True)
            for i in range(per_class):
                noise = torch.randint(-20, 20, (3,), generator=gen).tolist()
                Image.new("RGB", (12, 12), tuple(c + n for c, n in zip(rgb, noise))).save(
                    root / split / cls / f"{i}.png")


def test_transfer_linear_on_image_folder(tmp_path):
    write_image_folder(tmp_path, per_class=6)
    result = transfer_linear("seed_r18", "image_folder", tmp_path, pretrained=False, input_size=32, epochs=20,
                             batch_size=4, device="cpu", progress=False)
    assert result.protocol == "transfer_linear_fast" and result.dataset == "ImageFolder"
    assert result.settings["num_classes"] == 2 and result.settings["num_train"] == 12
    assert result.metrics["top1"] >= 90.0  # colours are linearly separable even in random conv features


def test_image_folders_have_one_name_and_the_old_one_says_which(tmp_path):
    from seedzoo.evaluation.datasets import DATASET_NAMES, build_dataset

    write_image_folder(tmp_path, per_class=1)
    assert "image_folder" in DATASET_NAMES and "imagefolder" not in DATASET_NAMES
    assert len(build_dataset("image_folder", "test", tmp_path)) == 2
    with pytest.raises(ValueError, match="'imagefolder' is called 'image_folder'"):
        build_dataset("imagefolder", "test", tmp_path)
