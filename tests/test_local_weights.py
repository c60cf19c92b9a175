"""`seedzoo list` says which weights are already on this machine, from the cache's file listing."""
from __future__ import annotations

import dataclasses
import json

from seedzoo.cli import main
from seedzoo.weights.cache import SourceRecord, converted_dir, write_source_record
from seedzoo.weights.local import CACHED, EMBEDDED, local_weights
from seedzoo.zoo import get_entry, list_entries

CONVERTED = "seed_r18.mocov2_r50_200ep"  # an official release, converted into the cache on first load


def _convert_by_hand(cache, name: str = CONVERTED) -> None:
    folder = converted_dir(name, cache)
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"not read: the listing only looks")
    write_source_record(folder, SourceRecord("https://example.invalid/f.pth", "0" * 64, "1" * 64, "test"))


def test_list_marks_converted_and_embedded_weights_and_nothing_else(tmp_path, capsys):
    _convert_by_hand(tmp_path)
    assert main(["list", "seed_r18*", "--cache-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-3:] == ["on", "this", "machine"]
    marks = {line.split()[0]: line.split()[-1] for line in lines[2:]}
    assert marks[CONVERTED] == CACHED and all(m == "-" for n, m in marks.items() if n != CONVERTED)
    embedded = [e.name for e in list_entries() if e.weights.embedded]
    assert embedded and all(local_weights(get_entry(n), tmp_path) == EMBEDDED for n in embedded)


def test_list_json_says_what_is_on_this_machine(tmp_path, capsys):
    _convert_by_hand(tmp_path)
    assert main(["list", "seed_r18.*", "--cache-dir", str(tmp_path), "--json", "-"]) == 0
    records = {r["name"]: r["on_this_machine"] for r in json.loads(capsys.readouterr().out)}
    assert records[CONVERTED] == CACHED and records["seed_r18.swav_r50w2_400ep"] is None


def test_a_hub_snapshot_in_the_cache_counts_and_an_unfinished_conversion_does_not(tmp_path):
    entry = get_entry(CONVERTED)
    folder = converted_dir(CONVERTED, tmp_path)
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"x")  # no source record: a conversion that did not finish
    assert local_weights(entry, tmp_path) == ""
    hub = dataclasses.replace(entry, source=None, weights=dataclasses.replace(
        entry.weights, hf_repo="org/seed_r18", revision="a" * 40, filename="model.safetensors"))
    snapshot = tmp_path / "huggingface" / "models--org--seed_r18" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    assert local_weights(hub, tmp_path) == ""
    (snapshot / "model.safetensors").write_bytes(b"x")
    assert local_weights(hub, tmp_path) == CACHED
