"""A DataLoader whose worker processes leave interrupts to the main process.

Ctrl-C signals the whole process group, and torchrun ends a rank by signalling its process group, so
loader workers receive SIGINT/SIGTERM with the main process. A worker that dies of it makes the main
process fail with "DataLoader worker ... exited unexpectedly" (or "killed by signal") in a traceback,
instead of the one line an interrupted command ends with. Here workers ignore both: the main process
alone is interrupted, and it stops its workers as it always does (they also exit once it is gone).

The signals are blocked while the workers are forked (a fork inherits the mask), so that one arriving
before a worker has set them to ignored waits, and is then discarded. A worker hands its batches over
through a thread of multiprocessing's (`resource_sharer`); when the main process stops mid-handover, that
thread's connection resets, which is the stop, not an error to print.
"""
from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from torch.utils.data import DataLoader

__all__ = ["QuietLoader"]

_INTERRUPTS = {signal.SIGINT, signal.SIGTERM}


@contextmanager
def _interrupts_blocked() -> Iterator[None]:
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _quiet_hook(default: Callable[..., object]) -> Callable[..., object]:
    """`sys.excepthook` (which resource_sharer's thread reports through) silent on a reset connection."""
    def hook(exc_type: type[BaseException], *rest: Any) -> object:
        if issubclass(exc_type, (ConnectionError, EOFError)):  # the main process went away mid-handover
            return None
        return default(exc_type, *rest)

    return hook


def _ignore_interrupts(then: Callable[[int], None] | None) -> Callable[[int], None]:
    def init(worker_id: int) -> None:
        for sig in _INTERRUPTS:
            signal.signal(sig, signal.SIG_IGN)  # discards one already pending
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _INTERRUPTS)
        sys.excepthook = _quiet_hook(sys.excepthook)
        if then is not None:
            then(worker_id)

    return init


class QuietLoader(DataLoader):
    """`torch.utils.data.DataLoader` whose workers ignore SIGINT and SIGTERM (see the module's doc)."""

    def __init__(self, dataset: Any, **kwargs: Any) -> None:
        kwargs["worker_init_fn"] = _ignore_interrupts(kwargs.get("worker_init_fn"))
        super().__init__(dataset, **kwargs)

    def __iter__(self) -> Any:
        if self.num_workers == 0:
            return super().__iter__()
        with _interrupts_blocked():  # the workers are forked here
            return super().__iter__()
