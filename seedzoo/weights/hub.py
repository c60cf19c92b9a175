"""Resolution of pretrained weights to a verified local file: HF Hub, HTTP mirrors, the official URL.

For `pretrained=True` the factory calls `resolve_weights(entry)`; sources are tried in order:

1. the Hugging Face Hub (`entry.weights.hf_repo` at a pinned commit), through huggingface_hub's cache;
2. HTTP mirrors (`entry.weights.mirrors`), into seedzoo's cache;
3. the authors' release (`entry.source.url`), downloaded and converted on this machine, its source
   sha256 recorded in the cache and checked from then on.

Every returned file has been verified against its sha256. A cached file that fails verification is
deleted and fetched once more; a second failure raises. `HF_HUB_OFFLINE=1` or `SEEDZOO_OFFLINE=1` means
no network: only cached files are used, and a missing one raises `WeightsNotFoundError` that says where
the file would come from and where to put it by hand.

`timm.create_model("hf-hub:ORG/REPO")` also reads seedzoo's folders (after `import seedzoo`), but timm
does not check the sha256; `seedzoo.create_model` with the same name goes through `resolve_hf_hub`,
which does.
"""
from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ..errors import SeedzooError
from ..zoo import ZooEntry
from .cache import (
    DownloadError,
    SourceRecord,
    clear_converted,
    converted_dir,
    download_url,
    hf_cache_dir,
    mirror_path,
    partial_name,
    read_source_record,
    remove_cached,
    remove_stale_parts,
    write_source_record,
)
from .io import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    ChecksumError,
    WeightsFormatError,
    sha256_file,
)
from .network import is_offline
from .publish import CONVERTER_VERSION, convert_release_weights

__all__ = [
    "HubNameError",
    "HubSpec",
    "WeightsNotFoundError",
    "hf_cache_dir",
    "hub_file",
    "is_offline",
    "parse_hf_hub",
    "resolve_hf_hub",
    "resolve_weights",
]

_logger = logging.getLogger(__name__)


class WeightsNotFoundError(SeedzooError, FileNotFoundError):
    """No source could provide the weights (offline with nothing cached, or every source failed)."""


@dataclass(frozen=True)
class HubSpec:
    repo_id: str
    revision: str | None = None

    def __str__(self) -> str:
        return f"hf-hub:{self.repo_id}" + (f"@{self.revision}" if self.revision else "")


_COMMIT = re.compile(r"[0-9a-f]{40}")
_SPEC = re.compile(r"^hf[-_]hub:(?P<repo>[\w.\-]+/[\w.\-]+)(?:@(?P<rev>[\w.\-/]+))?$")


class HubNameError(SeedzooError, ValueError):
    """A malformed `hf-hub:` name."""


def parse_hf_hub(spec: str) -> HubSpec:
    """`hf-hub:ORG/REPO[@REV]` -> HubSpec."""
    m = _SPEC.match(spec.strip())
    if m is None:
        raise HubNameError(f"'{spec}' is not a hub name: expected hf-hub:ORG/REPO or hf-hub:ORG/REPO@REVISION")
    return HubSpec(m["repo"], m["rev"])


# --- verification with one re-fetch -------------------------------------------------------------------------

def _verified(fetch: Callable[[bool], tuple[Path, bool]], sha256: str, what: str) -> Path:
    """`fetch(force)` returns a local path and whether its bytes were hashed against `sha256` as they arrived
    (a download checked while it streamed is not read a second time); verify the others, and on a mismatch
    delete the file and fetch once more."""
    path, checked = fetch(False)
    if checked or sha256_file(path) == sha256:
        return path
    _logger.warning("%s failed its sha256 check (cached copy damaged?); deleting it and fetching it again", what)
    remove_cached(path)
    path, checked = fetch(True)
    actual = sha256 if checked else sha256_file(path)
    if actual != sha256:
        remove_cached(path)
        raise ChecksumError(f"{what} (fetched twice)", sha256, actual)
    return path


# --- the Hugging Face Hub -----------------------------------------------------------------------------------

def _hub_errors() -> tuple[type[BaseException], ...]:
    from huggingface_hub import errors

    return (errors.RepositoryNotFoundError, errors.RevisionNotFoundError, errors.EntryNotFoundError,
            errors.LocalEntryNotFoundError, errors.GatedRepoError, errors.HfHubHTTPError,
            errors.OfflineModeIsEnabled, OSError)


def _root_cause(err: BaseException) -> BaseException:
    while err.__cause__ is not None:
        err = err.__cause__
    return err


def _hub_message(where: str, err: BaseException, answered: str, offline: bool) -> str:
    """One line saying what went wrong: what the endpoint answered, not only huggingface_hub's summary."""
    from huggingface_hub import errors

    if offline and isinstance(err, (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled)):
        return f"{where}: not in the local Hugging Face cache and network access is off"
    not_found = (errors.RepositoryNotFoundError, errors.RevisionNotFoundError, errors.EntryNotFoundError)
    if isinstance(err, not_found) and not isinstance(err, errors.LocalEntryNotFoundError):
        # A mirror such as olah answers a missing file with 'repository not found' (401): one message for both.
        return (f"{where}: repository, revision or file not found (or not accessible with your token)"
                + (f"; the endpoint answered {answered}" if answered else ""))
    # huggingface_hub reports a failed request as 'not in the local cache'; the cause says what happened.
    cause = _root_cause(err)
    text = " ".join(str(cause).split()) or type(cause).__name__
    if answered and answered.startswith("HTTP 2") and isinstance(cause, errors.FileMetadataError):
        return (f"{where}: the endpoint answered {answered} without a Hub's X-Repo-Commit header: it does not "
                "serve a Hugging Face Hub (check HF_ENDPOINT)")
    return f"{where}: {type(cause).__name__}: {text}" + (f" (the endpoint answered {answered})"
                                                         if answered and answered not in text else "")


def hub_file(repo_id: str, filename: str, revision: str | None, cache_dir: str | os.PathLike | None,
             offline: bool, force: bool = False) -> Path:
    """One file of a Hub repo through huggingface_hub's cache (`local_files_only` when offline), its
    requests under seedzoo's network limits (`network.py`); a failure raises `WeightsNotFoundError` saying
    what the endpoint answered."""
    from huggingface_hub import constants, hf_hub_download

    from .hub_transport import HubUnanswered, hub_requests

    failures: tuple[type[BaseException], ...] = (*_hub_errors(), HubUnanswered, ValueError)
    with hub_requests() as call:
        try:
            # With a commit hash as revision, huggingface_hub returns a cached snapshot without any request.
            return Path(hf_hub_download(repo_id, filename, revision=revision or None,
                                        cache_dir=hf_cache_dir(cache_dir), local_files_only=offline,
                                        force_download=force and not offline,
                                        etag_timeout=call.limits.read_timeout))
        except failures as err:
            where = f"{repo_id}@{revision or 'main'}/{filename} on {constants.ENDPOINT}"
            raise WeightsNotFoundError(_hub_message(where, err, call.last_answer(), offline)) from err


def _from_hf_hub(entry: ZooEntry, cache_dir, offline: bool) -> Path:
    w = entry.weights
    if not _COMMIT.fullmatch(w.revision):
        # A branch can move under a published sha256, and needs a request on every load to resolve.
        raise WeightsNotFoundError(f"the registry pins '{entry.name}' to revision '{w.revision}', which is not a "
                                   f"commit hash: fix Weights.revision in seedzoo/zoo/entries.py")
    return _verified(lambda force: (hub_file(w.hf_repo, w.filename, w.revision, cache_dir, offline, force), False),
                     w.sha256, f"{w.hf_repo}@{w.revision}/{w.filename}")


def resolve_hf_hub(spec: str, *, cache_dir: str | os.PathLike | None = None, offline: bool | None = None) -> Path:
    """Fetch `config.json` and `model.safetensors` of `hf-hub:ORG/REPO[@REV]`; returns the local folder.

    The weights are verified against the sha256 recorded in `config.json`'s `seedzoo` block.
    """
    hub = parse_hf_hub(spec) if spec.startswith(("hf-hub:", "hf_hub:")) else HubSpec(spec)
    offline = is_offline() if offline is None else offline
    try:
        config_path = hub_file(hub.repo_id, CONFIG_NAME, hub.revision, cache_dir, offline)
    except WeightsNotFoundError as err:
        raise WeightsNotFoundError(f"cannot load {hub}: {err}{_offline_hint(offline)}") from err
    from .io import read_config

    config = read_config(config_path.parent)
    block = config.get("seedzoo") or {}
    sha256, filename = block.get("sha256"), block.get("filename", WEIGHTS_NAME)
    if not sha256:
        raise WeightsFormatError(f"{hub}: config.json has no seedzoo.sha256, so its weights cannot be verified; "
                         f"load it with timm.create_model('{hub}') if you trust it unverified")
    # Pin the weights to the commit the config came from: a branch that moves in between cannot mix files.
    revision = config_path.parent.name if _COMMIT.fullmatch(config_path.parent.name) else hub.revision
    try:
        weights = _verified(lambda force: (hub_file(hub.repo_id, filename, revision, cache_dir, offline, force),
                                           False), sha256, f"{hub.repo_id}@{revision}/{filename}")
    except WeightsNotFoundError as err:
        raise WeightsNotFoundError(f"cannot load {hub}: {err}{_offline_hint(offline)}") from err
    if weights.parent != config_path.parent:  # both must come from one snapshot
        raise RuntimeError(f"{hub}: config.json and {filename} resolved to different folders")
    return config_path.parent


def _offline_hint(offline: bool) -> str:
    return " (offline: HF_HUB_OFFLINE/SEEDZOO_OFFLINE is set; unset it to download)" if offline else ""


# --- HTTP mirrors and the official release -----------------------------------------------------------------

def _from_mirror(entry: ZooEntry, url: str, cache_dir, offline: bool, progress: bool) -> Path:
    w = entry.weights
    dest = mirror_path(entry.name, w.sha256, w.filename, cache_dir)

    def fetch(force: bool) -> tuple[Path, bool]:
        if dest.is_file() and not force:
            return dest, False
        if offline:
            raise WeightsNotFoundError(f"{dest} is not cached")
        download_url(url, dest, expected_sha256=w.sha256, progress=progress)  # raises on a mismatch
        return dest, True

    return _verified(fetch, w.sha256, f"{w.filename} of '{entry.name}' from {url.split('?', 1)[0]}")


def _from_official(entry: ZooEntry, cache_dir, offline: bool, progress: bool) -> Path:
    assert entry.source is not None
    folder = converted_dir(entry.name, cache_dir)
    weights = folder / WEIGHTS_NAME
    record = read_source_record(folder)
    if record is not None and weights.is_file():
        if sha256_file(weights) == record.sha256:
            return weights
        _logger.warning("converted weights of '%s' in %s are damaged; converting again", entry.name, folder)
        weights.unlink()
    if offline:
        raise WeightsNotFoundError(f"{weights} is not cached")
    # The source must match what was converted before (a changed upstream file is refused), or the
    # registry's pinned hash when there is one.
    expected_source = entry.source.sha256 or (record.source_sha256 if record else "")
    folder.mkdir(parents=True, exist_ok=True)
    # A conversion killed midway leaves its work folder: the next one removes it (see remove_stale_parts).
    hidden = folder.parent / f".{entry.name}"
    remove_stale_parts(hidden, suffix=".tmp")
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=partial_name(hidden.name), suffix=".tmp") as tmp:
        src = Path(tmp) / entry.source.filename
        source_sha256 = download_url(entry.source.url, src, expected_sha256=expected_source or None,
                                     progress=progress)
        out = Path(tmp) / "converted"
        # Only the weights: a load writes nothing else (no card, no fingerprint, no config.json).
        result = convert_release_weights(entry, src, out / WEIGHTS_NAME)
        src.unlink()  # release files are large (up to GBs); the record keeps its hash
        clear_converted(folder)
        os.replace(out, folder)
    write_source_record(folder, SourceRecord(entry.source.url, source_sha256, result, CONVERTER_VERSION))
    return weights


@dataclass(frozen=True)
class _Source:
    where: str  # what it is, for messages
    by_hand: str  # where a user can put the file without network
    fetch: Callable[[], Path]


def _sources(entry: ZooEntry, cache_dir, offline: bool, progress: bool) -> list[_Source]:
    """Every source of an entry, in resolution order."""
    w, out = entry.weights, []
    if w.hf_repo and w.sha256:
        out.append(_Source(f"Hugging Face Hub {w.hf_repo}@{w.revision or 'main'}/{w.filename}",
                           "the huggingface_hub cache (HF_HOME / HF_HUB_CACHE), e.g. with `hf download "
                           f"{w.hf_repo} {w.filename} --revision {w.revision or 'main'}` on a connected machine",
                           lambda: _from_hf_hub(entry, cache_dir, offline)))
    for url in w.mirrors if w.sha256 else ():
        out.append(_Source(f"mirror {url.split('?', 1)[0]}",
                           str(mirror_path(entry.name, w.sha256, w.filename, cache_dir)),
                           partial(_from_mirror, entry, url, cache_dir, offline, progress)))
    if entry.source is not None:
        out.append(_Source(f"official release {entry.source.url.split('?', 1)[0]} (converted on the fly)",
                           f"a folder written from the release file by `seedzoo convert --entry {entry.name} "
                           f"--src {entry.source.filename} --out DIR` (no network needed), loaded with pretrained=DIR",
                           lambda: _from_official(entry, cache_dir, offline, progress)))
    return out


def resolve_weights(entry: ZooEntry, *, cache_dir: str | os.PathLike | None = None, offline: bool | None = None,
                    progress: bool = True) -> Path:
    """A verified local `model.safetensors` for `entry`, from the first source that provides it."""
    offline = is_offline() if offline is None else offline
    w = entry.weights
    if w.embedded:
        path = Path(__file__).with_name("embedded") / w.embedded
        actual = sha256_file(path)
        if w.sha256 and actual != w.sha256:
            raise ChecksumError(f"embedded weights {path}", w.sha256, actual)
        return path
    if not entry.has_file:
        raise WeightsNotFoundError(f"'{entry.name}' has no weights: it is a reproduction recipe "
                                   f"(train it with `seedzoo train {entry.name}`)")
    sources = _sources(entry, cache_dir, offline, progress)
    failures: list[str] = []
    for source in sources:
        try:
            return source.fetch()
        except (ChecksumError, WeightsNotFoundError, DownloadError) as err:
            failures.append(f"{source.where}: {err}")
        except OSError as err:  # e.g. a cache directory that cannot be written
            failures.append(f"{source.where}: {type(err).__name__}: {err}")
    lines = [f"could not get the weights of '{entry.name}' ({w.filename})"
             + (" with network access off (HF_HUB_OFFLINE/SEEDZOO_OFFLINE)" if offline else "") + ":"]
    lines += [f"  - {f}" for f in failures]
    lines.append("Put the file by hand in one of:")
    lines += [f"  - {source.by_hand}" for source in sources]
    lines.append("or pass pretrained=PATH (a model.safetensors, a model folder or an official release file).")
    raise WeightsNotFoundError("\n".join(lines))

