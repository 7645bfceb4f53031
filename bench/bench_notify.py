"""Notification latency benchmark (issue 3): entity update -> HTTP receiver, with one receiver
down, under a paced load of updates. SQLite, server and load generator on this machine.

    .venv/bin/python -m bench.bench_notify                  # 1,000 updates/s for 30 s
    .venv/bin/python -m bench.bench_notify --quick          # a tiny run that checks the set-up
    .venv/bin/python -m bench.bench_notify --dead hang      # the down receiver hangs instead
    .venv/bin/python -m bench.bench_notify --profile bench/results/notify-profile.txt

Set-up: ``sinergia serve`` (SQLite, ``synchronous=full`` unless --synchronous, history on,
every notification setting at its default) and 10 subscriptions on one entity type: 9 to
healthy receivers and 1 to a receiver that is down. ``--dead refuse`` (default): nothing
listens on its port, every attempt fails at once and is retried with backoff. ``--dead hang``:
it accepts connections and never answers, so attempts end only at the notification timeout.

The 9 healthy receivers are 9 ports of one raw-asyncio HTTP/1.1 server (uvloop) in its own
process. The load generator writes into each update the wall-clock time at which it sends the
PATCH (attribute ``sentAt``); the subscriptions ask for keyValues, so every notification
carries it and the receiver records receive time - sentAt (same machine, same clock).

The load generator is an open-loop pacer in this process: update i is due at t0 + i/rate
whatever happened to the earlier ones, and goes out on one of --connections keep-alive
connections (HTTP/1.1 written by hand, so the generator costs little CPU). An update's own
latency counts from its due time, so queueing in the generator counts against the server.

Baseline, same run: the generator delivers the same notifications itself -- for each update,
one POST of the same keyValues notification straight to each healthy receiver, at most 4 in
flight per receiver like the server's default -- so its latency is the floor this machine,
these receivers and this clock give any notifier.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import orjson

from bench.harness import (
    PYTHON,
    ROOT,
    cpu_seconds,
    free_port,
    percentiles,
    print_profile,
    profiled,
    report,
    sinergia_server,
)

ENTITIES = "/ngsi-ld/v1/entities"
SUBSCRIPTIONS = "/ngsi-ld/v1/subscriptions"
UPSERT = "/ngsi-ld/v1/entityOperations/upsert"
TYPE = "BenchSensor"
HEALTHY = 9
PER_RECEIVER = 4  # the server's default notification_endpoint_concurrency

T = TypeVar("T")


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on uvloop when it is installed (it comes with uvicorn[standard])."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


# -- a minimal HTTP/1.1 client: one request at a time per keep-alive connection -------------


def content_length(head: bytes) -> int:
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    end = lower.find(b"\r\n", at + 2)
    return int(lower[at + 17:end if end >= 0 else None])


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def exchange(self, request: bytes) -> int:
        """Send one request, read the whole answer, return its status. Reconnects once when
        the server had closed the idle connection."""
        for attempt in (1, 2):
            if self.writer is None:
                await self._open()
            assert self.reader is not None and self.writer is not None
            try:
                self.writer.write(request)
                head = await self.reader.readuntil(b"\r\n\r\n")
                length = content_length(head)
                if length:
                    await self.reader.readexactly(length)
                return int(head[9:12])
            except (ConnectionError, asyncio.IncompleteReadError):
                self.writer.close()
                self.writer = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class Pool:
    """``size`` connections to one server; a request waits for a free one."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.connections = [Connection(host, port) for _ in range(size)]
        self.free: asyncio.Queue[Connection] = asyncio.Queue()
        for connection in self.connections:
            self.free.put_nowait(connection)

    async def send(self, make_request: Callable[[], bytes]) -> int:
        """``make_request`` runs once a connection is free, right before the write, so a
        timestamp it puts in the body is the time the request really left."""
        connection = await self.free.get()
        try:
            return await connection.exchange(make_request())
        finally:
            self.free.put_nowait(connection)

    def close(self) -> None:
        for connection in self.connections:
            connection.close()


def http_request(method: str, port: int, path: str, body: bytes) -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


# -- the open-loop pacer --------------------------------------------------------------------


@dataclass
class PacedRun:
    rate: float
    latencies_ms: list[float]
    ok: list[bool]
    statuses: Counter[int]
    achieved_rate: float
    max_lag_ms: float  # how late the pacer launched an update: > a few ms = generator overloaded


async def pace(rate: float, seconds: float, fire: Callable[[int], Awaitable[int]],
               max_wait: float) -> PacedRun:
    """Launch ``fire(i)`` for i = 0 … rate*seconds-1, each at t0 + i/rate, without waiting
    for earlier ones; the latency of each is measured from its due time. Calls still
    unanswered ``max_wait`` seconds after the last launch are abandoned (status -1)."""
    loop = asyncio.get_running_loop()
    total = max(1, round(rate * seconds))
    latencies = [-1.0] * total  # stays -1 for an abandoned call
    ok = [False] * total
    statuses: Counter[int] = Counter()
    pending: set[asyncio.Task[None]] = set()
    max_lag = 0.0
    last_done = 0.0

    async def one(i: int, due: float) -> None:
        nonlocal last_done
        try:
            status = await fire(i)
        except (OSError, asyncio.IncompleteReadError):
            status = 0  # connection failed: counted, not raised
        now = loop.time()
        latencies[i] = (now - due) * 1000.0
        ok[i] = 200 <= status < 300
        statuses[status] += 1
        last_done = max(last_done, now)

    t0 = loop.time() + 0.05
    i = 0
    while i < total:
        now = loop.time()
        while i < total and t0 + i / rate <= now:
            max_lag = max(max_lag, now - (t0 + i / rate))
            task = loop.create_task(one(i, t0 + i / rate))
            pending.add(task)
            task.add_done_callback(pending.discard)
            i += 1
        if i < total:
            await asyncio.sleep(max(0.0, t0 + i / rate - loop.time()))
    if pending:
        _, late = await asyncio.wait(list(pending), timeout=max_wait)
        for task in late:
            task.cancel()
        statuses[-1] += len(late)
        await asyncio.gather(*late, return_exceptions=True)
    achieved = sum(ok) / max(last_done - t0, 1e-9)
    return PacedRun(rate, latencies, ok, statuses, achieved, max_lag * 1000.0)


# -- the receivers (a separate process: python -m bench.bench_notify _receiver …) ------------


@dataclass
class Sink:
    seqs: dict[int, list[int]] = field(default_factory=dict)
    latencies: dict[int, list[float]] = field(default_factory=dict)
    total: int = 0

    def record(self, port: int, body: bytes, received: float) -> None:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        for entity in doc.get("data", ()) if isinstance(doc, dict) else ():
            sent, seq = entity.get("sentAt"), entity.get("seq")
            if isinstance(sent, dict):  # normalized rather than keyValues
                sent, seq = sent.get("value"), (seq or {}).get("value")
            if isinstance(sent, int | float) and isinstance(seq, int) and seq >= 0:
                self.seqs.setdefault(port, []).append(seq)
                self.latencies.setdefault(port, []).append((received - sent) * 1000.0)
                self.total += 1


_OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


class ReceiverProtocol(asyncio.Protocol):
    """Answers every POST 200 at once and records it; a GET returns the count so far."""

    def __init__(self, port: int, sink: Sink) -> None:
        self.port, self.sink = port, sink
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        received = time.time()
        self.buffer += data
        while self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end + 2])
            length = content_length(head)
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            if head.startswith(b"GET"):
                answer = orjson.dumps({"received": self.sink.total})
                self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                     b"content-length: %d\r\n\r\n%s" % (len(answer), answer))
                continue
            self.transport.write(_OK)
            self.sink.record(self.port, body, received)


class HangingProtocol(asyncio.Protocol):
    """A receiver that is down the hard way: it accepts, reads and never answers."""

    def data_received(self, data: bytes) -> None:
        pass


async def serve_receivers(ports: list[int], hang_port: int | None, out: Path) -> None:
    loop = asyncio.get_running_loop()
    sink = Sink()
    servers = []
    for port in ports:
        servers.append(await loop.create_server(
            functools.partial(ReceiverProtocol, port, sink), "127.0.0.1", port, backlog=1024))
    if hang_port is not None:
        servers.append(await loop.create_server(HangingProtocol, "127.0.0.1", hang_port,
                                                backlog=1024))
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    print("ready", flush=True)
    await stopping.wait()
    for server in servers:
        server.close()
    out.write_bytes(orjson.dumps({str(p): {"seq": sink.seqs.get(p, []),
                                           "latency_ms": sink.latencies.get(p, [])}
                                  for p in ports}))


def receiver_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench_notify _receiver")
    parser.add_argument("--ports", required=True)
    parser.add_argument("--hang", type=int)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    run_async(serve_receivers([int(p) for p in args.ports.split(",")], args.hang, args.out))


@dataclass
class Delivered:
    """What the healthy receivers got: per port, the sequence numbers and latencies."""

    seqs: dict[int, list[int]]
    latencies: dict[int, list[float]]


class ReceiverProcess:
    def __init__(self, ports: list[int], hang_port: int | None) -> None:
        self.ports = ports
        self._out = Path(tempfile.mkstemp(suffix=".json")[1])
        command = [PYTHON, "-m", "bench.bench_notify", "_receiver",
                   "--ports", ",".join(map(str, ports)), "--out", str(self._out)]
        if hang_port is not None:
            command += ["--hang", str(hang_port)]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE)
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != b"ready":
            raise RuntimeError("the notification receivers did not start")

    def received(self) -> int:
        answer = httpx.get(f"http://127.0.0.1:{self.ports[0]}/count", timeout=5.0)
        return int(answer.json()["received"])

    def wait_for(self, expected: int, patience_s: float, max_s: float) -> float:
        """Wait until ``expected`` notifications arrived, none arrived for ``patience_s`` or
        ``max_s`` went by; return the seconds waited."""
        started = last_change = time.monotonic()
        seen = -1
        while True:
            count = self.received()
            now = time.monotonic()
            if count >= expected or now - started > max_s:
                return now - started
            if count != seen:
                seen, last_change = count, now
            elif now - last_change > patience_s:
                return now - started
            time.sleep(0.2)

    def stop(self) -> Delivered:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        raw = orjson.loads(self._out.read_bytes())
        self._out.unlink()
        return Delivered({int(p): v["seq"] for p, v in raw.items()},
                         {int(p): v["latency_ms"] for p, v in raw.items()})


def analyse(delivered: Delivered, ok: list[bool], warmup: int) -> dict[str, float]:
    """First arrival of each (receiver, update): latency stats past the warm-up, unique
    deliveries against every successful update times the healthy receivers, duplicates."""
    latencies: list[float] = []
    unique = duplicates = 0
    for port, seqs in delivered.seqs.items():
        seen: set[int] = set()
        for seq, latency in zip(seqs, delivered.latencies[port], strict=True):
            if seq in seen:
                duplicates += 1
                continue
            seen.add(seq)
            unique += 1
            if seq >= warmup:
                latencies.append(latency)
    stats = percentiles(latencies)
    expected = sum(ok) * len(delivered.seqs)
    return {**stats, "delivered": unique, "expected": expected, "duplicates": duplicates}


# -- the runs --------------------------------------------------------------------------------


def update_body(seq: int, sent: float) -> bytes:
    return (b'{"sentAt":{"type":"Property","value":%r},"seq":{"type":"Property","value":%d}}'
            % (sent, seq))


async def drive_updates(port: int, args: argparse.Namespace) -> PacedRun:
    pool = Pool("127.0.0.1", port, args.connections)
    paths = [f"{ENTITIES}/urn:ngsi-ld:{TYPE}:{n}/attrs" for n in range(args.entities)]

    async def fire(i: int) -> int:
        path = paths[i % len(paths)]
        return await pool.send(lambda: http_request("PATCH", port, path,
                                                    update_body(i, time.time())))

    try:
        return await pace(args.rate, args.seconds, fire, args.max_wait)
    finally:
        pool.close()


async def drive_direct(ports: list[int], args: argparse.Namespace) -> PacedRun:
    pools = [Pool("127.0.0.1", p, PER_RECEIVER) for p in ports]

    async def fire(i: int) -> int:
        entity = {"id": f"urn:ngsi-ld:{TYPE}:{i % args.entities}", "type": TYPE,
                  "sentAt": time.time(), "seq": i}
        body = orjson.dumps({"id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}",
                             "type": "Notification", "subscriptionId": "baseline",
                             "notifiedAt": "2026-01-01T00:00:00.000Z", "data": [entity]})
        statuses = await asyncio.gather(*(
            pool.send(functools.partial(http_request, "POST", port, "/notify", body))
            for pool, port in zip(pools, ports, strict=True)))
        return max(statuses)

    try:
        return await pace(args.rate, args.seconds, fire, args.max_wait)
    finally:
        for pool in pools:
            pool.close()


def run_baseline(args: argparse.Namespace) -> dict[str, float]:
    ports = [free_port() for _ in range(HEALTHY)]
    receivers = ReceiverProcess(ports, None)
    try:
        run = run_async(drive_direct(ports, args))
        receivers.wait_for(sum(run.ok) * HEALTHY, args.drain, args.max_wait)
    finally:
        delivered = receivers.stop()
    stats = analyse(delivered, run.ok, int(args.warmup * args.rate))
    report("baseline: direct fan-out, same notifications",
           latency_line(stats), "", f"generator lag max {run.max_lag_ms:.0f} ms")
    return {f"baseline_{k}": v for k, v in stats.items()}


def latency_line(stats: dict[str, float]) -> str:
    return (f"p50 {stats['p50']:6.1f}  p95 {stats['p95']:6.1f}  p99 {stats['p99']:7.1f}  "
            f"max {stats['max']:7.1f} ms (n={stats['n']:,.0f})")


def seed(base: str, args: argparse.Namespace, healthy: list[int], dead: int) -> None:
    with httpx.Client(base_url=base, timeout=60.0) as http:
        entities = [{"id": f"urn:ngsi-ld:{TYPE}:{n}", "type": TYPE,
                     "sentAt": {"type": "Property", "value": 0.0},
                     "seq": {"type": "Property", "value": -1}} for n in range(args.entities)]
        answer = http.post(UPSERT, content=orjson.dumps(entities),
                           headers={"Content-Type": "application/json"})
        answer.raise_for_status()
        for k, port in enumerate([*healthy, dead]):
            answer = http.post(SUBSCRIPTIONS, json={
                "id": f"urn:ngsi-ld:Subscription:bench-{k}", "type": "Subscription",
                "entities": [{"type": TYPE}],
                "notification": {"endpoint": {"uri": f"http://127.0.0.1:{port}/notify"},
                                 "format": "keyValues"}})
            if answer.status_code != 201:
                raise RuntimeError(f"subscription refused: {answer.status_code} {answer.text}")


def run_sinergia(args: argparse.Namespace, db: Path) -> dict[str, float]:
    healthy = [free_port() for _ in range(HEALTHY)]
    dead = free_port()
    receivers = ReceiverProcess(healthy, dead if args.dead == "hang" else None)
    try:
        with sinergia_server(db, synchronous=args.synchronous) as server:
            seed(server.base, args, healthy, dead)
            pid = server.process.pid
            cpu_server, cpu_receivers = cpu_seconds(pid), cpu_seconds(receivers.process.pid)
            started = time.monotonic()
            with profiled(pid, args.profile):
                run = run_async(drive_updates(int(server.base.rsplit(":", 1)[1]), args))
            paced_s = time.monotonic() - started
            cpu_server = (cpu_seconds(pid) - cpu_server) / paced_s
            cpu_receivers = (cpu_seconds(receivers.process.pid) - cpu_receivers) / paced_s
            drained_s = receivers.wait_for(sum(run.ok) * HEALTHY, args.drain, args.max_wait)
            dead_status = httpx.get(f"{server.base}{SUBSCRIPTIONS}/"
                                    f"urn:ngsi-ld:Subscription:bench-{HEALTHY}").json()
            with contextlib.closing(sqlite3.connect(db)) as conn:
                (outbox,) = conn.execute("SELECT count(*) FROM outbox").fetchone()
    finally:
        delivered = receivers.stop()
    stats = analyse(delivered, run.ok, int(args.warmup * args.rate))
    updates = percentiles([ms for ms in run.latencies_ms if ms >= 0])
    report(f"notification latency, {HEALTHY} healthy + 1 down ({args.dead})",
           latency_line(stats), "p99 <= 50 ms")
    report("  delivered to healthy receivers", f"{stats['delivered']:,.0f} of "
           f"{stats['expected']:,.0f} ({stats['delivered'] / max(stats['expected'], 1):.1%}), "
           f"{stats['duplicates']:,.0f} duplicates", "all",
           f"{drained_s:.1f} s after the last update")
    non_2xx = sum(n for status, n in run.statuses.items() if not 200 <= status < 300)
    report("  updates (PATCH /attrs), paced", f"{run.achieved_rate:,.0f}/s of {args.rate:,.0f}"
           f"  p50 {updates['p50']:.1f}  p99 {updates['p99']:.1f}  max {updates['max']:.0f} ms",
           "", f"non-2xx {non_2xx} (abandoned {run.statuses[-1]}), "
           f"generator lag max {run.max_lag_ms:.0f} ms")
    notification = dead_status.get("notification", {})
    report("  down receiver's subscription", f"timesSent {notification.get('timesSent', 0)}, "
           f"timesFailed {notification.get('timesFailed', 0)}, outbox rows left {outbox:,}")
    report("  CPU while paced (1.0 = one core)", f"server {cpu_server:.2f}, "
           f"receivers {cpu_receivers:.2f}")
    return {**{f"notify_{k}": v for k, v in stats.items()},
            "updates_rate": run.achieved_rate, "updates_p50_ms": updates["p50"],
            "updates_p99_ms": updates["p99"], "updates_non_2xx": non_2xx,
            "outbox_left": outbox, "server_cpu": cpu_server, "receivers_cpu": cpu_receivers,
            "dead_times_failed": float(notification.get("timesFailed", 0))}


def main() -> None:
    if sys.argv[1:2] == ["_receiver"]:
        receiver_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=1000.0, help="updates per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the paced run")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds at the start left out of the latency figures")
    parser.add_argument("--entities", type=int, default=100,
                        help="entities the updates go round")
    parser.add_argument("--connections", type=int, default=64,
                        help="keep-alive connections of the update generator")
    parser.add_argument("--dead", choices=("refuse", "hang"), default="refuse",
                        help="how the down receiver is down")
    parser.add_argument("--synchronous", default="full", choices=("full", "normal"))
    parser.add_argument("--drain", type=float, default=10.0,
                        help="after the run, wait this long without progress for stragglers")
    parser.add_argument("--max-wait", type=float, default=120.0,
                        help="after the run, give up on updates and notifications still "
                             "outstanding after this many seconds (counted as missing)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--profile", type=Path,
                        help="record the server with py-spy into this file (figures slower)")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny run (100/s for 3 s) that checks the set-up")
    parser.add_argument("--out", type=Path, default=Path("bench/results/notify.json"))
    if "--quick" in sys.argv:  # small defaults; flags given explicitly still win
        parser.set_defaults(rate=100.0, seconds=3.0, warmup=0.5, entities=10, connections=8,
                            drain=3.0)
    args = parser.parse_args()
    print(f"Notifications: {args.rate:,.0f} updates/s for {args.seconds:g} s, SQLite "
          f"synchronous={args.synchronous}, history on, down receiver: {args.dead}")
    results: dict[str, Any] = {"rate": args.rate, "seconds": args.seconds, "dead": args.dead,
                               "synchronous": args.synchronous}
    if not args.no_baseline:
        results |= run_baseline(args)
    with tempfile.TemporaryDirectory() as tmp:
        results |= run_sinergia(args, Path(tmp) / "notify.db")
    if "baseline_p99" in results and results["baseline_p99"] > 0:
        ratio = results["notify_p99"] / results["baseline_p99"]
        results["notify_p99_vs_baseline"] = ratio
        report("  p99 against the direct fan-out", f"{ratio:.1f}x the baseline p99")
    if args.profile:
        print_profile(args.profile)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"figures written to {args.out}")


if __name__ == "__main__":
    main()
