"""How seedzoo talks to the network: the offline switch, the limits every request runs under, and the guard
that ends a stalled transfer.

Every request has a connect timeout, a read timeout and a low-speed limit, read from the environment:

    SEEDZOO_CONNECT_TIMEOUT   seconds to open a connection (default 10)
    SEEDZOO_READ_TIMEOUT      seconds of the low-speed window, and the longest wait for an answer (default 30)
    SEEDZOO_MIN_SPEED         bytes/s a transfer must average over any window of SEEDZOO_READ_TIMEOUT seconds,
                              response headers included as no progress (default 1024; 0: only a silent window)

A read timeout alone bounds each read, not the transfer: a server that sends one byte every few seconds
never trips it. The low-speed limit does, and so bounds the wait for headers too.
"""
from __future__ import annotations

import http.client
import os
import socket
import threading
import time
import urllib.request
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..errors import SeedzooError

__all__ = [
    "NetworkLimits",
    "NetworkSettingError",
    "StallGuard",
    "is_offline",
    "network_limits",
    "open_guarded",
]

_YES = {"1", "true", "yes", "on"}
_NO = {"", "0", "false", "no", "off"}
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "SEEDZOO_OFFLINE")


class NetworkSettingError(SeedzooError, ValueError):
    """An environment variable of the network settings holds a value seedzoo cannot read."""


def is_offline() -> bool:
    """Whether HF_HUB_OFFLINE or SEEDZOO_OFFLINE forbids the network; a value that is neither a clear yes nor
    a clear no is refused rather than read as 'online'."""
    offline = False
    for var in OFFLINE_VARIABLES:
        value = os.environ.get(var, "").strip().lower()
        if value not in _YES | _NO:
            raise NetworkSettingError(f"{var}={os.environ[var]!r} is neither yes nor no: set it to 1 to forbid "
                                      f"the network, or to 0 (or unset it) to allow it")
        offline = offline or value in _YES
    return offline


@dataclass(frozen=True)
class NetworkLimits:
    connect_timeout: float  # seconds
    read_timeout: float  # seconds: the low-speed window, and the longest wait for any answer
    min_speed: float  # bytes/s averaged over a window of read_timeout

    def describe(self) -> str:
        return (f"less than {self.min_speed:g} bytes/s over {self.read_timeout:g} s (SEEDZOO_MIN_SPEED, "
                f"SEEDZOO_READ_TIMEOUT)")


_DEFAULTS = {"SEEDZOO_CONNECT_TIMEOUT": 10.0, "SEEDZOO_READ_TIMEOUT": 30.0, "SEEDZOO_MIN_SPEED": 1024.0}


def _setting(var: str, positive: bool) -> float:
    raw = os.environ.get(var, "").strip()
    if not raw:
        return _DEFAULTS[var]
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (value > 0 if positive else value >= 0) or value == float("inf"):
        raise NetworkSettingError(f"{var}={raw!r} is not a {'positive' if positive else 'non-negative'} number "
                                  f"(default {_DEFAULTS[var]:g})")
    return value


def network_limits() -> NetworkLimits:
    """The limits from the environment (read at each request, so that a changed variable applies at once)."""
    return NetworkLimits(_setting("SEEDZOO_CONNECT_TIMEOUT", True), _setting("SEEDZOO_READ_TIMEOUT", True),
                         _setting("SEEDZOO_MIN_SPEED", False))


class StallGuard:
    """Watches one transfer from a thread: when it makes less than `min_speed` bytes/s over a window of
    `read_timeout` seconds, it marks it stalled and shuts its sockets down, so that the read blocked on them
    returns at once. Use as a context manager; report received bytes with `progress(n)`."""

    def __init__(self, limits: NetworkLimits) -> None:
        self.limits = limits
        self.stalled = False
        self._received = 0
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="seedzoo-stall-guard", daemon=True)

    def __enter__(self) -> StallGuard:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.stalled:  # a connection opened after the guard fired must not hang either
                _shut(sock)

    def progress(self, nbytes: int) -> None:
        with self._lock:
            self._received += nbytes

    def _watch(self) -> None:
        window = self.limits.read_timeout
        needed = max(1.0, self.limits.min_speed * window)
        samples: deque[tuple[float, int]] = deque([(time.monotonic(), 0)])
        while not self._done.wait(min(window / 10, 0.5)):
            now = time.monotonic()
            with self._lock:
                received = self._received
            samples.append((now, received))
            # Keep the newest sample at least a window old as the start of the window that ends now.
            while len(samples) > 1 and samples[1][0] <= now - window:
                samples.popleft()
            start_time, start_bytes = samples[0]
            if now - start_time >= window and received - start_bytes < needed:
                with self._lock:
                    self.stalled = True
                    for sock in self._sockets:
                        _shut(sock)
                return


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


def _guarded_connection(base: type[http.client.HTTPConnection], guard: StallGuard) -> type[http.client.HTTPConnection]:
    """`base` whose socket opens within the connect timeout, then reads under the read timeout, watched by `guard`."""
    limits = guard.limits

    def create_connection(address: tuple[str, int], timeout: Any = None, source_address: Any = None) -> socket.socket:
        sock = socket.create_connection(address, limits.connect_timeout, source_address)
        sock.settimeout(limits.read_timeout)
        guard.watch(sock)
        return sock

    class Guarded(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # http.client opens every socket (HTTPS: before its TLS handshake) through this attribute.
            self._create_connection = create_connection

    return Guarded


def open_guarded(request: urllib.request.Request, guard: StallGuard) -> Any:
    """urllib's `urlopen` (redirects, proxies, HTTPS) with every connection under `guard` and its limits."""
    http_connection = _guarded_connection(http.client.HTTPConnection, guard)
    https_connection = _guarded_connection(http.client.HTTPSConnection, guard)

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> Any:
            return self.do_open(http_connection, req)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> Any:
            return self.do_open(https_connection, req, context=self._context)  # type: ignore[attr-defined]

    opener = urllib.request.build_opener(HTTPHandler(), HTTPSHandler())
    return opener.open(request, timeout=guard.limits.read_timeout)

