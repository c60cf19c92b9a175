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
    NonFiniteWeightsError,
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


def _loads_the_same_or_refuses(path: Path, original: dict[str, torch.Tensor]) -> bool:
    """True when the load is refused, False when it loads the original tensors; fails otherwise."""
    try:
        loaded = load_weights(path)
    except SeedzooError as err:
        assert "\n" not in str(err) and "Traceback" not in str(err)
        return True
    assert loaded.backbone.keys() == original.keys()
    assert all(torch.equal(loaded.backbone[k], v) for k, v in original.items())
    return False


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
    refused = 0
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
        refused += _loads_the_same_or_refuses(fuzzed, original)
    assert refused >= 250  # the mutations reach the loader's checks (all 300 are refused with this seed), not ignored


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


def _write_unchecked(path: Path, backbone: dict[str, torch.Tensor], architecture: str) -> None:
    """A seedzoo file written past save_weights' refusal of inf/NaN (as a damaged or foreign writer would)."""
    from seedzoo.weights.io import _write_safetensors

    with open(path, "wb") as f:
        _write_safetensors(f, {f"backbone.{k}": v.contiguous() for k, v in backbone.items()},
                           {"format": "seedzoo", "architecture": architecture, "entry": ""})


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_in_one_line(tmp_path, tiny, bad):
    _, backbone = tiny
    damaged = {**backbone, "fc.bias": backbone["fc.bias"].clone().index_fill_(0, torch.tensor([2]), bad)}
    with pytest.raises(NonFiniteWeightsError, match="'backbone.fc.bias' holds 1 inf/NaN value"):
        save_weights(tmp_path / "never.safetensors", damaged, None, {"architecture": "tiny"})
    assert not list(tmp_path.glob("*never*"))
    path = tmp_path / "damaged.safetensors"
    _write_unchecked(path, damaged, "tiny")
    with pytest.raises(NonFiniteWeightsError, match="fc.bias") as err:
        load_weights(path)
    assert "\n" not in str(err.value)


def test_non_finite_weights_are_refused_by_create_model(tmp_path):
    model = seedzoo.create_model("seed_resnet18", pretrained=False)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["conv1.weight"][0, 0, 0, 0] = float("nan")
    path = tmp_path / "model.safetensors"
    _write_unchecked(path, state, model.pretrained_cfg["architecture"])
    with pytest.raises(NonFiniteWeightsError, match="conv1.weight"):
        seedzoo.create_model("seed_resnet18", pretrained=path)


def test_non_finite_official_checkpoint_is_refused(golden_dir, tmp_path):
    from seedzoo.weights.publish import convert_release
    from seedzoo.zoo import get_entry

    checkpoint = read_checkpoint(golden_dir / "seed_mbv3_large.pth.tar")
    state = checkpoint.get("state_dict", checkpoint)
    key = next(k for k, v in state.items() if v.is_floating_point() and "weight" in k)
    state[key] = state[key].clone().fill_(float("inf"))
    path = tmp_path / "release.pth.tar"
    torch.save(checkpoint, path)
    with pytest.raises(NonFiniteWeightsError, match="inf/NaN"):
        seedzoo.create_model("seed_mbv3_large.mocov2_r50_200ep", pretrained=path)
    with pytest.raises(NonFiniteWeightsError):
        convert_release(get_entry("seed_mbv3_large.mocov2_r50_200ep"), path, tmp_path / "converted")
    assert not (tmp_path / "converted" / "model.safetensors").exists()
