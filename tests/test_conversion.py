"""Conversion of official release files into seedzoo model folders, and publishing them."""
from __future__ import annotations

import dataclasses
import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import seedzoo
from seedzoo.cli import main as cli
from seedzoo.weights.io import ChecksumError, sha256_file
from seedzoo.weights.official import OfficialLayoutError, UnsafeCheckpointError
from seedzoo.weights.publish import convert_release, write_model_folder
from seedzoo.zoo import get_entry
from tests.conftest import rel_max_err

MBV3 = "seed_mbv3_large.mocov2_r50_200ep"


@pytest.fixture(scope="module")
def mbv3_folder(golden_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("convert") / MBV3
    assert cli(["convert", "--entry", MBV3, "--src", str(golden_dir / "seed_mbv3_large.pth.tar"),
                "--out", str(out)]) == 0
    return out


def _config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text(encoding="utf-8"))


def test_folder_holds_weights_config_and_card(mbv3_folder):
    assert sorted(p.name for p in mbv3_folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert (mbv3_folder / "README.md").read_text(encoding="utf-8").startswith("---\n")
    keys = load_file(str(mbv3_folder / "model.safetensors")).keys()
    assert keys and all(k.startswith(("backbone.", "head.")) for k in keys)
    assert {"head.0.weight", "head.2.weight"} <= set(keys)


def test_config_follows_timm_hub_schema(mbv3_folder):
    import timm

    config = _config(mbv3_folder)
    assert config["architecture"] == "seed_mobilenetv3_large"
    assert config["num_classes"] == 0 and config["num_features"] == 1280
    timm.models.PretrainedCfg(**config["pretrained_cfg"])  # timm rejects keys it does not know
    assert config["pretrained_cfg"]["interpolation"] == "bilinear"


def test_seedzoo_block_records_source_result_and_dropped_keys(mbv3_folder, golden_dir):
    block = _config(mbv3_folder)["seedzoo"]
    golden = golden_dir / "seed_mbv3_large.pth.tar"
    assert block["entry"] == MBV3
    assert block["lineage"]["teacher"]["entry"] == "mocov2_r50.in1k_200ep"
    assert block["source"]["sha256"] == sha256_file(golden)
    assert block["source"]["layout"] == "seed_student"
    assert "?" not in block["source"]["url"]  # the signed token is not recorded
    assert block["sha256"] == sha256_file(mbv3_folder / "model.safetensors")
    assert block["converter_version"]

    checkpoint = torch.load(golden, map_location="cpu", weights_only=True)
    not_student = [k for k in checkpoint["state_dict"] if not k.startswith("module.student.")]
    containers = [k for k in checkpoint if k != "state_dict"]
    dropped = block["dropped"]
    assert set(dropped["keys"]) == set(not_student) | set(containers)
    assert dropped["count"] == len(not_student) + len(containers) == sum(dropped["rules"].values())


def test_converted_folder_reproduces_golden_vectors(mbv3_folder, golden_dir):
    expected = load_file(str(golden_dir / "seed_mbv3_large.expected.safetensors"))
    model = seedzoo.create_model(MBV3, pretrained=str(mbv3_folder), num_classes=0).eval()
    head = seedzoo.load_projection_head(MBV3, pretrained=str(mbv3_folder)).eval()
    with torch.no_grad():
        features = model(expected["input_224"])
        embedding = head(features)
    assert rel_max_err(features, expected["features_224"]) < 1e-4
    assert rel_max_err(embedding, expected["embedding_224"]) < 1e-4


def test_verify_recomputes_sha256_and_fingerprint(mbv3_folder, tmp_path, capsys):
    assert cli(["verify", MBV3, "--pretrained", str(mbv3_folder), "--fingerprint"]) == 0
    out = capsys.readouterr().out
    assert "sha256 ok" in out and "fingerprint ok" in out

    # Same bytes, but a recorded fingerprint that does not describe them: caught without data.
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    for name in ("model.safetensors", "README.md"):
        os.link(mbv3_folder / name, tampered / name)
    config = _config(mbv3_folder)
    config["seedzoo"]["fingerprint"]["features"]["first"][0] += 0.01
    (tampered / "config.json").write_text(json.dumps(config), encoding="utf-8")
    assert cli(["verify", MBV3, "--pretrained", str(tampered), "--fingerprint"]) == 1
    assert "fingerprint MISMATCH" in capsys.readouterr().out


def test_verify_data_reports_when_there_is_nothing_to_measure(mbv3_folder, tmp_path, capsys):
    assert not any(m.kind == "measured" for m in get_entry(MBV3).metrics)
    assert cli(["verify", MBV3, "--pretrained", str(mbv3_folder), "--data", str(tmp_path)]) == 0
    assert "nothing to re-measure" in capsys.readouterr().out


def test_unknown_layout_is_refused_naming_the_keys(golden_dir, tmp_path):
    checkpoint = torch.load(golden_dir / "seed_mbv3_large.pth.tar", map_location="cpu", weights_only=True)
    checkpoint["state_dict"]["module.student.mystery_adapter.weight"] = torch.zeros(3)
    src = tmp_path / "odd.pth.tar"
    torch.save(checkpoint, src)
    with pytest.raises(OfficialLayoutError, match="mystery_adapter"):
        convert_release(get_entry(MBV3), src, tmp_path / "out", fingerprint=False)
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_pinned_source_sha256_is_enforced(golden_dir, tmp_path):
    entry = get_entry(MBV3)
    pinned = dataclasses.replace(entry, source=dataclasses.replace(entry.source, sha256="0" * 64))
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        convert_release(pinned, golden_dir / "seed_mbv3_large.pth.tar", tmp_path / "out", fingerprint=False)


class _WritesMarker:
    """A pickle payload that would create a file when unpickled with code execution allowed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def test_crafted_pickle_is_refused_and_its_code_never_runs(tmp_path):
    marker = tmp_path / "marker.txt"
    src = tmp_path / "evil.pth.tar"
    with open(src, "wb") as f:
        pickle.dump({"state_dict": {"module.student.conv.weight": _WritesMarker(marker)}}, f, protocol=2)
    with pytest.raises(UnsafeCheckpointError):
        convert_release(get_entry(MBV3), src, tmp_path / "out", fingerprint=False)
    assert not marker.exists()


def test_write_model_folder_without_entry(tmp_path):
    """The trainer's export: an architecture, a backbone and a head; no zoo entry."""
    model = seedzoo.create_model("seed_resnet18", num_classes=0)
    head = {"0.weight": torch.randn(512, 512), "0.bias": torch.zeros(512),
            "2.weight": torch.randn(128, 512), "2.bias": torch.zeros(128)}
    out = write_model_folder(tmp_path / "run", architecture="seed_resnet18", backbone=model.state_dict(),
                             head=head, seedzoo={"run": "fmnist-demo"})
    config = _config(out)
    assert config["num_features"] == 512 and config["seedzoo"]["run"] == "fmnist-demo"
    assert config["seedzoo"]["sha256"] == sha256_file(out / "model.safetensors")
    assert not (out / "README.md").exists()
    reloaded = seedzoo.create_model("seed_resnet18", pretrained=str(out), num_classes=0)
    assert all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), model.state_dict().values()))


def test_publish_uploads_exactly_the_model_folder(mbv3_folder, monkeypatch, capsys):
    from huggingface_hub import HfApi

    import conversion.publish as publish

    uploads = []

    def fake_upload_folder(self, *, folder_path, repo_id, allow_patterns=None, **kwargs):
        files = sorted(p.name for p in Path(folder_path).iterdir())
        uploads.append({"repo_id": repo_id, "files": files, "allow": sorted(allow_patterns or []), **kwargs})
        return type("CommitInfo", (), {"oid": "c0ffee" * 6 + "c0ff"})()

    monkeypatch.setattr(HfApi, "upload_folder", fake_upload_folder)
    assert publish.main([str(mbv3_folder), "--org", "testorg"]) == 0
    assert uploads == [{"repo_id": f"testorg/{MBV3}", "files": ["README.md", "config.json", "model.safetensors"],
                        "allow": ["README.md", "config.json", "model.safetensors"], "repo_type": "model",
                        "commit_message": uploads[0]["commit_message"]}]
    out = capsys.readouterr().out
    assert "c0ffee" in out and _config(mbv3_folder)["seedzoo"]["sha256"] in out


def test_publish_refuses_a_folder_whose_weights_do_not_match(mbv3_folder, tmp_path):
    import conversion.publish as publish

    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "README.md"):
        (broken / name).write_bytes((mbv3_folder / name).read_bytes())
    data = bytearray((mbv3_folder / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (broken / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(SystemExit, match="sha256"):
        publish.check_folder(broken)

