"""`seedzoo embed` (features of a folder of images) and `seedzoo export --onnx` (a model for other runtimes).

Both take MODEL as anything `seedzoo.create_model` accepts: a zoo entry or alias, a timm architecture,
`hf-hub:ORG/REPO`, or the path of an exported model folder. Preprocessing is the model's own
(`seedzoo.get_transform`), so features match what the entry's numbers were measured on.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING, cast

from ..data.folders import IMAGE_EXTENSIONS, ImageScan, open_image, scan_images
from ..errors import SeedzooError
from ..files import write_atomic
from .device import checked_device

if TYPE_CHECKING:
    from torch.utils.data import Dataset

FEATURE_FORMATS = (".npy", ".pt", ".safetensors")


class EmbedError(SeedzooError, ValueError):
    """Images that cannot be embedded, or an output the command cannot write."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "embed", help="write the features of a folder of images (N x D) to .npy, .pt or .safetensors",
        description="Compute each image's representation (the pooled pre-logits features) with a pretrained "
                    "model and write them as one N x D float32 array; FILE.files.txt beside it lists the "
                    "images, one per line, in the rows' order. No training run is needed.")
    p.add_argument("model", help="zoo entry or alias, timm architecture, hf-hub:ORG/REPO, or an exported model folder")
    p.add_argument("images", type=Path, help="a folder of images (searched recursively) or one image file")
    p.add_argument("--out", required=True, type=Path, metavar="FILE",
                   help=f"output array; the format follows the extension ({', '.join(FEATURE_FORMATS)})")
    weights = p.add_mutually_exclusive_group()
    weights.add_argument("--pretrained", metavar="PATH", help="weights file or folder (default: MODEL's own)")
    weights.add_argument("--random-init", action="store_true", help="random weights (a baseline)")
    p.add_argument("--batch-size", type=int, default=64, metavar="B")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_embed)

    q = subparsers.add_parser(
        "export", help="export a model to ONNX and check it against PyTorch",
        description="Trace MODEL to ONNX (output 'features', the representation; and 'logits' when its weights "
                    "hold a trained classifier, e.g. a model saved by `seedzoo eval --protocol finetune --save`), "
                    "run both on the same batch and refuse the file unless their outputs agree.")
    q.add_argument("model", help="zoo entry or alias, timm architecture, hf-hub:ORG/REPO, or an exported model folder")
    q.add_argument("--onnx", required=True, type=Path, metavar="FILE", help="the .onnx file to write")
    weights = q.add_mutually_exclusive_group()
    weights.add_argument("--pretrained", metavar="PATH", help="weights file or folder (default: MODEL's own)")
    weights.add_argument("--random-init", action="store_true", help="random weights")
    q.add_argument("--input-size", type=int, metavar="S", help="input resolution (default: the model's own)")
    q.add_argument("--opset", type=int, default=17)
    q.add_argument("--rtol", type=float, default=1e-4,
                   help="largest difference the check accepts, relative to the output's scale (default 1e-4)")
    q.set_defaults(func=_export)


def _pretrained(args: argparse.Namespace) -> bool | str:
    return False if args.random_init else (args.pretrained or True)


def image_files(root: Path) -> ImageScan:
    """The images under `root` (recursively, sorted, each file once: seedzoo.data.folders), or `root`
    itself when it is one image."""
    if not root.exists():
        raise EmbedError(f"{root}: no such file or folder; pass a folder of images or an image file")
    if root.is_file():
        return ImageScan([root], [-1])
    scan = scan_images(root)
    if not scan.files:
        raise EmbedError(f"{root} holds no image files ({', '.join(IMAGE_EXTENSIONS)}); point IMAGES at the folder "
                         "that holds them")
    return scan


class ImageFiles:
    """A map-style dataset of image files: (transformed image, its index), decoded by
    `seedzoo.data.folders.open_image` (RGB, upright, 16-bit scaled). (No `torch.utils.data.Dataset` base:
    this module is imported by `seedzoo --help`.)"""

    def __init__(self, files: list[Path], transform) -> None:
        self.files, self.transform = files, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        from PIL import UnidentifiedImageError

        path = self.files[index]
        try:
            rgb = open_image(path)
        except (UnidentifiedImageError, OSError) as err:
            raise EmbedError(f"cannot read image {path} ({type(err).__name__}: {err}); remove or replace it "
                             "and run again") from err
        return self.transform(rgb), index


def save_features(features, out: Path, metadata: dict[str, str]) -> Path:
    """Write an N x D float32 tensor as `.npy`, `.pt` (a plain tensor, loadable with weights_only=True)
    or `.safetensors` (key `features`, with `metadata`)."""
    suffix = out.suffix.lower()
    if suffix not in FEATURE_FORMATS:
        raise EmbedError(f"--out {out}: unknown format '{out.suffix}'; end the name with one of "
                         f"{', '.join(FEATURE_FORMATS)}")
    features = features.contiguous()
    # Serialised in memory, then written whole under exactly the name given (np.save to a path would
    # append `.npy` to `F.NPY`, and a full disk would leave half a file).
    if suffix == ".safetensors":
        from safetensors.torch import save

        return write_atomic(out, save({"features": features}, metadata=metadata))
    buffer = io.BytesIO()
    if suffix == ".npy":
        import numpy as np

        np.save(buffer, features.numpy())
    else:
        import torch

        torch.save(features, buffer)
    return write_atomic(out, buffer.getbuffer())


def file_list_path(out: Path) -> Path:
    """`features.npy` -> `features.files.txt`: the images, one per line, in the rows' order."""
    return out.with_name(out.stem + ".files.txt")


def _embed(args: argparse.Namespace) -> int:
    import seedzoo

    from ..evaluation.features import extract_features

    if args.batch_size < 1:
        raise EmbedError(f"--batch-size must be a positive integer, got {args.batch_size}")
    device = checked_device(args.device)
    scan = image_files(args.images)
    files = scan.files
    model = seedzoo.create_model(args.model, pretrained=_pretrained(args), num_classes=0)
    dataset = cast("Dataset", ImageFiles(files, seedzoo.get_transform(args.model)))
    features, order = extract_features(model, dataset, args.batch_size, 0, device, progress=not args.quiet,
                                       desc=f"embed {len(files)} images")
    assert order.tolist() == list(range(len(files)))  # rows follow the file list
    root = args.images if args.images.is_dir() else args.images.parent
    names = [f.relative_to(root).as_posix() for f in files]
    if any("\n" in n for n in names):
        raise EmbedError("an image's file name holds a line break, which the file list cannot record; rename it")
    weights = getattr(model, "seedzoo_weights", None)
    save_features(features, args.out, {"model": args.model, "weights_sha256": weights.sha256 if weights else "",
                                       "images": str(len(files)), "left_out": str(len(scan.left_out))})
    listing = write_atomic(file_list_path(args.out), "".join(f"{n}\n" for n in names))
    print(f"wrote {features.shape[0]} x {features.shape[1]} features of {args.model} to {args.out} "
          f"(row i is line i of {listing})")
    if scan.summary():  # links that reach an image or folder twice: each image is embedded once
        print(f"note: {scan.summary()}", file=sys.stderr)
    return 0


def _export(args: argparse.Namespace) -> int:
    import seedzoo

    from ..evaluation.export import export_onnx, output_names

    model = seedzoo.create_model(args.model, pretrained=_pretrained(args), num_classes=0).eval()
    classes = int(model.pretrained_cfg.get("num_classes") or 0)  # the weights' own classifier, if they hold one
    if classes:
        model = seedzoo.create_model(args.model, pretrained=_pretrained(args), num_classes=classes).eval()
    size = args.input_size if args.input_size is not None else model.pretrained_cfg.get("input_size", (3, 224, 224))[-1]
    done = export_onnx(model, args.onnx, input_size=size, opset=args.opset, rtol=args.rtol)
    outputs = " and ".join(f"'{n}'" + (f" ({classes} classes)" if n == "logits" else "") for n in output_names(model))
    print(f"wrote {done.path}: input 'images' N x 3 x {size} x {size}, output {outputs}; onnxruntime matches "
          f"PyTorch within {done.difference:.2e} (tolerance {done.rtol:g} x {done.scale:.3g})")
    return 0
