"""seedzoo's weight cache: where mirror downloads and on-the-fly conversions live, and verified downloads.

Layout under the cache root (Hugging Face downloads stay in huggingface_hub's own cache):

    weights/<entry>/<sha256>/model.safetensors     a file fetched from an HTTP mirror (immutable: keyed by hash)
    converted/<entry>/model.safetensors            an official release converted on this machine
    converted/<entry>/source.json                  the release's URL and sha256, and the result's sha256
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import SeedzooError
from ..files import process_alive, write_atomic
from .network import StallGuard, network_limits, open_guarded

__all__ = [
    "DownloadError",
    "SourceRecord",
    "cache_root",
    "clear_converted",
    "converted_dir",
    "download_url",
    "mirror_path",
    "partial_name",
    "read_source_record",
    "remove_cached",
    "remove_stale_parts",
    "write_source_record",
]

_CHUNK = 1 << 20


class DownloadError(SeedzooError, OSError):
    """A URL could not be fetched completely (network error, HTTP error, truncated body)."""


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """`cache_dir` > `$SEEDZOO_CACHE` > `$TORCH_HOME/seedzoo` > `$XDG_CACHE_HOME/seedzoo` > `~/.cache/seedzoo`."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get("SEEDZOO_CACHE"):
        return Path(os.environ["SEEDZOO_CACHE"])
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]) / "seedzoo"
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "seedzoo"
    return Path.home() / ".cache" / "seedzoo"


def mirror_path(entry_name: str, sha256: str, filename: str, cache_dir: str | os.PathLike | None = None) -> Path:
    return cache_root(cache_dir) / "weights" / entry_name / sha256 / filename


def converted_dir(entry_name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    return cache_root(cache_dir) / "converted" / entry_name


def hf_cache_dir(cache_dir: str | os.PathLike | None) -> Path | None:
    """huggingface_hub's cache (`HF_HUB_CACHE`/`HF_HOME`) unless seedzoo's cache dir is given explicitly."""
    return None if cache_dir is None else Path(cache_dir) / "huggingface"



def remove_cached(path: str | os.PathLike) -> None:
    """Delete a cached file; for a symlink (huggingface_hub's snapshots) the blob it points to as well."""
    p = Path(path)
    if p.is_symlink():
        target = p.resolve()
        p.unlink()
        target.unlink(missing_ok=True)
    else:
        p.unlink(missing_ok=True)


_STALE_AGE = 24 * 3600  # seconds: a partial file this old is dead even if its pid was reused


def partial_name(name: str) -> str:
    """The prefix of a partial file or folder for `name`: it carries the writer's pid, so that a later
    start can tell what a killed process left from what a live one is writing."""
    return f"{name}.{os.getpid()}."


def remove_stale_parts(dest: str | os.PathLike, suffix: str = ".part") -> list[Path]:
    """Delete what a killed writer of `dest` left beside it (`<name>.<pid>.<random><suffix>`, a file or a
    folder): entries whose process is gone, or older than a day (another host sharing the cache). A live
    writer's entry is left alone. Returns what was removed."""
    dest = Path(dest)
    removed = []
    for part in dest.parent.glob(f"{dest.name}.*{suffix}"):
        pid = part.name[len(dest.name) + 1:].split(".", 1)[0]
        try:
            stale = (pid.isdigit() and not process_alive(int(pid))) or time.time() - part.stat().st_mtime > _STALE_AGE
            if stale:
                if part.is_dir():
                    shutil.rmtree(part)
                else:
                    part.unlink()
                removed.append(part)
        except OSError:  # removed meanwhile by another process
            continue
    return removed


def download_url(url: str, dest: str | os.PathLike, *, expected_sha256: str | None = None,
                 progress: bool = True) -> str:
    """Stream `url` into `dest` through `files.write_atomic`; returns the sha256 of the bytes written.

    The request runs under `network.network_limits()` (connect timeout, read timeout, low-speed limit). The
    body is hashed while it streams; a stalled or short body (fewer bytes than Content-Length) raises
    `DownloadError` and a wrong hash `ChecksumError`, and in every case nothing is left at `dest`.
    """
    from .io import ChecksumError  # here: io needs torch, and the cache's paths do not
    dest = Path(dest)
    remove_stale_parts(dest)  # what a killed download of an older seedzoo left
    shown = url.split("?", 1)[0]  # never print a signed URL's token
    digest, received, total = hashlib.sha256(), 0, None
    guard = StallGuard(network_limits())

    def broken(err: BaseException | None) -> DownloadError:
        sizes = f"{received}{f' of {total}' if total else ''} bytes"
        if guard.stalled:
            return DownloadError(f"{shown} stalled: {guard.limits.describe()}, after {sizes}")
        reason = err.reason if isinstance(err, urllib.error.URLError) else err
        if isinstance(reason, TimeoutError):
            return DownloadError(f"{shown} sent nothing for {guard.limits.read_timeout:g} s after {sizes} "
                                 "(SEEDZOO_READ_TIMEOUT)")
        if total is None and received == 0:
            return DownloadError(f"could not fetch {shown}: {err}")
        return DownloadError(f"{shown} was truncated: the connection broke after {sizes} ({type(err).__name__})")

    def stream(out: BinaryIO) -> None:
        nonlocal received, total
        request = urllib.request.Request(url, headers={"User-Agent": "seedzoo"})
        try:
            response = open_guarded(request, guard)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            raise broken(err) from err
        with response:
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None else None
            bar = _progress_bar(total, dest.name, progress)
            try:
                while True:
                    try:
                        chunk = response.read1(_CHUNK)  # what has arrived: the guard sees steady progress
                    except (OSError, http.client.HTTPException) as err:  # IncompleteRead: the peer closed early
                        raise broken(err) from err
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    guard.progress(len(chunk))
                    bar.update(len(chunk))
            finally:
                bar.close()

    def check(_: Path) -> None:
        if guard.stalled:  # the guard shut the socket: the last read saw an end of file
            raise broken(None)
        if total is not None and received != total:
            raise DownloadError(f"{shown} was truncated: received {received} of {total} bytes")
        if expected_sha256 and digest.hexdigest() != expected_sha256:
            raise ChecksumError(shown, expected_sha256, digest.hexdigest())

    with guard:
        write_atomic(dest, stream, check=check)
    return digest.hexdigest()


def _progress_bar(total: int | None, name: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name, disable=not enabled,
                leave=False)


@dataclass(frozen=True)
class SourceRecord:
    """What an on-the-fly conversion started from and produced; checked on every later load."""

    url: str
    source_sha256: str
    sha256: str
    converter_version: str

    @property
    def public_url(self) -> str:
        return self.url.split("?", 1)[0]


def read_source_record(folder: str | os.PathLike) -> SourceRecord | None:
    path = Path(folder) / "source.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return SourceRecord(data["url"], data["source_sha256"], data["sha256"], data.get("converter_version", ""))


def write_source_record(folder: str | os.PathLike, record: SourceRecord) -> None:
    # The URL is stored without its signature: the token is a credential, and it expires.
    data = {"url": record.public_url, "source_sha256": record.source_sha256, "sha256": record.sha256,
            "converter_version": record.converter_version}
    write_atomic(Path(folder) / "source.json", json.dumps(data, indent=2) + "\n")


def clear_converted(folder: str | os.PathLike) -> None:
    """Remove a converted folder whose result no longer matches its record."""
    shutil.rmtree(folder, ignore_errors=True)
