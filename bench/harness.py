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
def sinergia_server(db_path: Path | None = None, *, database_url: str | None = None,
                    workers: int = 1, synchronous: str = "full",
                    extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """``sinergia serve`` on the SQLite file ``db_path``, or on ``database_url`` (PostgreSQL)."""
    if (db_path is None) == (database_url is None):
        raise ValueError("give exactly one of db_path and database_url")
    port = free_port()
    env = {**os.environ, "SINERGIA_DATABASE_URL": database_url or f"sqlite:///{db_path}",
           "SINERGIA_PORT": str(port), "SINERGIA_WORKERS": str(workers),
           "SINERGIA_SQLITE_SYNCHRONOUS": synchronous, "SINERGIA_LOG_LEVEL": "warning",
           "SINERGIA_MAX_LIMIT": "1000", **(extra_env or {})}
    # stderr goes to a file, not a pipe nobody reads: a server that logs a lot (a receiver
    # that is down makes it warn) would block on a full pipe and the bench would measure that.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([PYTHON, "-m", "sinergia.cli", "serve"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=log)
        server = Server(process, f"http://127.0.0.1:{port}")
        try:
            try:
                wait_until_up(server.base + "/version")
            except RuntimeError:
                log.seek(0)
                raise RuntimeError("sinergia serve did not come up:\n"
                                   + log.read()[-3000:].decode(errors="replace")) from None
            yield server
        finally:
            stop(process)


@contextlib.contextmanager
def baseline_server(db_path: Path | None, *, workers: int = 1,
                    app: str = "bench.baseline_app:app_factory",
                    extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """A raw baseline app (an ASGI app factory, ``module:function``) under uvicorn; it answers
    ``/health`` once up. ``BASELINE_DB`` tells it the SQLite file, when there is one."""
    port = free_port()
    env = {**os.environ, **({"BASELINE_DB": str(db_path)} if db_path else {}),
           **(extra_env or {})}
    process = subprocess.Popen(
        [PYTHON, "-m", "uvicorn", "--factory", app,
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


# -- shared by the issue-3 benches: figures, process CPU, profiles ----------------------------


def report(name: str, figure: str, target: str = "", ratio: str = "") -> None:
    print(f"  {name:<44} {figure:<58} target {target or '-':<22} {ratio}", flush=True)


def percentiles(values: list[float], points: tuple[int, ...] = (50, 95, 99)) -> dict[str, float]:
    """Nearest-rank percentiles (``p50`` …) plus ``max`` and ``n``; zeros when empty."""
    ordered = sorted(values)
    n = len(ordered)
    out = {f"p{p}": ordered[min(n - 1, max(0, -(-p * n // 100) - 1))] if n else 0.0
           for p in points}
    out["max"] = ordered[-1] if n else 0.0
    out["n"] = float(n)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("profiling needs py-spy: .venv/bin/pip install py-spy")
    return found


@contextlib.contextmanager
def profiled(pid: int, out: Path | None, rate: int = 100) -> Iterator[None]:
    """Sample the stacks of ``pid`` (and its children) with py-spy while the block runs and
    write them to ``out`` as collapsed stacks (one ``frame;frame;… count`` line per stack).
    Does nothing when ``out`` is None. py-spy pauses the process at each sample, so figures
    measured inside the block are a little slower than without it."""
    if out is None:
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen([py_spy(), "record", "--pid", str(pid), "--subprocesses",
                            "--nolineno", "--format", "raw", "--rate", str(rate),
                            "--output", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # let it attach before the load starts
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()


def _frame_name(frame: str) -> str:
    """``func (path/to/module.py)`` → ``func (module.py's package path)``, short enough to read."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})" if where else name


def top_functions(raw: Path, count: int = 12) -> tuple[list[tuple[str, float]],
                                                       list[tuple[str, float]]]:
    """From a py-spy raw profile: the functions with most samples on top of the stack (self)
    and Sinergia's functions present in most stacks (inclusive), as (name, share of
    samples)."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        n = int(samples)
        total += n
        frames = [_frame_name(f) for f in stack.split(";")]
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for name in set(frames):
            if "(sinergia/" in name:  # our own code: where the time goes, by use case
                inclusive[name] = inclusive.get(name, 0) + n
    if not total:
        return [], []

    def ranked(table: dict[str, int]) -> list[tuple[str, float]]:
        return [(k, v / total) for k, v in sorted(table.items(), key=lambda kv: -kv[1])[:count]]

    return ranked(own), ranked(inclusive)


def print_profile(raw: Path, count: int = 12) -> None:
    own, inclusive = top_functions(raw, count)
    print(f"    profile {raw}: top self time")
    for name, share in own:
        print(f"      {share:6.1%}  {name}")
    print("    top Sinergia functions, inclusive (share of samples with them on the stack)")
    for name, share in inclusive:
        print(f"      {share:6.1%}  {name}")
