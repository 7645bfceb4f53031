"""Fixtures for the end-to-end tests: the real ``sinergia serve`` as a subprocess.

Each server runs in its own process group (so ``kill -9`` reaches every worker), writes its
output to a file (never a pipe that could fill up and block it), and is always killed when the
test ends. When a test fails, the output of every server it started is attached to the report.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Protocol

import httpx
import pytest

from sinergia.settings import ENV_PREFIX

STARTUP_DEADLINE = 30.0  # seconds for a server to answer GET /version
STOP_DEADLINE = 10.0  # seconds a server gets to stop gracefully before it is killed


def sinergia_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m sinergia.cli``."""
    script = Path(sys.executable).with_name("sinergia")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "sinergia.cli"]


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel picks it when binding to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_environment() -> dict[str, str]:
    """The caller's environment without any ``SINERGIA_*`` variable, so a server gets the
    defaults of the settings table plus exactly the flags a test passes."""
    return {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}


class ServerProcess:
    """One ``sinergia serve`` process group on a free port of 127.0.0.1."""

    def __init__(self, database_url: str, log_path: Path, *args: str) -> None:
        self.database_url = database_url
        self.log_path = log_path
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        command = [*sinergia_command(), "serve", "--host", "127.0.0.1",
                   "--port", str(self.port), "--database", database_url,  # the short flag
                   "--no-allow-remote-contexts", *args]
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=clean_environment(), start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, deadline: float = STARTUP_DEADLINE) -> None:
        """Poll GET /version until it answers 200; fail early if the server exits."""
        give_up = time.monotonic() + deadline
        while time.monotonic() < give_up:
            try:
                if httpx.get(f"{self.base_url}/version", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            try:
                code = self.process.wait(timeout=0.05)  # doubles as the pause between polls
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"sinergia serve exited with {code} before it was ready:\n"
                        f"{self.output()}")
        pytest.fail(f"sinergia serve did not answer within {deadline}s:\n{self.output()}")

    def wait_for_output(self, text: str, times: int = 1,
                        deadline: float = STARTUP_DEADLINE) -> str:
        """Poll the server's output until ``text`` occurs ``times`` times (e.g. one start-up
        line per worker); return the output."""
        give_up = time.monotonic() + deadline
        while (output := self.output()).count(text) < times:
            if time.monotonic() > give_up:
                pytest.fail(f"{text!r} not seen {times} times within {deadline}s:\n{output}")
            try:
                code = self.process.wait(timeout=0.05)  # the pause between polls
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"sinergia serve exited with {code}:\n{self.output()}")
        return output

    def kill(self) -> None:
        """``kill -9`` the whole process group: the supervisor and every worker at once."""
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), then make sure nothing of the group is left."""
        if self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGTERM)
                self.process.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                pass
        self.kill()


class StartServer(Protocol):
    def __call__(self, database_url: str, *args: str) -> ServerProcess: ...


SERVERS = pytest.StashKey[list[ServerProcess]]()


@pytest.fixture
def start_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StartServer]:
    """Start ``sinergia serve`` (extra flags as arguments) and wait until it answers."""
    servers: list[ServerProcess] = []
    request.node.stash[SERVERS] = servers

    def start(database_url: str, *args: str) -> ServerProcess:
        server = ServerProcess(database_url, tmp_path / f"server-{len(servers) + 1}.log", *args)
        servers.append(server)
        server.wait_ready()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.failed:
        for number, server in enumerate(item.stash.get(SERVERS, []), start=1):
            report.sections.append((f"sinergia server {number} (port {server.port}) output",
                                    server.output()))
    return report
