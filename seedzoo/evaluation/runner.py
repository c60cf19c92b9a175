"""One entry point that runs any protocol on a model and a dataset by name (used by `seedzoo eval` and
`seedzoo verify`), and the pinned protocol strings stored with measured numbers.

A protocol string is a name plus the settings that differ from its defaults, e.g.
`knn:input_size=64,limit=2000`: stored with a number, it is enough to measure that number again.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from ..errors import SeedzooError
from ..weights.preprocessing import data_config_from_cfg
from . import datasets as D
from .backbones import Pretrained, load_backbone, weights_id
from .features import default_device, extract_features
from .finetune import FinetuneConfig, finetune, save_finetuned
from .knn import DEFAULT_KS, DEFAULT_TEMPERATURE, knn_evaluate
from .linear import FAST_PROBE, LinearProbeConfig, linear_probe, linear_probe_features
from .results import EvalResult, few_labels_note, weights_record
from .semi import class_balanced_subset, semi_supervised
from .transforms import Preprocessing, preprocessing_for

PROTOCOLS = ("knn", "linear", "linear_fast", "finetune", "semi")
_SPEC_KEYS = {"input_size": int, "limit": int, "batch_size": int, "epochs": int, "temperature": float,
              "seed": int, "fraction": float}
DATASET_BY_DISPLAY = {v: k for k, v in D.DISPLAY_NAMES.items()}


class EvalArgumentError(SeedzooError, ValueError):
    """Evaluation settings that cannot give a meaningful number."""


def argument_problems(input_size: int | None = None, limit: int | None = None, batch_size: int | None = None,
                      epochs: int | None = None, ks: tuple[int, ...] = DEFAULT_KS,
                      temperature: float = DEFAULT_TEMPERATURE, fraction: float = 0.01,
                      num_workers: int = 0) -> list[str]:
    """What is wrong with evaluation settings, one phrase each (empty: all fine). None means the
    protocol's default; 0 is not a way to ask for it."""
    problems = [f"{name} must be a positive integer (leave it out for the default), got {value}"
                for name, value in (("input_size", input_size), ("limit", limit), ("batch_size", batch_size),
                                    ("epochs", epochs)) if value is not None and value < 1]
    problems += [f"k must be a positive integer, got {k}" for k in ks if k < 1]
    if not temperature > 0 or not math.isfinite(temperature):  # NaN fails too
        problems.append(f"the kNN temperature must be a positive number, got {temperature}")
    if not 0 < fraction <= 1:
        problems.append(f"fraction must be in (0, 1], got {fraction}")
    if num_workers < 0:
        problems.append(f"num_workers must be 0 or more, got {num_workers}")
    return problems


@dataclass(frozen=True)
class ProtocolSpec:
    name: str
    options: dict[str, Any]

    def __str__(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.name}:{opts}" if opts else self.name


def parse_protocol(spec: str) -> ProtocolSpec:
    """`knn` or `knn:input_size=64,limit=2000` -> ProtocolSpec; unknown names or keys are errors."""
    name, _, rest = spec.partition(":")
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol '{name}' in '{spec}': choose one of {', '.join(PROTOCOLS)}")
    options: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in _SPEC_KEYS:
            raise ValueError(f"bad protocol option '{item}' in '{spec}': use key=value with key one of "
                             f"{', '.join(sorted(_SPEC_KEYS))}")
        options[key] = _SPEC_KEYS[key](value)
    return ProtocolSpec(name, options)


def _pretrained_cfg(backbone: nn.Module) -> dict[str, Any]:
    """The `pretrained_cfg` every timm model carries (seedzoo's exports fill in their transforms)."""
    return cast(dict[str, Any], backbone.pretrained_cfg)


def run_evaluation(name: str, protocol: str = "knn", dataset: str = "fashion_mnist",
                   data_root: str | Path | None = None, pretrained: Pretrained = True,
                   input_size: int | None = None, limit: int | None = None, batch_size: int | None = None,
                   epochs: int | None = None, ks: tuple[int, ...] = DEFAULT_KS,
                   temperature: float = DEFAULT_TEMPERATURE, fraction: float = 0.01, seed: int = 0,
                   device: torch.device | str | None = None, cache_dir: str | Path | None = None,
                   num_workers: int = 0, model: nn.Module | None = None, progress: bool = True,
                   save: str | Path | None = None) -> EvalResult:
    """Run `protocol` for model `name` on `dataset`. `limit` keeps the first N images of each split.
    `model` overrides building the backbone from `name`/`pretrained` (it must have no classifier).
    `save` (protocol `finetune` only) writes the fine-tuned model, classifier included, as a seedzoo
    model folder there (`seedzoo.save_model`)."""
    spec = parse_protocol(protocol)
    if save is not None and spec.name != "finetune":
        raise ValueError(f"save= keeps a fine-tuned model, and protocol '{spec.name}' trains none: use "
                         f"protocol 'finetune', or leave save out")
    if spec.options:  # a pinned string: its options override the arguments
        opts = spec.options
        input_size, limit = opts.get("input_size", input_size), opts.get("limit", limit)
        batch_size, epochs = opts.get("batch_size", batch_size), opts.get("epochs", epochs)
        temperature, seed = opts.get("temperature", temperature), opts.get("seed", seed)
        fraction = opts.get("fraction", fraction)
    problems = argument_problems(input_size, limit, batch_size, epochs, tuple(ks), temperature, fraction,
                                 num_workers)
    if problems:
        raise EvalArgumentError("; ".join(problems))
    device = torch.device(device) if device is not None else default_device()
    torch.manual_seed(seed)
    backbone = model if model is not None else load_backbone(name, pretrained)
    # The transforms of the weights evaluated (a run's export records its own), read off the model.
    prep = (preprocessing_for(name, input_size) if model is not None else
            Preprocessing.from_data_config(data_config_from_cfg(_pretrained_cfg(backbone)), input_size))
    dataset = DATASET_BY_DISPLAY.get(dataset, dataset)
    display = D.DISPLAY_NAMES.get(dataset, dataset)

    def split(which: str, train_aug: bool = False):
        transform = prep.train_transform() if train_aug else prep.eval_transform()
        return D.build_dataset(dataset, which, data_root, transform, limit)

    common: dict[str, Any] = {"model": name, "dataset": display}
    notes: list[str] = []  # what the result must say beside its numbers (left-out files, thin classes)
    if spec.name in ("knn", "linear_fast"):
        feats, sets = {}, {}
        for which in ("train", "test"):
            sets[which] = split(which)
            ident = D.dataset_identity(dataset, which, data_root, limit, prep, sets[which])
            model_id = None if model is not None else weights_id(pretrained)
            feats[which] = extract_features(backbone, sets[which], batch_size or 256, num_workers, device,
                                            cache_dir, ident, f"{name}|{model_id}" if model_id else None, progress,
                                            desc=f"{display} {which} features")
        (train_f, train_l), (test_f, test_l) = feats["train"], feats["test"]
        num_classes = D.num_classes_of(sets["test"])
        notes += [n for n in (D.listing_note(sets[w], w) for w in ("train", "test")) if n]
        if spec.name == "knn":
            result = knn_evaluate(train_f, train_l, test_f, test_l, ks, temperature, num_classes, **common)
        else:
            if "fraction" in spec.options:  # a probe with a fraction of the labels (class-balanced, seeded)
                keep = class_balanced_subset(train_l, fraction, seed)
                train_f, train_l = train_f[keep], train_l[keep]
            notes.append(few_labels_note(train_l, num_classes, "the probe's training set") or "")
            config = _probe_config(FAST_PROBE, seed, epochs, batch_size)
            result = linear_probe_features(train_f, train_l, test_f, test_l, config, num_classes, device,
                                           progress=progress, **common)
    elif spec.name == "linear":
        train, test = split("train", train_aug=True), split("test")
        notes += _trained_notes(train, test)
        config = _probe_config(LinearProbeConfig(), seed, epochs, batch_size)
        result = linear_probe(backbone, train, test, D.num_classes_of(test), config, device, num_workers,
                              progress=progress, **common)
    elif spec.name == "finetune":
        train, test = split("train", train_aug=True), split("test")
        notes += _trained_notes(train, test)
        config = _with(FinetuneConfig(seed=seed), epochs=epochs, batch_size=batch_size)
        result, classifier = finetune(backbone, train, test, D.num_classes_of(test), config, device, num_workers,
                                      progress=progress, **common)
    else:  # semi
        train, test = split("train", train_aug=True), split("test")
        notes += [n for n in (D.listing_note(train, "train"), D.listing_note(test, "test")) if n]
        config = _with(FinetuneConfig(seed=seed), epochs=epochs, batch_size=batch_size)
        result = semi_supervised(backbone, train, test, D.num_classes_of(test), fraction, seed, config=config,
                                 device=device, num_workers=num_workers, progress=progress, **common)
    result.notes += [n for n in notes if n]
    result.protocol = str(ProtocolSpec(result.protocol, spec.options)) if spec.options else result.protocol
    result.settings.update({"weights": weights_record(backbone, pretrained if model is None else None),
                            "limit_per_split": limit, "preprocessing": asdict(prep),
                            "train_transform": spec.name in ("linear", "finetune", "semi"),
                            "seed": seed, "device": device.type})
    if save is not None:
        result.settings["saved_to"] = str(save_finetuned(classifier, result, save))
    return result


def _trained_notes(train, test) -> list[str]:
    """Notes for a protocol that trains on `train`: what the listings left out, classes with < 2 images."""
    notes = [D.listing_note(train, "train"), D.listing_note(test, "test"),
             few_labels_note(D.dataset_labels(train), D.num_classes_of(test), "the training set")]
    return [n for n in notes if n]


def _probe_config(base: LinearProbeConfig, seed: int, epochs: int | None,
                  batch_size: int | None) -> LinearProbeConfig:
    config = _with(replace(base, seed=seed), batch_size=batch_size)
    return config.with_epochs(epochs) if epochs else config


def _with(config, **overrides):
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
