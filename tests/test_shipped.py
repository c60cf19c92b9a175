"""The Fashion-MNIST entries whose weights ship inside the package: offline, verified, measured again."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

import seedzoo
from seedzoo.cli import main as cli
from seedzoo.data.fashion_mnist import available
from seedzoo.weights.fingerprint import compare_fingerprints
from seedzoo.weights.io import ChecksumError, load_weights, save_weights, sha256_file
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


def test_every_shipped_file_has_its_fingerprint_pinned_in_the_registry():
    for entry in SHIPPED:
        assert entry.weights.fingerprint is not None, (
            f"{entry.name}: no fingerprint pinned for sha256 {entry.weights.sha256} in seedzoo/zoo/fingerprints.json")
        assert list(entry.weights.fingerprint["input"]) == [2, *entry.data.input_size]


def test_re_releasing_the_shipped_files_writes_the_pins_the_registry_holds(tmp_path):
    # The release step's pins for the files already shipped are the ones verify compares with.
    from seedzoo.experiments.fmnist import EMBEDDED_DIR, PACKAGE, ReleaseTarget
    from seedzoo.experiments.fmnist.release import write_fingerprints

    target = ReleaseTarget(EMBEDDED_DIR, tmp_path / "measured.json", tmp_path / "fingerprints.json")
    write_fingerprints({e.name: e.weights.sha256 for e in SHIPPED}, target)
    written = json.loads(target.fingerprints.read_text())["entries"]
    pinned = json.loads(PACKAGE.fingerprints.read_text())["entries"]
    assert written.keys() == pinned.keys()
    for name, pin in pinned.items():
        # The same file, so the same sha256; the statistics agree within the pin's own tolerance (their last
        # bits depend on the thread count that computed them).
        assert written[name]["sha256"] == pin["sha256"]
        ok, err = compare_fingerprints(pin["fingerprint"], written[name]["fingerprint"])
        assert ok, (name, err)


@pytest.mark.parametrize("entry", SHIPPED, ids=lambda e: e.name)
def test_verify_fingerprint_passes_on_each_shipped_entry(entry, capsys):
    assert cli(["verify", entry.name, "--fingerprint", "--json", "-"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["sha256"]["ok"] and report["fingerprint"]["ok"]
    assert report["fingerprint"]["reference"] == f"the registry record of '{entry.name}'"


def test_verify_fingerprint_fails_on_a_perturbed_weight(tmp_path, capsys):
    entry = SHIPPED[0]
    loaded = load_weights(seedzoo.create_model(entry.name, pretrained=True).seedzoo_weights.path,
                          expected_sha256=entry.weights.sha256)
    backbone = dict(loaded.backbone)
    key = next(k for k, v in backbone.items() if v.dtype.is_floating_point and v.dim() == 4)
    backbone[key] = backbone[key] * 1.01  # 1% on one convolution: bytes and computation both change
    path = tmp_path / "model.safetensors"
    save_weights(path, backbone, loaded.head, dict(loaded.metadata))
    code = cli(["verify", entry.name, "--pretrained", str(path), "--fingerprint", "--json", "-"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and not report["ok"]
    assert report["sha256"]["ok"] is False and report["fingerprint"]["ok"] is False
    assert report["fingerprint"]["max_relative_error"] > entry.weights.fingerprint["tolerance"]


@pytest.mark.skipif(not available(), reason="needs Debian's dataset-fashion-mnist")
def test_demo_loads_every_shipped_entry_and_prints_the_table(capsys, tmp_path):
    assert cli(["demo", "--limit", "100", "--quiet", "--json", str(tmp_path / "demo.json")]) == 0
    out = capsys.readouterr().out
    for entry in SHIPPED:
        assert f"loaded {entry.name}" in out and "verified" in out
    assert "random init (reference)" in out and "card kNN-20" in out
    rows = json.loads((tmp_path / "demo.json").read_text())["rows"]
    references = ["random init (reference)", "raw pixels (reference)", "raw pixels, centred (reference)"]
    assert [r["network"] for r in rows] == [e.name for e in SHIPPED] + references
    assert [r["role"] for r in rows[-3:]] == ["reference"] * 3
    assert all(0 <= r["knn20_top1"] <= 100 and 0 <= r["linear_top1"] <= 100 for r in rows)
    assert f"{rows[0]['linear_top1']:.2f}" in out  # the table and the JSON hold the same numbers
