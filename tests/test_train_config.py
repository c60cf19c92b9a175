"""Recipes and overrides: every zoo recipe ships and parses; errors name the key and suggest the nearest."""
from __future__ import annotations

import pytest

from seedzoo.cli import main
from seedzoo.training.config import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    config_hash,
    load_config,
    recipe_names,
)
from seedzoo.zoo import get_entry, list_entries

RECIPE_ENTRIES = [e.name for e in list_entries() if e.recipe is not None]


@pytest.mark.parametrize("name", RECIPE_ENTRIES)
def test_every_registry_recipe_exists_parses_and_agrees_with_its_entry(name):
    entry = get_entry(name)
    assert entry.recipe.config[:-5] in recipe_names()
    cfg = load_config(name)
    assert cfg.name == name and cfg.method == entry.recipe.method
    assert cfg.epochs == entry.recipe.epochs and cfg.global_batch == entry.recipe.global_batch
    if entry.recipe.method == "moco":  # a teacher or baseline trained by MoCo-v2 alone
        assert cfg.student.arch == entry.architecture and cfg.student.head_hidden == entry.head.hidden_dim
        assert cfg.moco.queue_size == entry.recipe.queue_size
        return
    teacher = get_entry(entry.teacher.entry)
    assert cfg.student.arch == entry.architecture and cfg.teacher.arch == teacher.architecture
    assert cfg.student.head_hidden == entry.head.hidden_dim and cfg.teacher.entry == teacher.name
    assert cfg.teacher.head_batch_norm == teacher.head.batch_norm
    assert cfg.epochs == entry.recipe.epochs and cfg.global_batch == entry.recipe.global_batch
    assert cfg.distill.teacher_temperature == entry.recipe.teacher_temperature
    assert cfg.distill.student_temperature == entry.recipe.student_temperature
    assert cfg.distill.queue_size == entry.recipe.queue_size
    assert cfg.distill.small_patches == entry.recipe.small_patches


@pytest.mark.parametrize("preset", ["smoke", "smoke_moco"])
def test_presets_parse(preset):
    assert load_config(preset).name == preset


def test_overrides_are_typed_and_dotted():
    cfg = apply_overrides(TrainConfig(), ["optim.base_lr=0.06", "distill.small_patches=False", "epochs=3",
                                          "data.mean=0.5,0.5,0.5", "distill.teacher_temperature=1e-2"])
    assert cfg.optim.base_lr == 0.06 and cfg.epochs == 3 and cfg.data.mean == (0.5, 0.5, 0.5)
    assert cfg.distill.small_patches is False  # not bool("False"), the official code's bug
    assert cfg.distill.teacher_temperature == 0.01


@pytest.mark.parametrize("override, suggestion", [
    ("optim.base_rl=0.1", "optim.base_lr"),
    ("distil.queue_size=1024", "distill.queue_size"),
    ("small_patches=true", "distill.small_patches"),
])
def test_unknown_key_suggests_the_nearest(override, suggestion):
    with pytest.raises(ConfigError, match=f"unknown config key '{override.split('=')[0]}'.*'{suggestion}'"):
        apply_overrides(TrainConfig(), [override])


@pytest.mark.parametrize("override, message", [
    ("epochs=two", "epochs: expected an integer"),
    ("distill.small_patches=maybe", "expected true or false"),
    ("method=mocco", "Did you mean 'moco'"),
    ("optim.base_lr", "not key=value"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(TrainConfig(), [override])


def test_yaml_keys_are_validated_too(tmp_path):
    (tmp_path / "r.yaml").write_text("optim:\n  warmup_epoch: 3\n")
    with pytest.raises(ConfigError, match="'optim.warmup_epochs'"):
        load_config(tmp_path / "r.yaml")


def test_hash_follows_the_resolved_config():
    a, b = TrainConfig(), apply_overrides(TrainConfig(), ["seed=1"])
    assert config_hash(a) == config_hash(TrainConfig()) != config_hash(b)


def test_cli_reports_config_errors_with_exit_code_2(capsys):
    assert main(["train", "--preset", "smoke", "optim.lrr=1", "--print-config"]) == 2
    assert "error: unknown config key 'optim.lrr'" in capsys.readouterr().err
    assert main(["train", "--preset", "smoke", "epochs=5", "--print-config"]) == 0
    assert "epochs: 5" in capsys.readouterr().out


def test_data_config_names_one_thing():
    # The registry's preprocessing record is `DataConfig`; the training config's `data:` section has its own name.
    import seedzoo.training.config as training_config
    from seedzoo.training.config import TrainConfig, TrainDataConfig
    from seedzoo.zoo import DataConfig

    assert not hasattr(training_config, "DataConfig")
    assert isinstance(TrainConfig().data, TrainDataConfig) and not isinstance(TrainConfig().data, DataConfig)
