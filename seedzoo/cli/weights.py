"""`seedzoo download | verify | convert | cards`: the weights hub from the command line."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import SeedzooError
from ..files import write_atomic
from .output import add_json_option, human, write_json


class VerifyError(SeedzooError, FileNotFoundError):
    """Nothing records what a check would compare against."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("download", help="fetch and verify the weights of an entry into the cache")
    p.add_argument("name", help="entry or alias (`seedzoo list --pretrained`)")
    p.add_argument("--cache-dir", help="seedzoo cache (default: $SEEDZOO_CACHE, $TORCH_HOME/seedzoo, ...)")
    p.set_defaults(func=download)

    p = subparsers.add_parser("verify",
                              help="check an entry's weights: sha256, data-free fingerprint, measured numbers")
    p.add_argument("name", help="entry or alias")
    p.add_argument("--pretrained", metavar="PATH", help="a model folder or model.safetensors (default: resolve)")
    p.add_argument("--fingerprint", action="store_true", help="recompute the data-free fingerprint and compare")
    p.add_argument("--data", metavar="ROOT", help="re-measure the entry's measured numbers on the data in ROOT")
    p.add_argument("--cache-dir")
    add_json_option(p, "every check and its outcome")
    p.set_defaults(func=verify)

    p = subparsers.add_parser("convert", help="convert an official release file into a seedzoo model folder")
    p.add_argument("--entry", required=True, help="the entry the file belongs to")
    p.add_argument("--src", required=True, help="path or URL of the official file (default: the registry's URL)")
    p.add_argument("--out", required=True, help="output folder (model.safetensors, config.json, README.md)")
    p.add_argument("--no-fingerprint", action="store_true",
                   help="skip the fingerprint (large teachers on small machines)")
    p.set_defaults(func=convert)

    p = subparsers.add_parser("cards", help="regenerate model_cards/ and the README's zoo table from the registry")
    p.add_argument("--check", action="store_true", help="fail if a checked-in card differs from the registry")
    p.add_argument("--out", help="cards folder (default: the repository's model_cards/)")
    p.set_defaults(func=cards)


def download(args: argparse.Namespace) -> int:
    from ..weights.hub import resolve_weights
    from ..weights.io import sha256_file
    from ..zoo import get_entry

    path = resolve_weights(get_entry(args.name), cache_dir=args.cache_dir)
    print(f"{path}\nsha256 {sha256_file(path)}")
    return 0


def _reference_fingerprint(entry, weights: Path, cache_dir: str | None) -> tuple[dict[str, Any] | None, str]:
    """(the recorded fingerprint or None, where it was looked for): the config.json beside the weights
    (a converted, exported or Hub folder), else the registry's pin, else the entry's config.json on the Hub."""
    beside = weights.parent / "config.json"
    if beside.is_file():
        record = (json.loads(beside.read_text(encoding="utf-8")).get("seedzoo") or {}).get("fingerprint")
        if record:
            return dict(record), str(beside)
    if entry is not None and entry.weights.fingerprint:
        return dict(entry.weights.fingerprint), f"the registry record of '{entry.name}'"
    if entry is not None and entry.weights.hf_repo:
        from ..weights.hub import hub_file, is_offline

        path = hub_file(entry.weights.hf_repo, "config.json", entry.weights.revision, cache_dir, is_offline())
        record = (json.loads(path.read_text(encoding="utf-8")).get("seedzoo") or {}).get("fingerprint")
        return (dict(record) if record else None), f"{entry.weights.hf_repo}/config.json"
    return None, str(beside) + (f" and the registry record of '{entry.name}'" if entry is not None else "")


def _verify_target(args: argparse.Namespace):
    """(entry or None, weights file or None, sha256 pinned beside it): NAME is an entry, or a model
    folder or weights file (whose config.json may name its entry); --pretrained gives the file to check."""
    from ..weights.io import find_weights
    from ..zoo import UnknownModelError, get_entry

    try:
        return get_entry(args.name), *(find_weights(args.pretrained) if args.pretrained else (None, None))
    except UnknownModelError:
        if not Path(args.name).expanduser().exists():
            raise
    weights, pinned = find_weights(Path(args.name).expanduser())
    config = weights.parent / "config.json"
    named = (json.loads(config.read_text(encoding="utf-8")).get("seedzoo") or {}).get("entry") \
        if config.is_file() else None
    try:
        entry = get_entry(named) if named else None
    except UnknownModelError:
        entry = None
    return entry, weights, pinned


def verify(args: argparse.Namespace) -> int:
    from ..weights.hub import resolve_weights
    from ..weights.io import sha256_file

    out = human(args)
    entry, weights, pinned = _verify_target(args)
    report: dict[str, Any] = {"entry": entry.name if entry else None}
    given = weights  # a file to check rather than the entry's own
    if weights is not None:
        expected = pinned or (entry.weights.sha256 if entry else "")
        actual = sha256_file(weights)
        good = actual == expected if expected else None
        report["sha256"] = {"file": str(weights), "actual": actual, "expected": expected or None, "ok": good}
        if expected:
            print(f"sha256 {'ok' if good else 'MISMATCH'}: {weights} {actual}"
                  + ("" if good else f" (expected {expected})"), file=out)
        else:
            print(f"sha256 {actual}: {weights} (nothing pins it: no config.json and no published hash)", file=out)
    else:
        weights = resolve_weights(entry, cache_dir=args.cache_dir)  # raises unless the sha256 matches
        actual = sha256_file(weights)
        report["sha256"] = {"file": str(weights), "actual": actual, "expected": actual, "ok": True}
        print(f"sha256 ok: {weights} {actual}", file=out)

    if args.fingerprint:
        report["fingerprint"] = _verify_fingerprint(entry, weights, actual, args.cache_dir, out)

    if args.data:
        from ..evaluation.verify import verify_measured

        if entry is None:
            raise VerifyError(f"{args.name} names no zoo entry, so no measured numbers are recorded for it: "
                              f"measure it with `seedzoo eval {args.name}`")
        results = verify_measured(entry, args.data, pretrained=str(given) if given else True,
                                  progress=not args.json)
        if not results:
            print(f"no measured numbers recorded for '{entry.name}': nothing to re-measure", file=out)
        for result in results:
            print(result, file=out)
        report["measured"] = [{"metric": r.metric.metric, "dataset": r.metric.dataset, "protocol": r.metric.protocol,
                               "expected": r.expected, "tolerance": r.tolerance, "measured": r.measured,
                               "error": r.error or None, "ok": r.ok} for r in results]

    checks = [report["sha256"]["ok"], report.get("fingerprint", {}).get("ok"),
              *(m["ok"] for m in report.get("measured", ()))]
    report["ok"] = all(c is not False for c in checks)
    if args.json:
        write_json(report, args.json)
    return 0 if report["ok"] else 1


def _verify_fingerprint(entry, weights: Path, sha256: str, cache_dir: str | None, out) -> dict[str, Any]:
    from ..weights.fingerprint import compare_fingerprints, measure_fingerprint

    reference, where = _reference_fingerprint(entry, weights, cache_dir)
    if not reference:
        raise VerifyError(f"no reference fingerprint for {weights}: none in {where}. Convert with fingerprinting "
                          "on (`seedzoo convert`), or pin the file's own in the registry (Weights.fingerprint; "
                          "see seedzoo/zoo/fingerprints.json)")
    actual = measure_fingerprint(entry.architecture if entry else "", weights, tuple(reference["input"][1:]), sha256)
    good, err = compare_fingerprints(reference, actual)
    print(f"fingerprint {'ok' if good else 'MISMATCH'}: max relative error {err:.2e} "
          f"(tolerance {reference.get('tolerance')}; reference: {where})", file=out)
    return {"ok": good, "max_relative_error": err if err != float("inf") else None,
            "reference": where, "expected": reference, "actual": actual}


def convert(args: argparse.Namespace) -> int:
    from ..weights.cache import download_url
    from ..weights.io import read_config
    from ..weights.publish import convert_release
    from ..zoo import get_entry

    entry = get_entry(args.entry)
    if entry.source is None:
        print(f"error: '{entry.name}' has no official release (recipe only)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        src, url = args.src, None
        if src.startswith(("http://", "https://")):
            url = src
            src = Path(tmp) / entry.source.filename
            download_url(url, src, expected_sha256=entry.source.sha256 or None)
        out = convert_release(entry, src, args.out, source_url=url, fingerprint=not args.no_fingerprint)
    block = read_config(out)["seedzoo"]
    print(f"{out}\nsource sha256 {block['source']['sha256']}\nresult sha256 {block['sha256']}\n"
          f"dropped {block['dropped']['count']} keys: {block['dropped']['rules']}")
    return 0


def cards(args: argparse.Namespace) -> int:
    from ..cards import check_cards, default_readme, readme_with_table, write_cards

    readme = default_readme()
    if args.check:
        stale = check_cards(args.out)
        if readme.is_file() and readme.read_text() != readme_with_table(readme.read_text()):
            stale.append("README.md (zoo table)")
        if stale:
            print("generated documents out of date (run `seedzoo cards`): " + ", ".join(stale), file=sys.stderr)
            return 1
        print("model cards and the README's zoo table are in sync with the registry")
        return 0
    paths = write_cards(args.out)
    print(f"wrote {len(paths)} cards to {paths[0].parent if paths else args.out}")
    if readme.is_file():  # a source checkout: refresh the README's table too
        write_atomic(readme, readme_with_table(readme.read_text()))
        print(f"updated the zoo table of {readme}")
    return 0
