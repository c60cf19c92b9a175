"""SIGINT and SIGTERM wait for the training step they arrive in to end, so that the run can save that step.

The CLI turns both signals into a KeyboardInterrupt raised wherever the program is (`cli.run_command`);
Python's default SIGINT handler does the same. Raised in the middle of a step, it would leave the
student half-updated (some parameters stepped, others not, the queue half-written), and the newest
periodic checkpoint, up to `save_every` steps back, would be all a resume could use. Inside
`Interrupts.step()` a signal is noted instead and the installed handler runs once the step is complete;
outside a step (loading a batch, the kNN monitor) it runs at once, since the state between steps is whole.
A second signal during a step does not wait (whoever sent it insists), and the state it cuts part-way is
not saved (`whole`).

Only signals whose handler raises in Python are deferred: a handler left at the default (SIGTERM ends
the process) or ignored stays so, and outside the main thread, where Python cannot set handlers, nothing
changes.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    """Use as `with interrupts.installed(): ... with interrupts.step(): <one step>`."""

    def __init__(self) -> None:
        self._handlers: dict[int, Callable[[int, FrameType | None], Any]] = {}
        self._in_step = False
        self._pending: tuple[int, FrameType | None] | None = None
        self.whole = True  # False once an exception left a step part-way: its state must not be saved

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if self._in_step and self._pending is None:
            self._pending = (signum, frame)
        else:
            self._handlers[signum](signum, frame)

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is threading.main_thread():
            for s in _SIGNALS:
                handler = signal.getsignal(s)
                if callable(handler):
                    self._handlers[s] = handler
                    signal.signal(s, self._note)
        try:
            yield
        finally:
            for signum, handler in self._handlers.items():
                signal.signal(signum, handler)
            self._handlers.clear()

    @contextmanager
    def step(self) -> Iterator[None]:
        """One step that a signal does not cut: the signal's handler runs once the block has ended."""
        self._in_step, self._pending = True, None
        try:
            yield
        except BaseException:  # a second signal, or a failure: the pending signal goes with it
            self.whole = False
            raise
        finally:
            self._in_step = False
        if self._pending is not None:  # the block completed: now the handler may raise
            (signum, frame), self._pending = self._pending, None
            self._handlers[signum](signum, frame)
