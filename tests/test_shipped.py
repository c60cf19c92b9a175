"""The Fashion-MNIST entries whose weights ship inside the package: offline, verified, measured again."""
from __future__ import annotations

import shutil

import pytest
import torch

import seedzoo
from seedzoo.cli import main as cli
from seedzoo.data.fashion_mnist import available
from seedzoo.weights.io import ChecksumError, load_weights, sha256_file
from seedzoo.zoo import list_entries

SHIPPED = [e for e in list_entries() if e.weights.embedded]
pytestmark = pytest.mark.skipif(not SHIPPED, reason="no weights shipped yet (run `seedzoo reproduce fmnist`)")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("SEEDZOO_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize("entry", SHIPPED, ids=lambda e: e.name)
def test_shipped_entry_loads_offline_with_its_pinned_sha256(entry):
    model = seedzoo.create_model(entry.name, pretrained=True, num_classes=0).eval()
    assert model.seedzoo_weights.sha256 == entry.weights.sha256
    x = torch.randn(2, 3, 32, 32)
    if entry.weights.with_head:  # SEED distils through the teacher's head; the reference's head classifies
        head = seedzoo.load_projection_head(entry.name, pretrained=True)
        with torch.no_grad():
            assert head(model(x)).shape == (2, entry.head.out_dim)
    else:  # the students ship their backbone only (their heads served training)
        with pytest.raises(ValueError, match=f"backbone only; `seedzoo train {entry.name}`"):
            seedzoo.load_projection_head(entry.name, pretrained=True)
    assert {m.kind for m in entry.metrics} == {"measured"}
    assert all(m.source == "seedzoo reproduce fmnist" for m in entry.metrics)


def test_a_flipped_byte_in_a_shipped_file_is_detected(tmp_path):
    entry = SHIPPED[0]
    source = seedzoo.create_model(entry.name, pretrained=True).seedzoo_weights.path
    copy = tmp_path / source.name
    shutil.copyfile(source, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    assert sha256_file(source) == entry.weights.sha256 != sha256_file(copy)
    with pytest.raises(ChecksumError):
        load_weights(copy, expected_sha256=entry.weights.sha256)


@pytest.mark.skipif(not available(), reason="needs Debian's dataset-fashion-mnist")
def test_demo_loads_every_shipped_entry_and_prints_the_table(capsys):
    assert cli(["demo", "--limit", "100"]) == 0
    out = capsys.readouterr().out
    for entry in SHIPPED:
        assert f"loaded {entry.name}" in out and "verified" in out
    assert "random init (reference)" in out and "card kNN-20" in out
