"""`seedzoo list` and `seedzoo info`: the zoo's records, as a table or one by one."""
from __future__ import annotations

import argparse
import dataclasses
import sys

from ..cards import param_count, weights_available, zoo_table
from ..zoo import ZooEntry, get_entry, list_entries
from .output import add_json_option, write_json

__all__ = ["entry_dict", "param_count", "register", "weights_available", "zoo_table"]


def entry_dict(entry: ZooEntry) -> dict:
    """The record as plain JSON-ready data."""
    return dataclasses.asdict(entry)


def _describe(entry: ZooEntry) -> str:
    lines = [entry.name, "=" * len(entry.name), entry.description, ""]

    def add(label: str, value: object) -> None:
        if value not in ("", None, ()):
            lines.append(f"{label + ':':<14}{value}")

    add("names", f"timm {entry.timm_name}, torch.hub {entry.hub_name}")
    add("role", entry.role)
    add("architecture", entry.architecture)
    h = entry.head
    if h.hidden_dim:
        bn = " BN" if h.batch_norm else ""
        add("head", f"Linear({h.in_dim}, {h.hidden_dim}){bn} ReLU Linear({h.hidden_dim}, {h.out_dim})")
    else:
        add("head", f"Linear({h.in_dim}, {h.out_dim})")
    if entry.teacher is not None:
        t = entry.teacher
        add("teacher", f"{t.method} {t.arch}, {t.epochs} epochs" + (f" ({t.entry})" if t.entry else ""))
    tb = entry.trained_by
    add("trained by", " ".join(filter(None, (tb.method, tb.arch, f"{tb.epochs} epochs"))))
    d = entry.data
    add("input", f"{d.input_size[-1]} px, crop_pct {d.crop_pct}, {d.interpolation}; "
        f"normalisation: {d.normalization.note} mean={d.normalization.mean} std={d.normalization.std}")
    add("weights", weights_available(entry))
    if entry.source is not None:
        add("official", f"{entry.source.filename} ({entry.source.layout} layout)"
            + (f" sha256 {entry.source.sha256}" if entry.source.sha256 else ""))
    if entry.weights.hf_repo:
        add("hub", f"{entry.weights.hf_repo}@{entry.weights.revision} sha256 {entry.weights.sha256}")
    if entry.recipe is not None:
        add("recipe", f"{entry.recipe.config}: {entry.recipe.settings()}")
    add("license", entry.license)
    for m in entry.metrics:
        lines.append(f"{'metric:':<14}{m.value:.1f} {m.metric} on {m.dataset} ({m.protocol}, {m.kind}; {m.source})"
                     + (f" - {m.note}" if m.note else ""))
    for note in entry.notes:
        add("note", note)
    return "\n".join(lines)


def _cmd_list(args: argparse.Namespace) -> int:
    entries = list_entries(args.pattern, pretrained=True if args.pretrained else None, teacher=args.teacher)
    if not entries:
        print(f"no entries match '{args.pattern}'", file=sys.stderr)
        return 1
    from ..weights.local import local_weights  # the cache's file listing: no load, no torch

    here = {e.name: local_weights(e, args.cache_dir) for e in entries}
    if args.json:
        write_json([{**entry_dict(e), "on_this_machine": here[e.name] or None} for e in entries], args.json)
    else:
        print(zoo_table(entries, markdown=args.markdown, on_machine=here))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    entry = get_entry(args.name)
    if args.json:
        write_json(entry_dict(entry), args.json)
    else:
        print(_describe(entry))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("list", help="list zoo entries",
                              description="List the zoo's entries as a table; the last column says which weights "
                                          "are already on this machine (embedded in the package, or in a cache), "
                                          "from the file listing alone.")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern on entry or architecture names")
    p.add_argument("--pretrained", action="store_true", help="only entries with weights available")
    p.add_argument("--teacher", metavar="T", help="only students of this teacher (entry name or alias, fnmatch)")
    p.add_argument("--markdown", action="store_true", help="render as a Markdown table")
    p.add_argument("--cache-dir", help="seedzoo cache to look in for the 'on this machine' column (default: "
                                       "$SEEDZOO_CACHE, $TORCH_HOME/seedzoo, ...; huggingface_hub's own cache too)")
    add_json_option(p, "the matching records")
    p.set_defaults(func=_cmd_list)

    p = subparsers.add_parser("info", help="show one entry's record", description="Show an entry's full record.")
    p.add_argument("name", help="entry name or alias (or the entry's timm tag or torch.hub entrypoint)")
    add_json_option(p, "the record")
    p.set_defaults(func=_cmd_info)
