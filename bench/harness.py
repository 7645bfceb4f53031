"""Benchmark plumbing: start real servers as subprocesses, seed them over HTTP, drive them with
wrk (Debian package ``wrk``), read memory from /proc. Every figure a bench prints comes from
this run on this machine; ratios are against baselines measured in the same run."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, deadline_s: float = 30.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server at {url} did not come up")


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str

    def pids(self) -> list[int]:
        """The server process and its children (uvicorn workers)."""
        pids = [self.process.pid]
        with contextlib.suppress(FileNotFoundError):
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            pids += [int(p) for p in children.read_text().split()]
        return pids

    def rss_mb(self) -> float:
        total = 0
        for pid in self.pids():
            with contextlib.suppress(FileNotFoundError):
                status = Path(f"/proc/{pid}/status").read_text()
                match = re.search(r"VmRSS:\s+(\d+) kB", status)
                if match:
                    total += int(match.group(1))
        return total / 1024


@contextlib.contextmanager
def sinergia_server(db_path: Path, *, workers: int = 1, synchronous: str = "full",
                    extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    port = free_port()
    env = {**os.environ, "SINERGIA_DATABASE_URL": f"sqlite:///{db_path}",
           "SINERGIA_PORT": str(port), "SINERGIA_WORKERS": str(workers),
           "SINERGIA_SQLITE_SYNCHRONOUS": synchronous, "SINERGIA_LOG_LEVEL": "warning",
           "SINERGIA_MAX_LIMIT": "1000", **(extra_env or {})}
    process = subprocess.Popen([PYTHON, "-m", "sinergia.cli", "serve"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = Server(process, f"http://127.0.0.1:{port}")
    try:
        wait_until_up(server.base + "/version")
        yield server
    finally:
        stop(process)


@contextlib.contextmanager
def baseline_server(db_path: Path, *, workers: int = 1) -> Iterator[Server]:
    port = free_port()
    env = {**os.environ, "BASELINE_DB": str(db_path)}
    process = subprocess.Popen(
        [PYTHON, "-m", "uvicorn", "--factory", "bench.baseline_app:app_factory",
         "--port", str(port), "--workers", str(workers), "--log-level", "warning",
         "--no-access-log"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    server = Server(process, f"http://127.0.0.1:{port}")
    try:
        wait_until_up(server.base + "/health")
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    non_2xx: int

    def line(self) -> str:
        return (f"{self.requests_per_s:>9,.0f} req/s   p50 {self.p50_ms:6.2f} ms   "
                f"p99 {self.p99_ms:6.2f} ms   errors {self.errors}   non-2xx {self.non_2xx}")


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, script: str | None = None, *, seconds: int = 10, connections: int = 32,
        threads: int = 1) -> WrkResult:
    """Run wrk against ``url`` with an optional Lua script; parse its latency report."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script or "")
    try:
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
             "-s", lua.name, url], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(lua.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx_match = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return WrkResult(rate, _ms(*p50.groups()) if p50 else 0.0,  # type: ignore[arg-type]
                     _ms(*p99.groups()) if p99 else 0.0,  # type: ignore[arg-type]
                     errors, int(non_2xx_match.group(1)) if non_2xx_match else 0)
