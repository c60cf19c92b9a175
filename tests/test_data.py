"""Data sources, keyed augmentation and the resumable distributed sampler."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from seedzoo.data import fashion_mnist
from seedzoo.data.augment import sample_generator, view_augment
from seedzoo.data.datasets import (
    FileListSource,
    ImageFolderSource,
    KeyedViewDataset,
    UnlabeledFolderSource,
    UnreadableImageError,
    build_source,
)
from seedzoo.data.sampler import GlobalBatchSampler


def _write_folder(root, classes=("a", "b"), per_class=3, size=12):
    g = torch.Generator().manual_seed(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            pixels = torch.randint(0, 256, (size, size, 3), generator=g, dtype=torch.uint8).numpy()
            Image.fromarray(pixels).save(root / c / f"{i}.png")
    return root


def _views(image, g):
    return {"image": view_augment("mocov2", 8)(image, g)}


def test_image_folder_labels_follow_sorted_class_folders(tmp_path):
    src = ImageFolderSource(_write_folder(tmp_path / "train"))
    assert len(src) == 6 and src.classes == ["a", "b"]
    image, label = src.load(4)
    assert image.dtype == torch.uint8 and image.shape == (3, 12, 12) and label == 1


def test_unlabeled_folder_and_file_list(tmp_path):
    root = _write_folder(tmp_path / "imgs")
    assert len(UnlabeledFolderSource(root)) == 6 and UnlabeledFolderSource(root).load(0)[1] == -1
    (tmp_path / "list.txt").write_text("# comment\nimgs/a/0.png 3\nimgs/b/1.png\n")
    src = FileListSource(tmp_path / "list.txt")
    assert len(src) == 2 and src.load(0)[1] == 3 and src.load(1)[1] == -1


def test_same_key_gives_the_same_view_and_other_keys_differ(tmp_path):
    ds = KeyedViewDataset(ImageFolderSource(_write_folder(tmp_path / "t")), _views, seed=7)
    a, b = ds[(1, 2)]["image"], ds[(1, 2)]["image"]
    assert torch.equal(a, b)
    assert not torch.equal(a, ds[(2, 2)]["image"])  # another epoch
    assert not torch.equal(a, KeyedViewDataset(ds.source, _views, seed=8)[(1, 2)]["image"])  # another seed


def test_sample_generator_streams_are_keyed():
    x = torch.rand(4, generator=sample_generator(0, 1, 2))
    assert torch.equal(x, torch.rand(4, generator=sample_generator(0, 1, 2)))
    assert not torch.equal(x, torch.rand(4, generator=sample_generator(0, 2, 1)))


@pytest.mark.parametrize("kind", ["mocov2", "swav", "simclr", "none"])
def test_augmentations_give_normalised_views_of_the_asked_size(kind):
    image = torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8)  # grayscale -> 3 channels
    out = view_augment(kind, 16)(image, sample_generator(0, 0, 0))
    assert out.shape == (3, 16, 16) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_unreadable_image_raises_naming_the_file(tmp_path):
    root = _write_folder(tmp_path / "t")
    (root / "a" / "1.png").write_bytes(b"not a png")
    ds = KeyedViewDataset(ImageFolderSource(root), _views)
    with pytest.raises(UnreadableImageError, match=r"a[/\\]1\.png.*data\.on_error=skip"):
        ds[(0, 1)]


def test_unreadable_image_can_be_skipped_and_counted(tmp_path):
    root = _write_folder(tmp_path / "t")
    (root / "a" / "1.png").write_bytes(b"not a png")
    ds = KeyedViewDataset(ImageFolderSource(root), _views, on_error="skip")
    with pytest.warns(UserWarning, match="skipping unreadable image"):
        item = ds[(0, 1)]
    assert item["skipped"] == 1 and item["index"] == 2


def test_sampler_ranks_split_each_global_batch_of_the_single_process_order():
    single = list(GlobalBatchSampler(40, 8, seed=3))
    ranks = [list(GlobalBatchSampler(40, 8, rank=r, world_size=2, seed=3)) for r in range(2)]
    assert len(single) == 5
    for b, batch in enumerate(single):
        assert batch == ranks[0][b] + ranks[1][b]


def test_sampler_shuffles_per_epoch_and_resumes_mid_epoch():
    s = GlobalBatchSampler(40, 8, seed=0)
    s.set_epoch(0)
    e0 = list(s)
    s.set_epoch(1)
    e1 = list(s)
    assert [i for _, i in e0[0]] != [i for _, i in e1[0]]
    assert sorted(i for b in e0 for _, i in b) == list(range(40))
    s.set_epoch(1, start_batch=3)
    assert list(s) == e1[3:] and len(s) == 2


def test_sampler_errors_are_clear():
    with pytest.raises(ValueError, match="not divisible by the 3 processes"):
        GlobalBatchSampler(40, 8, world_size=3)
    with pytest.raises(ValueError, match="fewer than one global batch"):
        GlobalBatchSampler(4, 8)


@pytest.mark.skipif(not fashion_mnist.available(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_source_gives_three_channel_images():
    src = build_source("fashion_mnist", subset=10)
    image, label = src.load(0)
    assert len(src) == 10 and image.shape == (3, 28, 28) and 0 <= label < 10
    assert torch.equal(image[0], image[2])


def _idx_gz(path, array) -> None:
    """An unsigned-byte IDX file, gzipped, as Fashion-MNIST's."""
    import gzip

    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.numpy().tobytes())


def test_fashion_mnist_is_decoded_once_per_process_and_again_when_a_file_changes(tmp_path):
    images = torch.arange(3 * 28 * 28, dtype=torch.int64).remainder(256).to(torch.uint8).view(3, 28, 28)
    _idx_gz(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _idx_gz(tmp_path / "t10k-labels-idx1-ubyte.gz", torch.tensor([1, 2, 3], dtype=torch.uint8))
    first, _ = fashion_mnist.load_fashion_mnist("test", tmp_path)
    again, labels = fashion_mnist.load_fashion_mnist("test", tmp_path)
    assert torch.equal(first, images) and again.data_ptr() == first.data_ptr()  # one decoding, shared
    assert labels.tolist() == [1, 2, 3]
    _idx_gz(tmp_path / "t10k-labels-idx1-ubyte.gz", torch.tensor([4, 5, 6, 7], dtype=torch.uint8))  # replaced
    assert fashion_mnist.load_fashion_mnist("test", tmp_path)[1].tolist() == [4, 5, 6, 7]


def test_blur_sigma_is_configurable_for_low_resolution_views():
    from seedzoo.data.augment import view_augment
    from seedzoo.training.config import load_config

    assert view_augment("mocov2", 224).blur_sigma == (0.1, 2.0)  # the official range, for 224 px
    assert view_augment("mocov2", 32, blur_sigma=(0.0143, 0.286)).blur_sigma == (0.0143, 0.286)
    cfg = load_config("mocov2_r18.fmnist", ["data.blur_sigma=0.01,0.2"])
    assert cfg.data.blur_sigma == (0.01, 0.2)
    assert load_config("seed_mbv3_large.fmnist_mocov2_r18").data.blur_sigma == (0.0143, 0.286)


def test_crop_scale_reaches_the_views_and_bad_ranges_are_refused():
    from seedzoo.training.config import ConfigError, load_config
    from seedzoo.training.methods import main_view

    assert main_view(load_config("mocov2_r18.fmnist")).augment().scale == (0.2, 1.0)  # MoCo-v2's own
    view = main_view(load_config("mocov2_r18.fmnist", ["data.crop_scale=0.5,1"])).augment()
    assert view.scale == (0.5, 1.0)
    g = torch.Generator().manual_seed(0)
    areas = [h * w for _, _, h, w in (view.sample(g, 28, 28).box for _ in range(200))]
    assert min(areas) >= 0.5 * 28 * 28 * 0.9  # rounding of the box's sides
    for bad in ("0,1", "0.6,0.5", "0.5,1.5"):
        with pytest.raises(ConfigError, match=r"data.crop_scale=.*must satisfy 0 < min <= max <= 1"):
            load_config("mocov2_r18.fmnist", [f"data.crop_scale={bad}"])


@pytest.mark.parametrize("kind", ["mocov2", "simclr", "none"])
def test_a_batch_of_views_equals_each_view_computed_alone(kind):
    g = torch.Generator().manual_seed(1)
    images = [torch.randint(0, 256, (3, 20 + i, 24), dtype=torch.uint8, generator=g) for i in range(6)]
    images[0] = images[0][:1].expand(3, -1, -1)  # a grey image: hue has nothing to rotate
    view = view_augment(kind, 16)
    batch = view.batch(images, [sample_generator(0, 0, i) for i in range(6)])
    alone = torch.stack([view(img, sample_generator(0, 0, i)) for i, img in enumerate(images)])
    assert torch.equal(batch, alone)
    assert torch.equal(view.batch(images[2:4], [sample_generator(0, 0, i) for i in (2, 3)]), alone[2:4])


def test_batched_colour_operations_and_blur_compute_what_torchvision_computes():
    import math

    import torchvision.transforms.v2.functional as TF

    from seedzoo.data.augment import (
        _brightness,
        _contrast,
        _gaussian_blur,
        _hue,
        _saturation,
    )

    torch.manual_seed(0)
    x = torch.rand(4, 3, 12, 12)
    factors = [0.7, 1.3, 0.9, 1.1]
    f = torch.tensor(factors).view(-1, 1, 1, 1)
    for ours, theirs in ((_brightness, TF.adjust_brightness), (_contrast, TF.adjust_contrast),
                         (_saturation, TF.adjust_saturation)):
        ref = torch.stack([theirs(xi, fi) for xi, fi in zip(x, factors)])
        assert torch.allclose(ours(x.clone(), f), ref, atol=1e-6), ours.__name__
    hues = [-0.1, 0.05, 0.3, 0.0]
    ref = torch.stack([TF.adjust_hue(xi, h) for xi, h in zip(x, hues)])
    assert torch.allclose(_hue(x.clone(), torch.tensor(hues).view(-1, 1, 1, 1)), ref, atol=1e-5)
    sigmas = [0.1, 0.5, 1.3, 0.5]
    ref = torch.stack([TF.gaussian_blur(xi, [2 * math.ceil(3 * s) + 1] * 2, [s, s]) for xi, s in zip(x, sigmas)])
    assert torch.allclose(_gaussian_blur(x, torch.tensor(sigmas)), ref, atol=1e-6)
