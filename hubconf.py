"""torch.hub entrypoints, one per zoo alias and one per entry, generated from seedzoo's registry.

    >>> model = torch.hub.load("<org>/seedzoo", "seed_mbv3_large", pretrained=True)
    >>> model = torch.hub.load("<org>/seedzoo", "seed_r18__mocov2_r50_200ep", num_classes=0)
    >>> model = torch.hub.load("<org>/seedzoo", "seed_r18__mocov2_r50_200ep_head", pretrained=True)

Where an entry's file holds the head that was trained with the backbone, a second entrypoint returns the
two together, as DINOv2's `_lc` entrypoints do: `<entry>_head` the backbone and its projection head
(`backbone`, `head`: the 128-d space SEED distils in), `<entry>_lc` the backbone and its trained linear
classifier (the logits).

Entry names hold a dot (`seed_r18.mocov2_r50_200ep`), which a Python identifier cannot: their
entrypoints use a double underscore instead (`ZooEntry.hub_name`, `seed_r18__mocov2_r50_200ep`). Aliases keep their name
and build the entry they point to. Every entrypoint takes `pretrained` (False, True, or a path to a
seedzoo file/folder or an official release file) and timm's keyword arguments, as
`seedzoo.create_model` does. `torch.hub.help(repo, name)` shows the teacher and reported accuracy.
"""
from __future__ import annotations

import typing as _t

import seedzoo
from seedzoo import zoo as _zoo

# torch.hub lists every public callable of this module as an entrypoint: helpers stay private.
dependencies = ["torch", "torchvision", "timm", "safetensors", "huggingface_hub"]


def _doc(entry: _zoo.ZooEntry, via_alias: str = "") -> str:
    lines = [entry.description.rstrip(".") + "."]
    if via_alias:
        lines.append(f"Alias of the entry `{entry.name}`.")
    if entry.teacher is not None:
        lines.append(f"Teacher: {entry.teacher.describe()}.")
    top1 = entry.metric("top1")
    if top1 is not None:
        lines.append(f"{top1.kind.capitalize()} {top1.dataset} top-1 ({top1.protocol}): {top1.value:.1f} "
                     f"[{top1.source}].")
    else:
        lines.append("No accuracy reported for this entry.")
    lines.append("Weights: " + ("available with pretrained=True." if entry.has_file
                                else "not published; pass pretrained='path/to/file'."))
    lines += ["", "Args:",
              "    pretrained: False, True (published weights, sha256-verified) or a path to a seedzoo",
              "        model folder / .safetensors file or an official SEED release file.",
              "    **kwargs: passed to timm.create_model (num_classes, global_pool, features_only, ...)."]
    return "\n".join(lines)


def _make(name: str, entry: _zoo.ZooEntry, via_alias: str = "") -> _t.Callable[..., _t.Any]:
    def entrypoint(pretrained: _t.Any = False, **kwargs: _t.Any):
        return seedzoo.create_model(name, pretrained=pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = via_alias or entry.hub_name
    entrypoint.__doc__ = _doc(entry, via_alias)
    return entrypoint


def _head_doc(entry: _zoo.ZooEntry) -> str:
    kind = "trained linear classifier" if entry.ships_classifier else "projection head"
    lines = [f"The backbone of `{entry.name}` with its {kind}, {entry.head.describe()}, from the same file."]
    if entry.teacher is not None:
        lines.append(f"Teacher: {entry.teacher.describe()}.")
    if entry.ships_classifier:
        lines.append(f"Returns {entry.head.out_dim} logits. The classifier's own accuracy is not recorded; "
                     "the entry's numbers are of its backbone's features:")
    else:
        lines.append(f"Returns the {entry.head.out_dim}-d projection (SEED compares its L2-normalised form). "
                     "The entry's numbers are of the backbone's features, before the head:")
    lines += [f"    {m.value:.2f} {m.metric} on {m.dataset} ({m.protocol}, {m.kind}; {m.source})"
              for m in entry.metrics] or ["    none recorded."]
    lines += ["", "Args:",
              "    pretrained: False (both random), True (the entry's weights, sha256-verified) or a path to a",
              "        seedzoo model folder / .safetensors file or an official release file holding the head."]
    return "\n".join(lines)


def _make_with_head(entry: _zoo.ZooEntry) -> _t.Callable[..., _t.Any]:
    def entrypoint(pretrained: _t.Any = False):
        if entry.ships_classifier:
            return seedzoo.create_model(entry.name, pretrained=pretrained, num_classes=entry.head.out_dim)
        from collections import OrderedDict

        from torch import nn

        backbone = seedzoo.create_model(entry.name, pretrained=pretrained, num_classes=0)
        head = seedzoo.load_projection_head(entry.name, pretrained=pretrained)
        return nn.Sequential(OrderedDict(backbone=backbone, head=head))

    entrypoint.__name__ = entrypoint.__qualname__ = _head_entrypoint(entry)
    entrypoint.__doc__ = _head_doc(entry)
    return entrypoint


def _head_entrypoint(entry: _zoo.ZooEntry) -> str:
    return entry.hub_name + ("_lc" if entry.ships_classifier else "_head")


def _register() -> list[str]:
    names = []
    for alias, target in _zoo.aliases().items():
        globals()[alias] = _make(target, _zoo.get_entry(target), via_alias=alias)
        names.append(alias)
    for entry in _zoo.list_entries():
        globals()[entry.hub_name] = _make(entry.name, entry)
        names.append(entry.hub_name)
        if entry.has_file and entry.weights.with_head:  # the file holds the head trained with the backbone
            globals()[_head_entrypoint(entry)] = _make_with_head(entry)
            names.append(_head_entrypoint(entry))
    return names


ENTRYPOINTS = _register()
