"""Publish a converted model folder to the Hugging Face Hub and print what to pin in the registry.

    python conversion/publish.py DIR [--org ORG] [--repo NAME] [--create-repo]

Uploads DIR (model.safetensors, config.json, README.md) to ORG/<entry> with `HfApi.upload_folder`,
then prints the commit hash and the sha256 to write into the entry's `Weights(hf_repo, revision, sha256)`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from seedzoo.cards import HF_ORG
from seedzoo.weights.io import sha256_file
from seedzoo.weights.publish import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME

REQUIRED = (WEIGHTS_NAME, CONFIG_NAME, CARD_NAME)


def check_folder(folder: Path) -> dict:
    """The folder's config.json, after checking the folder is complete and its weights match their sha256."""
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise SystemExit(f"{folder} is not a complete model folder: missing {missing}")
    extra = sorted(p.name for p in folder.iterdir() if p.name not in REQUIRED)
    if extra:
        raise SystemExit(f"{folder} holds files that are not part of a model folder: {extra}")
    config = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    block = config.get("seedzoo") or {}
    actual = sha256_file(folder / WEIGHTS_NAME)
    if block.get("sha256") != actual:
        raise SystemExit(f"{folder / WEIGHTS_NAME} has sha256 {actual}, config.json records {block.get('sha256')}")
    return config


def publish(folder: str | Path, repo_id: str | None = None, *, org: str = HF_ORG, create_repo: bool = False,
            api=None) -> tuple[str, str, str]:
    """Upload `folder`; returns (repo_id, commit hash, sha256 of model.safetensors)."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    config = check_folder(folder)
    entry = config["seedzoo"].get("entry")
    if repo_id is None:
        if not entry:
            raise SystemExit("config.json names no entry: pass --repo")
        repo_id = f"{org}/{entry}"
    api = api or HfApi()
    if create_repo:
        api.create_repo(repo_id, repo_type="model", exist_ok=True)
    commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                               allow_patterns=list(REQUIRED),
                               commit_message=f"seedzoo: {entry or folder.name} ({config['seedzoo']['sha256'][:12]})")
    return repo_id, commit.oid, config["seedzoo"]["sha256"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--org", default=HF_ORG)
    parser.add_argument("--repo", help="ORG/NAME (default: ORG/<entry>)")
    parser.add_argument("--create-repo", action="store_true", help="create the repository if it does not exist")
    args = parser.parse_args(argv)
    repo_id, commit, sha256 = publish(args.folder, args.repo, org=args.org, create_repo=args.create_repo)
    print(f"published {args.folder} to {repo_id}\ncommit {commit}\nsha256 {sha256}\n"
          f'pin in seedzoo/zoo/entries.py: Weights(hf_repo="{repo_id}", revision="{commit}", sha256="{sha256}")')
    return 0


if __name__ == "__main__":
    sys.exit(main())
