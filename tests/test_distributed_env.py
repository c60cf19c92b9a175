"""Distributed variables left from an earlier torchrun: refused before any wait when they contradict
each other, and otherwise a wait bounded by SEEDZOO_RENDEZVOUS_TIMEOUT that ends in one line."""
from __future__ import annotations

import pytest
import torch.distributed as dist

from seedzoo.training.distributed import DIST_VARIABLES, DistributedSetupError, init_distributed
from tests.servers import free_port


@pytest.fixture
def clean_env(monkeypatch):
    for name in (*DIST_VARIABLES, "TORCHELASTIC_RUN_ID", "SEEDZOO_RENDEZVOUS_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("variables, problem", [
    ({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}, "RANK 2 is not below"),
    ({"WORLD_SIZE": "4", "RANK": "1"}, "MASTER_ADDR, MASTER_PORT are not set"),
    ({"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}, "RANK is not set"),
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not a whole number"),
])
def test_contradicting_variables_are_refused_before_any_wait(variables, problem, clean_env):
    for name, value in variables.items():
        clean_env.setenv(name, value)
    with pytest.raises(DistributedSetupError, match=problem) as err:
        init_distributed("cpu")
    assert "unset RANK WORLD_SIZE LOCAL_RANK MASTER_ADDR MASTER_PORT" in str(err.value)
    assert not dist.is_initialized()


@pytest.mark.parametrize("rank", ["0", "1"])
def test_stale_variables_end_in_one_line_after_the_rendezvous_timeout(rank, clean_env, capsys):
    # Rank 0 would wait for a second process, rank 1 for a master: neither exists.
    for name, value in {"WORLD_SIZE": "2", "RANK": rank, "LOCAL_RANK": rank, "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(free_port()), "SEEDZOO_RENDEZVOUS_TIMEOUT": "1"}.items():
        clean_env.setenv(name, value)
    with pytest.raises(DistributedSetupError, match="did not meet this one within 1 s") as err:
        init_distributed("cpu")
    message = str(err.value)
    assert "\n" not in message and f"RANK={rank} WORLD_SIZE=2" in message and "unset RANK" in message
    assert "waiting up to 1 s" in capsys.readouterr().err  # the wait is announced, not silent
    assert not dist.is_initialized()


def test_a_bad_rendezvous_timeout_is_refused(clean_env):
    for name, value in {"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1",
                        "SEEDZOO_RENDEZVOUS_TIMEOUT": "forever"}.items():
        clean_env.setenv(name, value)
    with pytest.raises(DistributedSetupError, match="SEEDZOO_RENDEZVOUS_TIMEOUT='forever'"):
        init_distributed("cpu")
