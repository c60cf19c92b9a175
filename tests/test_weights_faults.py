"""Fault tests of the weights loader: damaged, truncated, mutated and malicious files each end in one
clear `SeedzooError`, never in a load of wrong tensors or in code running. Seeded and small."""
from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import pytest
import torch

import seedzoo
from seedzoo.errors import SeedzooError
from seedzoo.weights.io import (
    ChecksumError,
    WeightsFormatError,
    load_weights,
    save_weights,
)
from seedzoo.weights.official import UnsafeCheckpointError, read_checkpoint


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A seedzoo file of a few tiny tensors (any architecture name: no model is built)."""
    g = torch.Generator().manual_seed(0)
    backbone = {"conv.weight": torch.randn(4, 3, 3, 3, generator=g), "bn.num_batches_tracked": torch.tensor(3),
                "fc.bias": torch.randn(5, generator=g)}
    path = tmp_path / "tiny.safetensors"
    save_weights(path, backbone, {"0.weight": torch.randn(2, 4, generator=g)}, {"architecture": "tiny"})
    return path, backbone


def _loads_the_same_or_refuses(path: Path, original: dict[str, torch.Tensor]) -> None:
    try:
        loaded = load_weights(path)
    except SeedzooError as err:
        assert "\n" not in str(err) and "Traceback" not in str(err)
        return
    assert loaded.backbone.keys() == original.keys()
    assert all(torch.equal(loaded.backbone[k], v) for k, v in original.items())


def test_every_single_bit_flip_of_a_bare_file_is_caught(tiny, tmp_path):
    path, _ = tiny
    data = path.read_bytes()
    rng = random.Random(0)
    damaged = tmp_path / "damaged.safetensors"
    for position in rng.sample(range(len(data)), min(len(data), 150)):
        mutated = bytearray(data)
        mutated[position] ^= 1 << rng.randrange(8)
        damaged.write_bytes(bytes(mutated))
        with pytest.raises(SeedzooError):  # nothing pins this file: its own content hash must catch it
            load_weights(damaged)


def test_truncations_are_refused_as_truncated_or_not_safetensors(tiny, tmp_path):
    path, _ = tiny
    data = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    for length in sorted(set(random.Random(1).sample(range(len(data)), 40)) | {0, 7, 8, 9, len(data) - 1}):
        cut.write_bytes(data[:length])
        with pytest.raises(WeightsFormatError, match="truncated|not a safetensors file"):
            load_weights(cut)


def test_fuzzed_headers_and_bytes_end_in_a_seedzoo_error(tiny, tmp_path):
    """A few hundred mutations: flips, byte runs, header edits, insertions, deletions."""
    path, original = tiny
    data = path.read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    rng = random.Random(2)
    fuzzed = tmp_path / "fuzzed.safetensors"
    for _ in range(300):
        mutated = bytearray(data)
        kind = rng.randrange(5)
        at = rng.randrange(header_end if kind < 3 else len(data))
        if kind == 0:
            mutated[at] = rng.randrange(256)
        elif kind == 1:
            mutated[at:at + 4] = bytes(rng.choice(b'{}[]":,0123456789-e ') for _ in range(4))
        elif kind == 2:
            mutated[:8] = rng.randrange(1 << 64).to_bytes(8, "little")
        elif kind == 3:
            mutated.insert(at, rng.randrange(256))
        else:
            del mutated[at]
        fuzzed.write_bytes(bytes(mutated))
        _loads_the_same_or_refuses(fuzzed, original)


def test_a_flipped_bit_in_the_tensor_data_names_the_content_hash(tiny):
    path, _ = tiny
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="content_sha256"):
        load_weights(path)


class _System:
    def __reduce__(self):
        return (os.system, ("echo this-must-never-run",))


@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_a_malicious_pickle_names_what_it_would_call(tmp_path, container, capfd):
    path = tmp_path / "evil.pth"
    payload = {"state_dict": {"conv1.weight": _System()}}
    if container == "zip":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=4))
    for load in (lambda: read_checkpoint(path), lambda: seedzoo.create_model("seed_resnet18", pretrained=path)):
        with pytest.raises(UnsafeCheckpointError) as err:
            load()
        message = str(err.value)
        assert f"{os.name}.system" in message and "weights_only" not in message
    assert "this-must-never-run" not in capfd.readouterr().out


@pytest.mark.parametrize("content", [b"hello world\n", b"", b"\x00" * 64, b'{"a": 1}', b"PK\x03\x04garbage"])
def test_a_foreign_file_passed_as_pretrained_is_one_clear_error(tmp_path, content):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(SeedzooError, match="not a") as err:
        seedzoo.create_model("seed_resnet18", pretrained=path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("config", ['{"architecture": ', "[1, 2]", '{"architecture": 3}',
                                    '{"architecture": "seed_resnet18", "seedzoo": [1]}', "\udcff"])
def test_a_malformed_config_json_is_one_clear_error(tmp_path, tiny, config):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(tiny[0].read_bytes())
    (folder / "config.json").write_bytes(config.encode("utf-8", "surrogateescape"))
    with pytest.raises(WeightsFormatError, match="config.json"):
        load_weights(folder)
    with pytest.raises(WeightsFormatError, match="config.json"):
        seedzoo.create_model(folder, pretrained=True)
