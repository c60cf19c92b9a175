"""`seedzoo download | verify | convert | cards`: the weights hub from the command line."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any


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
    from ..weights.io import sha256_file
    from ..weights.hub import resolve_weights
    from ..zoo import get_entry

    path = resolve_weights(get_entry(args.name), cache_dir=args.cache_dir)
    print(f"{path}\nsha256 {sha256_file(path)}")
    return 0


def _reference_config(entry, weights: Path, cache_dir: str | None) -> dict[str, Any]:
    """The config.json that records the fingerprint: beside the file, or the entry's on the Hub."""
    beside = weights.parent / "config.json"
    if beside.is_file():
        return json.loads(beside.read_text(encoding="utf-8"))
    if entry.weights.hf_repo:
        from ..weights.hub import hub_file, is_offline

        path = hub_file(entry.weights.hf_repo, "config.json", entry.weights.revision, cache_dir, is_offline())
        return json.loads(path.read_text(encoding="utf-8"))
    raise FileNotFoundError(f"no config.json beside {weights} and no Hub repo for '{entry.name}': "
                            f"nothing records the reference fingerprint")


def verify(args: argparse.Namespace) -> int:
    from ..weights.io import sha256_file
    from ..weights.hub import resolve_weights
    from ..weights.io import find_weights
    from ..zoo import get_entry

    entry = get_entry(args.name)
    ok = True
    if args.pretrained:
        weights, pinned = find_weights(args.pretrained)
        expected = pinned or entry.weights.sha256
        actual = sha256_file(weights)
        if expected:
            good = actual == expected
            ok &= good
            print(f"sha256 {'ok' if good else 'MISMATCH'}: {weights} {actual}"
                  + ("" if good else f" (expected {expected})"))
        else:
            print(f"sha256 {actual}: {weights} (nothing pins it: no config.json and no published hash)")
    else:
        weights = resolve_weights(entry, cache_dir=args.cache_dir)  # raises unless the sha256 matches
        print(f"sha256 ok: {weights} {sha256_file(weights)}")

    if args.fingerprint:
        ok &= _verify_fingerprint(entry, weights, args.cache_dir)

    if args.data:
        from ..evaluation.verify import verify_measured

        results = verify_measured(entry, args.data, pretrained=args.pretrained)
        if not results:
            print(f"no measured numbers recorded for '{entry.name}': nothing to re-measure")
        for result in results:
            print(result)
            ok &= bool(result.ok)
    return 0 if ok else 1


def _verify_fingerprint(entry, weights: Path, cache_dir: str | None) -> bool:
    from ..weights.fingerprint import compare_fingerprints, compute_fingerprint
    from ..weights.io import load_weights

    reference = (_reference_config(entry, weights, cache_dir).get("seedzoo") or {}).get("fingerprint")
    if not reference:
        print("fingerprint: MISSING (config.json records none; convert with fingerprinting on)")
        return False
    loaded = load_weights(weights)
    architecture = loaded.metadata.get("architecture") or entry.architecture
    actual = compute_fingerprint(architecture, loaded.backbone, loaded.head, tuple(reference["input"][1:]))
    good, err = compare_fingerprints(reference, actual)
    print(f"fingerprint {'ok' if good else 'MISMATCH'}: max relative error {err:.2e} "
          f"(tolerance {reference.get('tolerance')})")
    return good


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
        readme.write_text(readme_with_table(readme.read_text()))
        print(f"updated the zoo table of {readme}")
    return 0
