"""huggingface_hub's requests under seedzoo's network limits.

huggingface_hub retries a request that timed out or got a 5xx up to six times, with a 60 s timeout from the
second try: a hanging endpoint took minutes before the next source was tried. Inside `hub_requests()`, its
requests run under `network.network_limits()`, a body slower than the low-speed limit is ended, and a request
that failed once is not sent again; outside (a user's own huggingface_hub calls) its transport passes every
request through unchanged.
"""
from __future__ import annotations

import contextvars
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2

from ..errors import SeedzooError
from .network import NetworkLimits, network_limits

__all__ = ["HubCall", "HubUnanswered", "hub_requests"]


class HubUnanswered(SeedzooError, OSError):
    """The Hub endpoint failed to answer (raised inside huggingface_hub, which then neither retries the
    request nor takes the failure for 'offline')."""


@dataclass
class HubCall:
    """What one seedzoo call into huggingface_hub met: each request's last answer or failure."""

    limits: NetworkLimits
    answers: dict[str, str] = field(default_factory=dict)  # "METHOD URL" -> "HTTP 500 (text/html)" or the failure
    failed: set[str] = field(default_factory=set)

    def last_answer(self) -> str:
        return next(reversed(self.answers.values()), "")


_HUB_CALL: contextvars.ContextVar[HubCall | None] = contextvars.ContextVar("seedzoo_hub_call", default=None)
_RETRIED_STATUS = {408, 429, 500, 502, 503, 504}  # the statuses huggingface_hub retries
_installed = False


@contextmanager
def hub_requests() -> Iterator[HubCall]:
    """Run huggingface_hub's requests in this block under seedzoo's limits, recording what they met."""
    _install()
    call = HubCall(network_limits())
    token = _HUB_CALL.set(call)
    try:
        yield call
    finally:
        _HUB_CALL.reset(token)


def _install() -> None:
    """Wrap the transports of the clients huggingface_hub builds, keeping any client factory set before."""
    global _installed
    if _installed:
        return
    import huggingface_hub
    from huggingface_hub.utils import _http

    previous = _http._GLOBAL_CLIENT_FACTORY  # no public getter; set_client_factory is the public setter

    def factory() -> httpx2.Client:
        client = previous()
        client._transport = _Transport(client._transport)
        client._mounts = {pattern: None if t is None else _Transport(t) for pattern, t in client._mounts.items()}
        return client

    huggingface_hub.set_client_factory(factory)
    _installed = True


def _public(url: Any) -> str:
    return str(url).split("?", 1)[0]  # never print a signed URL's token


class _Transport(httpx2.BaseTransport):
    def __init__(self, inner: httpx2.BaseTransport) -> None:
        self.inner = inner

    def close(self) -> None:
        self.inner.close()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        call = _HUB_CALL.get()
        if call is None:
            return self.inner.handle_request(request)
        key = f"{request.method} {request.url}"
        if key in call.failed:  # huggingface_hub retrying: the answer would take minutes and not change
            raise HubUnanswered(f"{request.method} {_public(request.url)}: {call.answers[key]}")
        limits = call.limits
        ours = {"connect": limits.connect_timeout, "read": limits.read_timeout, "write": limits.read_timeout,
                "pool": limits.connect_timeout}
        asked = request.extensions.get("timeout") or {}
        # The shorter of the two: huggingface_hub asks 60 s on a retry, and a few seconds for its own side calls.
        request.extensions["timeout"] = {k: v if asked.get(k) is None else min(v, asked[k]) for k, v in ours.items()}
        try:
            response = self.inner.handle_request(request)
        except httpx2.TimeoutException as err:
            call.answers[key] = (f"no answer within {limits.connect_timeout:g} s to connect or "
                                 f"{limits.read_timeout:g} s to read ({type(err).__name__}; "
                                 "SEEDZOO_CONNECT_TIMEOUT, SEEDZOO_READ_TIMEOUT)")
            call.failed.add(key)
            raise
        except httpx2.TransportError as err:
            call.answers[key] = f"{type(err).__name__}: {err}"
            call.failed.add(key)
            raise
        content_type = response.headers.get("content-type", "").split(";", 1)[0].strip()
        call.answers[key] = f"HTTP {response.status_code}" + (f" ({content_type})" if content_type else "")
        if response.status_code in _RETRIED_STATUS:
            call.failed.add(key)
        response.stream = _LowSpeedStream(response.stream, limits, f"{request.method} {_public(request.url)}")
        return response


class _LowSpeedStream(httpx2.SyncByteStream):
    """A response body that raises `HubUnanswered` once it runs slower than the low-speed limit (the read
    timeout ends one that stops)."""

    def __init__(self, inner: Any, limits: NetworkLimits, what: str) -> None:
        self.inner, self.limits, self.what = inner, limits, what

    def __iter__(self) -> Iterator[bytes]:
        window = self.limits.read_timeout
        needed = max(1.0, self.limits.min_speed * window)
        samples: deque[tuple[float, int]] = deque([(time.monotonic(), 0)])
        received = 0
        for chunk in self.inner:
            now = time.monotonic()
            # A chunk's bytes count once it has arrived: judge the window that ends as it arrives.
            while len(samples) > 1 and samples[1][0] <= now - window:
                samples.popleft()
            start_time, start_bytes = samples[0]
            if now - start_time >= window and received - start_bytes < needed:
                raise HubUnanswered(f"{self.what} stalled: {self.limits.describe()}")
            received += len(chunk)
            samples.append((now, received))
            yield chunk

    def close(self) -> None:
        self.inner.close()
