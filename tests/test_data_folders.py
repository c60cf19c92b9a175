"""Odd data is never used silently: unreadable folders, symlink loops and duplicates, 16-bit and rotated
images (seedzoo.data.folders), image folders whose splits disagree, stale feature caches and evaluation
settings that cannot give a meaningful number (seedzoo.evaluation)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seedzoo.cli import main
from seedzoo.data.datasets import ImageFolderSource, UnlabeledFolderSource, read_image
from seedzoo.data.folders import open_image, scan_image_folder
from seedzoo.evaluation.datasets import SplitMismatchError, build_dataset, dataset_identity
from seedzoo.evaluation.runner import EvalArgumentError, run_evaluation

REPO = Path(__file__).resolve().parents[1]
MODEL = "test_resnet"  # timm's smallest ResNet, random init: fast, and deterministic under a seed


def _png(path: Path, value: int, size: int = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def _tree(root: Path, classes=("a", "b"), per_class: int = 2, suffix: str = ".png") -> Path:
    for c, name in enumerate(classes):
        for i in range(per_class):
            _png(root / name / f"{i}{suffix}", 10 * c + i)
    return root


# --- listing --------------------------------------------------------------------------------------

def test_a_symlink_loop_is_walked_once_and_a_linked_file_counted_once(tmp_path):
    root = _tree(tmp_path / "train")
    os.symlink(root, root / "a" / "loop")  # a class folder linking back to the root
    os.symlink(root / "a", root / "b" / "more")  # class b reaching class a's images
    os.symlink(root / "a" / "0.png", root / "b" / "copy.png")
    scan = scan_image_folder(root)
    assert [p.relative_to(root).as_posix() for p in scan.files] == ["a/0.png", "a/1.png", "b/0.png", "b/1.png"]
    assert scan.labels == [0, 0, 1, 1]
    assert sorted(p.name for p, _ in scan.left_out) == ["copy.png", "loop", "more"]
    with pytest.warns(UserWarning, match="3 path.* left out"):
        assert len(ImageFolderSource(root)) == 4


def test_a_broken_link_to_an_image_is_refused_in_one_line(tmp_path):
    root = _tree(tmp_path / "train")
    os.symlink(tmp_path / "gone.png", root / "a" / "gone.png")
    with pytest.raises(PermissionError, match=r"cannot read .*gone.png \(a broken link\)"):
        UnlabeledFolderSource(root)


UNPRIVILEGED = """
import os, sys
from seedzoo.data.datasets import ImageFolderSource  # imported before the privileges go
if os.geteuid() == 0:
    os.setgid(65534)
    os.setuid(65534)  # nobody: root would read the folder whatever its permission bits
for root in sys.argv[1:]:
    try:
        ImageFolderSource(root)
    except PermissionError as err:
        print(err)
"""


def test_an_unreadable_folder_or_file_is_refused_not_skipped():
    # Outside pytest's tmp_path, whose parents only root may enter.
    top = Path(tempfile.mkdtemp(prefix="seedzoo-perm-"))
    roots = [_tree(top / what) for what in ("folder", "file")]
    hidden = [roots[0] / "b", roots[1] / "b" / "1.png"]
    try:
        for p in [top, *top.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        for p in hidden:
            p.chmod(0)
        done = subprocess.run([sys.executable, "-c", UNPRIVILEGED, *map(str, roots)], cwd=REPO, capture_output=True,
                              text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        if "Operation not permitted" in done.stderr:
            pytest.skip("cannot switch to an unprivileged user here")
        assert done.stdout.strip().splitlines() == [
            f"cannot read {p} (permission denied) under the data folder {root}: fix its permissions (or the link), "
            "or move it out of the folder; its images would otherwise be left out"
            for p, root in zip(hidden, roots)], done.stderr
    finally:
        for p in hidden:
            p.chmod(0o755)
        shutil.rmtree(top)


# --- decoding -------------------------------------------------------------------------------------

def test_a_16_bit_png_is_scaled_to_8_bits_not_clipped(tmp_path):
    eight = np.arange(256, dtype=np.uint16).reshape(16, 16)
    Image.fromarray(eight * 257).save(tmp_path / "deep.png")  # 16-bit gray: 0 .. 65535
    with Image.open(tmp_path / "deep.png") as raw:
        assert raw.mode.startswith("I")
    image = open_image(tmp_path / "deep.png")
    assert image.mode == "RGB"
    assert np.array_equal(np.asarray(image)[..., 0], eight.astype(np.uint8))
    assert torch.equal(read_image(tmp_path / "deep.png")[1], torch.from_numpy(eight.astype(np.uint8)))


def test_the_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = 255  # white left half
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: stored rotated, shown turned 90 degrees clockwise
    Image.fromarray(pixels).save(tmp_path / "turned.jpg", exif=exif, quality=95)
    upright = np.asarray(open_image(tmp_path / "turned.jpg"))
    assert upright.shape == (40, 20, 3)
    assert upright[:18].mean() > 200 and upright[22:].mean() < 50  # the white half is now on top


# --- evaluation -----------------------------------------------------------------------------------

def test_image_folder_splits_with_different_classes_are_refused_naming_them(tmp_path, capsys):
    _tree(tmp_path / "train", classes=("cat", "dog", "emu"))
    _tree(tmp_path / "test", classes=("cat", "eel"))
    with pytest.raises(SplitMismatchError, match=r"only in train: dog, emu; only in test: eel"):
        build_dataset("image_folder", "test", tmp_path)
    assert main(["eval", MODEL, "--random-init", "--dataset", "image_folder", "--data", str(tmp_path),
                 "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("seedzoo: error: ") and "only in test: eel" in err[0]


def test_the_feature_cache_is_keyed_on_the_files_not_the_folder(tmp_path):
    root = tmp_path / "data"
    _tree(root / "train", per_class=3, suffix=".bmp")  # uncompressed: every file has the same size
    _tree(root / "test", per_class=2, suffix=".bmp")
    kw = dict(dataset="image_folder", data_root=root, pretrained=False, input_size=32, device="cpu",
              progress=False, ks=(1,))
    run_evaluation(MODEL, "knn", cache_dir=tmp_path / "cache", **kw)
    ident = dataset_identity("image_folder", "test", root, None, "prep")
    # Swap the test images of the two classes: same names, sizes and modification times.
    a0, b0 = root / "test" / "a" / "0.bmp", root / "test" / "b" / "0.bmp"
    stamps = a0.stat(), b0.stat()
    data = a0.read_bytes(), b0.read_bytes()
    assert len(data[0]) == len(data[1])
    a0.write_bytes(data[1])
    b0.write_bytes(data[0])
    for p, st in zip((a0, b0), stamps):
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert dataset_identity("image_folder", "test", root, None, "prep") != ident
    cached = run_evaluation(MODEL, "knn", cache_dir=tmp_path / "cache", **kw)
    fresh = run_evaluation(MODEL, "knn", **kw)
    assert cached.metrics == fresh.metrics
    assert len(list((tmp_path / "cache").iterdir())) == 3  # train once, test before and after


def test_an_evaluation_lists_each_split_of_an_image_folder_once(tmp_path, monkeypatch):
    from seedzoo.data import folders

    root = tmp_path / "data"
    _tree(root / "train", per_class=3)
    _tree(root / "test")
    walked: list[Path] = []
    walk = folders._Walk.folder

    def counted(self, folder):
        walked.append(folder)
        return walk(self, folder)

    monkeypatch.setattr(folders._Walk, "folder", counted)
    run_evaluation(MODEL, "knn", dataset="image_folder", data_root=root, pretrained=False, input_size=32,
                   device="cpu", progress=False, ks=(1,), cache_dir=tmp_path / "cache")
    # the feature cache's key comes from the listing that built each split
    assert sorted(walked) == sorted(root / split / c for split in ("train", "test") for c in ("a", "b"))
    # and is the key that listing the split on its own gives
    built = build_dataset("image_folder", "test", root, limit=1)
    assert dataset_identity("image_folder", "test", root, 1, "prep", built) == dataset_identity(
        "image_folder", "test", root, 1, "prep")


@pytest.mark.parametrize("option, value, problem", [
    ("temperature", 0.0, "temperature must be a positive number, got 0.0"),
    ("temperature", -1.0, "temperature must be a positive number, got -1.0"),
    ("epochs", -3, "epochs must be a positive integer (leave it out for the default), got -3"),
    ("epochs", 0, "epochs must be a positive integer"),
    ("batch_size", 0, "batch_size must be a positive integer"),
    ("input_size", 0, "input_size must be a positive integer"),
    ("ks", (0,), "k must be a positive integer, got 0"),
])
def test_evaluation_settings_that_mean_nothing_are_refused(option, value, problem):
    with pytest.raises(EvalArgumentError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        run_evaluation(MODEL, "knn", dataset="digits", pretrained=False, **{option: value})


def test_a_pinned_protocol_string_is_validated_too(capsys):
    assert main(["eval", MODEL, "--random-init", "--dataset", "digits", "--protocol", "knn:temperature=0",
                 "--device", "cpu", "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == ("seedzoo: error: the kNN temperature must be a positive number, "
                                               "got 0.0")


def test_k_beyond_the_bank_and_a_one_image_per_class_probe_are_recorded(tmp_path):
    root = tmp_path / "data"
    _tree(root / "train", per_class=1)
    _tree(root / "test", per_class=1)
    kw = dict(dataset="image_folder", data_root=root, pretrained=False, input_size=32, device="cpu", progress=False)
    knn = run_evaluation(MODEL, "knn", ks=(20,), **kw)
    assert "k=20 capped at the train size: 2 neighbours vote" in knn.notes
    probe = run_evaluation(MODEL, "linear_fast", epochs=1, **kw)
    assert any("fewer than 2 labelled images of 2 of 2 classes" in n for n in probe.notes)
    semi = run_evaluation(MODEL, "semi", epochs=1, fraction=0.5, batch_size=2, **kw)
    assert any(n.startswith("the labelled subset has fewer than 2 labelled images of 2 of 2") for n in semi.notes)


def test_embed_writes_exactly_the_name_given(tmp_path):
    images = _tree(tmp_path / "images", per_class=1)
    out = tmp_path / "F.NPY"
    assert main(["embed", MODEL, str(images), "--random-init", "--out", str(out), "--device", "cpu", "--quiet"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["F.NPY", "F.files.txt", "images"]
    assert np.load(out).shape == (2, 96)


@pytest.mark.parametrize("argv, problem", [
    (["embed", MODEL, "IMAGES", "--random-init", "--out", "f.npy", "--batch-size", "0"],
     "--batch-size must be a positive integer, got 0"),
    (["export", MODEL, "--random-init", "--onnx", "m.onnx", "--input-size", "0"],
     "input_size (0) and rtol (0.0001) must be positive"),
])
def test_zero_is_refused_not_read_as_the_default(tmp_path, capsys, argv, problem):
    if argv[0] == "export":
        pytest.importorskip("onnxruntime")
    images = _tree(tmp_path / "images", per_class=1)
    argv = [str(images) if a == "IMAGES" else str(tmp_path / a) if a.endswith((".npy", ".onnx")) else a for a in argv]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == f"seedzoo: error: {problem}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]


@pytest.mark.parametrize("workers", ["0", "1"])  # 1: torch re-raises the worker's error with its traceback
def test_a_broken_image_in_an_evaluation_folder_is_named_in_one_line(tmp_path, capsys, workers):
    root = tmp_path / "data"
    _tree(root / "train")
    _tree(root / "test")
    (root / "test" / "b" / "1.png").write_bytes(b"not a png")
    assert main(["eval", MODEL, "--random-init", "--dataset", "image_folder", "--data", str(root), "--input-size", "32",
                 "--device", "cpu", "--quiet", "--workers", workers]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"seedzoo: error: cannot read image {root / 'test' / 'b' / '1.png'} ")
