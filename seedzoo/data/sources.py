"""The image sources a training run reads (`data.source`), by name, with what each reads: one list for
the trainer's checks, `seedzoo train --help` and `seedzoo distill --help` (no torch: the command line
imports it)."""
from __future__ import annotations

SOURCES = {
    "image_folder": "a folder of class folders, ROOT/<class>/<image> (the labels feed the kNN monitor)",
    "unlabeled_folder": "a folder of images, searched recursively, no labels",
    "file_list": "a text file with one `path [label]` per line, paths relative to the file",
    "fashion_mnist": "Fashion-MNIST's IDX files (data.path: their folder; default Debian's)",
}


def sources_help() -> str:
    """The sources as `--help` lists them, one paragraph."""
    return "data.source is one of: " + "; ".join(f"{name}: {what}" for name, what in SOURCES.items()) + "."
