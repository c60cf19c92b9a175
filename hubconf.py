"""torch.hub entrypoints, one per zoo alias and one per entry, generated from seedzoo's registry.

    >>> model = torch.hub.load("<org>/seedzoo", "seed_mbv3_large", pretrained=True)
    >>> model = torch.hub.load("<org>/seedzoo", "seed_r18__mocov2_r50_200ep", num_classes=0)

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


def _register() -> list[str]:
    names = []
    for alias, target in _zoo.aliases().items():
        globals()[alias] = _make(target, _zoo.get_entry(target), via_alias=alias)
        names.append(alias)
    for entry in _zoo.list_entries():
        globals()[entry.hub_name] = _make(entry.name, entry)
        names.append(entry.hub_name)
    return names


ENTRYPOINTS = _register()
