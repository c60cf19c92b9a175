"""A signal in the middle of a training step: the step ends, is saved, and the run resumes from it to the
uninterrupted result; a second signal does not wait; handlers that do not raise are left alone."""
from __future__ import annotations

import os
import signal

import pytest
import torch

from seedzoo.cli import _interrupt
from seedzoo.training.checkpoint import list_checkpoints, load_checkpoint
from seedzoo.training.engine import Trainer
from seedzoo.training.interrupts import Interrupts

from test_train import assert_same_state, run, tiny_config, write_image_folder


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("data") / "train")


@pytest.fixture
def cli_handlers():
    """SIGINT and SIGTERM raise KeyboardInterrupt, as under `seedzoo train` (`cli.run_command`)."""
    before = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for s, handler in before.items():
        signal.signal(s, handler)


def signal_during_step(monkeypatch, at_step: int, times: int = 1) -> None:
    """Send SIGTERM to this process `times` times while the step after `at_step` runs, before any
    parameter of it has moved."""
    step = Trainer._step

    def step_then_signal(self, m, views, targets, loop, info):
        if loop.step == at_step:
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGTERM)
        return step(self, m, views, targets, loop, info)

    monkeypatch.setattr(Trainer, "_step", step_then_signal)


def steps(run_dir) -> list[int]:
    return [int(p.stem.split("_")[1]) for p in list_checkpoints(run_dir)]


def test_signal_mid_step_saves_that_step_and_resumes_to_the_uninterrupted_result(
        images, tmp_path, monkeypatch, cli_handlers):
    signal_during_step(monkeypatch, at_step=2)  # during step 3; save_every=2, so no periodic save at 3
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        run(tiny_config(images), tmp_path / "cut")
    assert steps(tmp_path / "cut") == [2, 3]
    assert load_checkpoint(list_checkpoints(tmp_path / "cut")[-1])["step"] == 3
    monkeypatch.undo()

    resumed = run(tiny_config(images), tmp_path / "cut", resume="auto")
    full = run(tiny_config(images), tmp_path / "full")
    assert resumed.step == full.step == 8
    assert_same_state(load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint))


def test_a_second_signal_does_not_wait_for_the_step(images, tmp_path, monkeypatch, cli_handlers):
    signal_during_step(monkeypatch, at_step=3, times=2)  # step 3 completed, not saved (save_every=2)
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        run(tiny_config(images), tmp_path / "cut")
    # nothing more is saved: the state is part-way through step 4, neither step 3's nor step 4's
    assert steps(tmp_path / "cut") == [2]
    assert signal.getsignal(signal.SIGTERM) is _interrupt  # the trainer put the handlers back


def test_handlers_that_do_not_raise_are_left_alone():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        interrupts = Interrupts()
        with interrupts.installed(), interrupts.step():
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # kill still ends the process
            assert signal.getsignal(signal.SIGINT) is not before[signal.SIGINT]  # Ctrl-C waits for the step
        assert signal.getsignal(signal.SIGINT) is before[signal.SIGINT]
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def test_a_noted_signal_is_raised_when_the_step_ends_not_before(cli_handlers):
    interrupts, done = Interrupts(), []
    with interrupts.installed():
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"), interrupts.step():
            os.kill(os.getpid(), signal.SIGTERM)
            done.append(torch.ones(1))  # still runs: the signal waits
        with interrupts.step():  # the next step starts with nothing pending
            done.append(torch.ones(1))
    assert len(done) == 2
