"""Real servers on 127.0.0.1 for the hub tests: olah (a Hugging Face Hub mirror), `python -m http.server`,
a proxy that damages what it forwards, and a server that hangs, drips or answers what a Hub would not.
Ports are chosen at run time; every server is stopped on exit."""
from __future__ import annotations

import http.server
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

_GIT_ENV = {"GIT_AUTHOR_NAME": "seedzoo-tests", "GIT_AUTHOR_EMAIL": "tests@seedzoo.invalid",
            "GIT_COMMITTER_NAME": "seedzoo-tests", "GIT_COMMITTER_EMAIL": "tests@seedzoo.invalid"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with code {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # it answers: up
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"server for {url} did not come up within {timeout:.0f}s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def git_mirror(mirrors_root: Path, repo_id: str, folder: Path) -> str:
    """Commit the files of `folder` into a git repo where olah looks for local mirrors; returns the commit.

    Files are stored as plain git blobs (no git-lfs here), which olah's mirror serves as they are.
    """
    repo = mirrors_root / "models" / repo_id
    repo.mkdir(parents=True, exist_ok=True)
    for f in folder.iterdir():
        shutil.copy2(f, repo / f.name)
    env = {**_GIT_ENV, "PATH": "/usr/bin:/bin"}

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True,
                              text=True).stdout.strip()

    if not (repo / ".git").exists():
        git("init", "-q", "-b", "main")
        git("config", "core.compression", "0")  # weights do not compress; spare the CPU
    git("add", "-A")
    git("commit", "-q", "-m", f"seedzoo test upload of {folder.name}")
    return git("rev-parse", "HEAD")


@contextmanager
def olah_server(mirrors_root: Path, workdir: Path) -> Iterator[str]:
    """olah serving `mirrors_root/models/ORG/REPO` git repos, offline (never contacting huggingface.co)."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "olah.toml"
    config.write_text(
        "[basic]\n"
        f'host = "127.0.0.1"\nport = {port}\n'
        f'repos-path = "{(workdir / "repos").as_posix()}"\n'
        f'mirrors-path = ["{mirrors_root.as_posix()}"]\n'
        "[accessibility]\noffline = true\n", encoding="utf-8")
    olah = Path(sys.executable).with_name("olah-cli")
    log = open(workdir / "olah.log", "wb")
    process = subprocess.Popen([str(olah), "-c", str(config)], cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url + "/", process)
        yield url
    finally:
        _stop(process)
        log.close()


@contextmanager
def http_file_server(directory: Path) -> Iterator[str]:
    """`python -m http.server` serving `directory`."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                "--directory", str(directory)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url + "/", process)
        yield url
    finally:
        _stop(process)


Damage = Literal["truncate", "flip"]


@contextmanager
def damaging_proxy(upstream: str, damage: Damage) -> Iterator[str]:
    """A proxy to `upstream` that truncates each body (announcing its full length) or flips one byte."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            try:
                with urllib.request.urlopen(upstream + self.path, timeout=10) as response:
                    body = response.read()
            except urllib.error.HTTPError as err:
                self.send_error(err.code)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if damage == "truncate":
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            else:
                i = len(body) // 2
                self.wfile.write(body[:i] + bytes([body[i] ^ 0xFF]) + body[i + 1:])

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class ScriptedServer:
    url: str
    requests: list[str] = field(default_factory=list)  # "METHOD PATH" of each request received


Behaviour = Literal["hang", "drip", "answer"]


@contextmanager
def scripted_server(behaviour: Behaviour, *, status: int = 200, content_type: str = "text/html",
                    body: bytes = b"<html><body>a login page</body></html>", interval: float = 0.5,
                    length: int = 1 << 20, headers: dict[str, str] | None = None) -> Iterator[ScriptedServer]:
    """A server misbehaving on purpose. `hang`: reads each request and never answers; `drip`: announces
    `length` bytes, then sends one every `interval` seconds (to a HEAD: the headers only); `answer`: `status`
    with `body` to everything. `headers` are added to every answer. Every loop ends by itself when the
    server stops (and `drip` after `length` bytes)."""
    stop = threading.Event()
    served: ScriptedServer

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            served.requests.append(f"{self.command} {self.path}")
            if behaviour == "hang":
                stop.wait(120)
                self.close_connection = True
                return
            if behaviour == "drip":
                self.send_response(200)
                self.send_header("Content-Length", str(length))
                # It closes the connection after each answer: say so, or a client may send its next request
                # down this one in the moment before the close reaches it (and read "disconnected").
                self.send_header("Connection", "close")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                for _ in range(length if self.command == "GET" else 0):
                    if stop.wait(interval):
                        break
                    try:
                        self.wfile.write(b"\0")
                        self.wfile.flush()
                    except OSError:  # the client gave up
                        break
                self.close_connection = True
                return
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = _serve  # noqa: N815 (http.server's naming)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served = ScriptedServer(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
