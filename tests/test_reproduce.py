"""`seedzoo reproduce fmnist`: stages checked before any work, overrides anywhere, seeds summarised."""
from __future__ import annotations

import json
import math

import pytest
import torch
import yaml

from seedzoo.cli import main
from seedzoo.data.fashion_mnist import available
from seedzoo.experiments.fmnist.evaluation import Row
from seedzoo.experiments.fmnist.report import seed_summary, write_seed_results
from seedzoo.experiments.fmnist.run import NEEDS, STAGES, StageError, check_stages, run_seeds
from seedzoo.experiments.fmnist.stages import STUDENT, supervised_export
from seedzoo.weights.io import load_weights

needs_fmnist = pytest.mark.skipif(not available(), reason="needs Debian's dataset-fashion-mnist")
TOY = ["max_steps=1", "data.subset=64", "global_batch=32", "data.workers=0", "distill.queue_size=64",
       "moco.queue_size=64", "monitor.knn_every=0"]


@pytest.mark.parametrize("stage", ["foo", "seed,mocov3", ""])
def test_an_unknown_stage_is_refused_in_one_line_naming_the_valid_ones(stage, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["reproduce", "fmnist", "--out", str(out), "--stage", stage]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown stage" in err and ", ".join(STAGES) in err
    assert not out.exists()  # refused before anything was written


def test_comma_separated_stages_are_each_run_and_evaluate_adds_what_it_reads(tmp_path):
    wanted, notes = check_stages(["seed,mocov2", "supervised"], tmp_path)
    assert wanted == {"seed", "mocov2", "supervised"} and notes == []
    wanted, notes = check_stages(["evaluate"], tmp_path)
    assert wanted == {"evaluate", *NEEDS["evaluate"]}
    assert len(notes) == 1 and notes[0].startswith("evaluate needs seed, mocov2, supervised")
    assert check_stages(None, tmp_path) == (None, [])  # no --stage: the default stages


def test_a_misspelt_override_is_refused_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["reproduce", "fmnist", "--out", str(out), "epochz=1"]) == 2
    assert "unknown config key 'epochz'" in capsys.readouterr().err and not out.exists()
    assert main(["reproduce", "fmnist", "cifar", "--out", str(out)]) == 2
    assert "name one experiment, fmnist" in capsys.readouterr().err


@needs_fmnist
def test_overrides_after_the_options_reach_the_training_run(tmp_path, single_thread):
    out = tmp_path / "out"
    assert main(["reproduce", "fmnist", "--stage", "seed", "--out", str(out), *TOY, "optim.base_lr=0.01"]) == 0
    config = yaml.safe_load((out / "seed" / "config.yaml").read_text())
    assert config["optim"]["base_lr"] == 0.01 and config["max_steps"] == 1
    assert (out / "seed" / "export" / STUDENT / "model.safetensors").is_file()
    assert not (out / "mocov2").exists()  # only the stage named


@needs_fmnist
def test_seeds_run_one_sub_folder_each_with_its_seed(tmp_path, single_thread):
    with pytest.raises(StageError, match="keep one"):
        run_seeds(tmp_path, 2, ["mocov2"], [*TOY, "seed=3"])
    assert run_seeds(tmp_path, 2, ["mocov2"], TOY, say=lambda _: None) == {0: [], 1: []}
    for seed in (0, 1):
        config = yaml.safe_load((tmp_path / f"seed_{seed}" / "mocov2" / "config.yaml").read_text())
        assert config["seed"] == seed
    assert not (tmp_path / "results_seeds.json").exists()  # no evaluate stage: nothing to summarise


@needs_fmnist
def test_the_labelled_reference_takes_each_seed_too(tmp_path, single_thread):
    run_seeds(tmp_path, 2, ["supervised"], [], limit=16, say=lambda _: None)
    first, second = (load_weights(supervised_export(tmp_path / f"seed_{s}")).backbone for s in (0, 1))
    assert any(not torch.equal(first[k], second[k]) for k in first)  # another initialisation and data order


def _row(label: str, knn20: float) -> Row:
    results = {f"{d}/{k}": {"protocol": k, "knn20_top1": knn20, "knn200_top1": knn20 - 1, "top1": knn20 + 1}
               for d in ("fashion_mnist", "digits") for k in ("knn", "linear", "linear_1pct")}
    return Row(label, "w", results)


def test_the_seed_summary_gives_each_numbers_mean_and_sample_standard_deviation(tmp_path):
    by_seed = {0: [_row("SEED", 80.0), _row("MoCo", 70.0)], 1: [_row("MoCo", 72.0), _row("SEED", 84.0)]}
    summary = seed_summary(by_seed)
    assert [r["label"] for r in summary] == ["SEED", "MoCo"]  # the first seed's order, matched by label
    seed = summary[0]["results"]["fashion_mnist/knn"]["knn20_top1"]
    assert seed["values"] == [80.0, 84.0] and seed["mean"] == 82.0
    assert math.isclose(seed["std"], math.sqrt(8.0))  # sample std (n - 1) of 80 and 84
    write_seed_results(tmp_path, by_seed)
    saved = json.loads((tmp_path / "results_seeds.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["rows"] == summary
    table = (tmp_path / "results_seeds.md").read_text()
    assert "| SEED | 82.00 ± 2.83 |" in table and "| MoCo | 71.00 ± 1.41 |" in table
    assert seed_summary({0: [_row("SEED", 80.0)]})[0]["results"]["digits/knn"]["knn20_top1"]["std"] is None
