"""`seedzoo eval` end to end on Fashion-MNIST, and `verify_measured` re-measuring a pinned number."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import seedzoo
from seedzoo.cli import main
from seedzoo.data.fashion_mnist import available
from seedzoo.evaluation.runner import parse_protocol
from seedzoo.evaluation.verify import verify_measured
from seedzoo.weights.io import save_weights
from seedzoo.zoo import Metric, get_entry

pytestmark = pytest.mark.skipif(not available(), reason="Fashion-MNIST not installed (apt-get install "
                                                         "dataset-fashion-mnist)")


@pytest.fixture(scope="module")
def r18_weights(tmp_path_factory):
    """Random but fixed seed_resnet18 weights in seedzoo's safetensors format."""
    torch.manual_seed(0)
    model = seedzoo.create_model("seed_resnet18")
    path = tmp_path_factory.mktemp("weights") / "model.safetensors"
    save_weights(path, model.state_dict(), None, {"architecture": "seed_resnet18"})
    return path


def test_seedzoo_eval_knn_writes_protocol_settings_and_top1(tmp_path, r18_weights, capsys):
    out = tmp_path / "result.json"
    code = main(["eval", "seed_r18", "--pretrained", str(r18_weights), "--protocol", "knn",
                 "--dataset", "fashion_mnist", "--limit", "200", "--input-size", "32", "--batch-size", "100",
                 "--device", "cpu", "--quiet", "--json", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert data["protocol"] == "knn" and data["dataset"] == "Fashion-MNIST" and data["model"] == "seed_r18"
    assert data["settings"]["temperature"] == 0.07 and data["settings"]["ks"] == [20, 200]
    assert data["settings"]["num_train"] == 200 and data["settings"]["num_test"] == 200
    assert data["settings"]["preprocessing"]["input_size"] == 32
    assert data["settings"]["weights"]["path"] == str(r18_weights) and data["settings"]["weights"]["kind"] == "file"
    assert data["settings"]["weights"]["sha256"] == seedzoo.weights.sha256_file(r18_weights)
    top1 = data["metrics"]["knn20_top1"]
    assert 10.0 < top1 <= 100.0  # even random conv features beat chance (10%) on Fashion-MNIST
    printed = capsys.readouterr().out
    assert "knn20_top1" in printed and f"{top1:.2f}" in printed


def test_seedzoo_eval_reports_a_missing_dataset_clearly(tmp_path, capsys):
    code = main(["eval", "seed_r18", "--random-init", "--dataset", "cifar10", "--data", str(tmp_path),
                 "--limit", "8", "--input-size", "32", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "CIFAR-10 not found" in err and "cifar-10-batches-py" in err and "never downloads" in err


def test_pinned_protocol_strings_parse_and_reject_unknown_keys():
    spec = parse_protocol("knn:input_size=32,limit=100")
    assert spec.name == "knn" and spec.options == {"input_size": 32, "limit": 100}
    assert str(spec) == "knn:input_size=32,limit=100"
    with pytest.raises(ValueError, match="bad protocol option 'k=5'"):
        parse_protocol("knn:k=5")
    with pytest.raises(ValueError, match="unknown protocol"):
        parse_protocol("svm")


def test_verify_measured_remeasures_pinned_number_within_tolerance(r18_weights):
    protocol = "knn:input_size=32,limit=64"
    entry = get_entry("seed_r18")

    def with_metric(value: float):
        metric = Metric(value, "knn20_top1", "Fashion-MNIST", protocol, "measured",
                        f"seedzoo eval seed_r18 --protocol {protocol}", tolerance=0.5)
        return dataclasses.replace(entry, metrics=entry.metrics + (metric,))

    (bad,) = verify_measured(with_metric(-10.0), None, pretrained=r18_weights, device="cpu")
    assert not bad.ok and bad.expected == -10.0 and bad.measured is not None
    assert str(bad).startswith("FAIL") and "expected -10.00 +/- 0.50" in str(bad)
    # the number it measured, stored as the expected value, verifies: the protocol string pins everything
    (good,) = verify_measured(with_metric(bad.measured), None, pretrained=r18_weights, device="cpu")
    assert good.ok and good.measured == pytest.approx(bad.measured) and good.tolerance == 0.5
    assert good.summary().startswith("ok")
    assert [r.metric.kind for r in verify_measured(entry, None, pretrained=r18_weights)] == []  # reported only


def test_verify_measured_takes_pretrained_as_create_model_does():
    from seedzoo.weights.resolve import PretrainedError

    with pytest.raises(PretrainedError, match="pretrained must be True"):
        verify_measured(get_entry("seed_r18"), None, pretrained=None)



def test_seedzoo_eval_compares_several_models_in_one_table_with_their_weights(tmp_path, r18_weights, capsys):
    out = tmp_path / "results.json"
    code = main(["eval", "seed_r18", str(r18_weights.parent), "seed_r18", "--random-init", "--limit", "64",
                 "--input-size", "32", "--device", "cpu", "--quiet", "--json", str(out)])
    assert code == 2  # a folder's own weights cannot be random: refused before anything runs
    capsys.readouterr()
    code = main(["eval", "seed_r18", "seed_mbv3_large", "--random-init", "--limit", "64", "--input-size", "32",
                 "--device", "cpu", "--quiet", "--json", str(out)])
    assert code == 0
    results = json.loads(out.read_text())["results"]
    assert [r["model"] for r in results] == ["seed_r18", "seed_mbv3_large"]
    assert all(r["settings"]["weights"] == {"kind": "random init"} for r in results)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["model", "weights", "sha256", "knn20_top1"]
    assert lines[1].startswith("seed_r18 ") and lines[2].startswith("seed_mbv3_large ")
    assert f"{results[1]['metrics']['knn20_top1']:.2f}" in lines[2]


def test_seedzoo_eval_finetune_save_writes_a_model_that_loads_with_its_classifier(tmp_path, r18_weights, capsys):
    saved = tmp_path / "fine_tuned"
    code = main(["eval", "seed_r18", "--pretrained", str(r18_weights), "--protocol", "finetune", "--save",
                 str(saved), "--limit", "64", "--epochs", "1", "--batch-size", "32", "--input-size", "32",
                 "--device", "cpu", "--quiet"])
    assert code == 0 and "saved the fine-tuned model" in capsys.readouterr().out
    config = json.loads((saved / "config.json").read_text())
    assert config["num_classes"] == 10
    assert config["seedzoo"]["derived_from"]["sha256"] == seedzoo.weights.sha256_file(r18_weights)
    assert config["seedzoo"]["fine_tuned"]["protocol"] == "finetune"
    model = seedzoo.create_model(saved, pretrained=True, num_classes=10).eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_seedzoo_eval_save_needs_the_finetune_protocol(tmp_path, capsys):
    code = main(["eval", "seed_r18", "--random-init", "--save", str(tmp_path / "x"), "--quiet"])
    assert code == 2 and "--protocol finetune" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_seedzoo_eval_refuses_a_second_protocol_instead_of_dropping_one(capsys):
    code = main(["eval", "seed_r18", "--random-init", "--protocol", "knn", "--protocol", "linear_fast", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--protocol given 2 times (knn, linear_fast)" in err and "once per protocol" in err
