"""Adapter ingest benchmarks (issue 5): MQTT devices, UrbanDataset and CSV imports into SQLite,
everything on this machine.

    .venv/bin/python -m bench.bench_ingest                  # everything, the issue's sizes
    .venv/bin/python -m bench.bench_ingest --quick          # tiny sizes: checks the set-up
    .venv/bin/python -m bench.bench_ingest --only mqtt --messages 100000 --devices 1000
    .venv/bin/python -m bench.bench_ingest --profile-dir bench/results/profiles

Measures (each prints its figure, target, and ratio to a baseline taken in this run):
  mqtt   Mosquitto's own QoS0 rate: bench.ingest_clients' paho publisher → Mosquitto
         (127.0.0.1:1883) → mosquitto_sub (C), time from the first publish to the last message
         received; then the same publisher (at --qos, 1 by default: devices want their
         readings kept) with Sinergia's ingester (adapters/mqtt, built as ``sinergia serve``
         builds it, in this process) as the subscriber, timed until every message is
         committed, then the entities and history rows are counted in the database.
         Ratio: Sinergia's rate / Mosquitto's. Also the ingester's own CPU per message with a
         broker that stores nothing, and the wall time spent inside the broker's upsert.
  ud     ``sinergia import urbandataset --database sqlite:///…`` (a subprocess, start-up
         included) on a generated UrbanDataset 2.0 CounterReading document of --lines lines
         (--pods meters x periods of 15 minutes, lines shaped as tests/…/counter-reading-2.0
         .json); then in this process, the adapter alone (parse, repair, convert; the broker
         stores nothing) and the broker alone (add_history of the converted entities).
         Baseline: orjson.loads of the same document.
  csv    ``sinergia import table`` on a --rows row CSV (the shape of tests/…/qualita_aria.csv,
         with its mapping), then the adapter alone and the broker alone as for ud.
         Baseline: csv.reader over the same file.

SQLite synchronous=full, as the server's default. With --profile-dir, each in-process measure
is repeated under cProfile and its top functions printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import cProfile
import csv
import io
import json
import pstats
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.harness import PYTHON, ROOT, report
from bench.ingest_clients import topics
from sinergia.adapters.broker_client import BatchReport, BrokerClient, ContextSource

UD_FIXTURE = ROOT / "tests/adapters/urbandataset/fixtures/counter-reading-2.0.json"
CSV_MAPPING = ROOT / "tests/adapters/tabular/fixtures/qualita_aria.yaml"
TARGET_MQTT = 10_000
TARGET_MQTT_RATIO = 0.60
TARGET_LINES = 50_000
TARGET_ROWS = 50_000


# -- a broker that stores nothing, and one that times the real one ------------------------------


class NullBroker:
    """Accepts everything at once: what is left of an import's time is the adapter's."""

    async def upsert(self, entities: Sequence[Mapping[str, Any]], *, tenant: str = "",
                     context: ContextSource = None, update: bool = False) -> BatchReport:
        return BatchReport(succeeded=[str(e["id"]) for e in entities])

    async def delete(self, ids: Sequence[str], *, tenant: str = "") -> BatchReport:
        return BatchReport(succeeded=list(ids))

    async def add_history(self, entities: Sequence[Mapping[str, Any]], *, tenant: str = "",
                          context: ContextSource = None) -> BatchReport:
        return BatchReport(succeeded=[str(e["id"]) for e in entities])

    async def temporal_query(self, entity_type: str, start: datetime, end: datetime, *,
                             tenant: str = "", context: ContextSource = None
                             ) -> list[dict[str, Any]]:
        return []


class TimedBroker:
    """The real broker, with the wall time spent inside its write calls added up."""

    def __init__(self, inner: BrokerClient) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.calls = 0

    async def _timed(self, call: Awaitable[BatchReport]) -> BatchReport:
        started = time.perf_counter()
        try:
            return await call
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1

    async def upsert(self, entities: Sequence[Mapping[str, Any]], *, tenant: str = "",
                     context: ContextSource = None, update: bool = False) -> BatchReport:
        return await self._timed(self.inner.upsert(entities, tenant=tenant, context=context,
                                                   update=update))

    async def delete(self, ids: Sequence[str], *, tenant: str = "") -> BatchReport:
        return await self._timed(self.inner.delete(ids, tenant=tenant))

    async def add_history(self, entities: Sequence[Mapping[str, Any]], *, tenant: str = "",
                          context: ContextSource = None) -> BatchReport:
        return await self._timed(self.inner.add_history(entities, tenant=tenant,
                                                        context=context))

    async def temporal_query(self, entity_type: str, start: datetime, end: datetime, *,
                             tenant: str = "", context: ContextSource = None
                             ) -> list[dict[str, Any]]:
        return await self.inner.temporal_query(entity_type, start, end, tenant=tenant,
                                               context=context)


@contextlib.asynccontextmanager
async def in_process_broker(db: Path, **settings: Any) -> Any:
    """The runtime ``sinergia serve`` builds on ``db`` (opened), and its InProcessBroker."""
    from sinergia.adapters.broker_client import InProcessBroker
    from sinergia.api.app import build_runtime
    from sinergia.settings import load_settings

    runtime = build_runtime(load_settings(database_url=f"sqlite:///{db}", **settings))
    await runtime.store.open()
    try:
        yield runtime, InProcessBroker(runtime.entities, runtime.contexts,
                                       temporal=runtime.temporal)
    finally:
        await runtime.store.close()


def counts(db: Path) -> tuple[int, int]:
    """(entities, history rows) in the SQLite file."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        entities = conn.execute("SELECT count(*) FROM entities").fetchone()[0]
        history = conn.execute("SELECT count(*) FROM history").fetchone()[0]
    return int(entities), int(history)


@contextlib.contextmanager
def profiling(out: Path | None, name: str) -> Iterator[None]:
    if out is None:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"ingest-{name}.prof"
        profile.dump_stats(path)
        print(f"    profile {path}: top cumulative")
        stream = io.StringIO()
        pstats.Stats(profile, stream=stream).sort_stats("tottime").print_stats(14)
        print("\n".join("      " + line for line in stream.getvalue().splitlines()[6:26]))


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>9,.0f}/s ({count:,} in {seconds:.2f} s)"


# -- MQTT ----------------------------------------------------------------------------------------


def publisher(prefix: str, args: argparse.Namespace, qos: int) -> list[str]:
    return [PYTHON, "-m", "bench.ingest_clients", "publish", "--host", args.mqtt_host,
            "--port", str(args.mqtt_port), "--prefix", prefix, "--devices", str(args.devices),
            "--messages", str(args.messages), "--qos", str(qos)]


def mosquitto_rate(args: argparse.Namespace, tmp: Path, qos: int) -> float:
    """Messages per second from the first publish to the last message mosquitto_sub got."""
    if shutil.which("mosquitto_sub") is None:
        raise SystemExit("the baseline needs mosquitto_sub: apt-get install mosquitto-clients")
    prefix = f"bench-ingest/{uuid.uuid4().hex[:8]}"
    out = tmp / "mosquitto_sub.out"
    with out.open("wb") as sink:
        sub = subprocess.Popen(["mosquitto_sub", "-h", args.mqtt_host, "-p", str(args.mqtt_port),
                                "-t", f"{prefix}/#", "-q", str(qos), "-C", str(args.messages),
                                "-W", "60"], stdout=sink)
        time.sleep(0.5)  # subscribed before the first message (mosquitto_sub has no signal)
        pub = subprocess.run(publisher(prefix, args, qos), cwd=ROOT, check=True,
                             capture_output=True, text=True)
        sub.wait(timeout=120)
        ended = time.time()
    received = out.read_bytes().count(b"\n")
    start = json.loads(pub.stdout)["start"]
    report(f"mqtt: Mosquitto alone, QoS{qos} (paho pub → mosquitto_sub)",
           rate(received, ended - start), "(baseline)" + (" ~12,800/s" if qos == 0 else ""))
    if received < args.messages:
        print(f"    ! mosquitto_sub got {received:,} of {args.messages:,} messages: the "
              "baseline is a lower bound")
    return received / (ended - start)


async def _ingest(args: argparse.Namespace, db: Path, *, store: bool) -> dict[str, float]:
    """Sinergia's ingester subscribed to Mosquitto while the publisher runs, until every
    message is written (``store``: to the database; else to a broker that stores nothing)."""
    prefix = f"bench-ingest/{uuid.uuid4().hex[:8]}"
    async with in_process_broker(
            db, sqlite_synchronous=args.synchronous,
            mqtt_url=f"mqtt://{args.mqtt_host}:{args.mqtt_port}", mqtt_topic_prefix=prefix,
            mqtt_client_id=f"bench-{prefix[-8:]}") as (runtime, _):
        service = runtime.mqtt
        assert service is not None
        ingester = service.ingester
        timed = TimedBroker(ingester.broker if store else NullBroker())
        ingester.broker = timed
        task = asyncio.create_task(service.run())
        try:
            deadline = time.monotonic() + 30
            while not ingester.status.connected:
                if time.monotonic() > deadline or task.done():
                    raise RuntimeError(f"the ingester did not connect: "
                                       f"{ingester.status.last_error}")
                await asyncio.sleep(0.01)
            cpu = time.process_time()
            pub = await asyncio.create_subprocess_exec(
                *publisher(prefix, args, args.qos), cwd=ROOT, stdout=asyncio.subprocess.PIPE)
            status = ingester.status
            deadline = time.monotonic() + 600
            while status.written + status.malformed + status.duplicates < args.messages:
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.005)
            ended = time.time()
            cpu = time.process_time() - cpu
            out, _ = await pub.communicate()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    start = json.loads(out)["start"]
    return {"seconds": ended - start, "written": status.written, "malformed": status.malformed,
            "duplicates": status.duplicates, "batches": status.batches,
            "broker_seconds": timed.seconds, "cpu": cpu}


def adapter_only_mqtt(args: argparse.Namespace, tmp: Path) -> float:
    """CPU seconds per message of the ingester's own work (read, convert, batch, ack) with a
    broker that stores nothing: the messages are made as aiomqtt makes them."""
    import aiomqtt

    from bench.ingest_clients import payloads
    from sinergia.adapters.mqtt.ingest import IngestConfig, MqttIngester
    from sinergia.broker.devices import DeviceService
    from sinergia.ngsild.context import ContextResolver
    from sinergia.storage.base import open_store

    prefix = "bench"
    names = topics(prefix, args.devices)
    bodies = payloads(args.devices, args.messages)
    messages = [aiomqtt.Message(names[i % args.devices], body, 1, False, i % 65535 + 1, None)
                for i, body in enumerate(bodies)]

    class Acks:
        def ack(self, mid: int, qos: int) -> None:
            pass

    class Client:
        _client = Acks()

    async def run() -> float:
        store = open_store(f"sqlite:///{tmp / 'devices.db'}")
        await store.open()
        try:
            ingester = MqttIngester(IngestConfig("localhost", 1883, prefix=prefix),
                                    NullBroker(), DeviceService(store, ContextResolver()))
            batch = ingester.config.batch_max
            started = time.process_time()
            with profiling(args.profile_dir, "mqtt-adapter"):
                for first in range(0, len(messages), batch):
                    await ingester._write(Client(), messages[first:first + batch])  # type: ignore[arg-type]
            assert ingester.status.written == len(messages), ingester.status
            return time.process_time() - started
        finally:
            await store.close()

    return asyncio.run(run()) / len(messages)


def bench_mqtt(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    baseline = mosquitto_rate(args, tmp, 0)
    baseline_same_qos = mosquitto_rate(args, tmp, args.qos) if args.qos else baseline
    alone = asyncio.run(_ingest(args, tmp / "unused.db", store=False))
    report(f"mqtt: Sinergia ingester, storing nothing (QoS{args.qos})",
           rate(int(alone["written"]), alone["seconds"]), "",
           f"{alone['written'] / alone['seconds'] / baseline:.0%} of Mosquitto QoS0; "
           f"{alone['cpu'] / max(alone['written'], 1) * 1e6:.1f} µs CPU/msg")
    db = tmp / "mqtt.db"
    result = asyncio.run(_ingest(args, db, store=True))
    entities, history = counts(db)
    figure = result["written"] / result["seconds"]
    ratio = figure / baseline
    met = figure >= TARGET_MQTT and ratio >= TARGET_MQTT_RATIO
    report(f"mqtt: Sinergia ingester (QoS{args.qos}, {args.devices} devices)",
           rate(int(result["written"]), result["seconds"]),
           f">= {TARGET_MQTT:,}/s, >= 60%",
           f"{ratio:.0%} of Mosquitto QoS0, {figure / baseline_same_qos:.0%} of QoS{args.qos} "
           f"{'MET' if met else 'MISSED'}")
    print(f"    stored: {entities:,} entities, {history:,} history rows; "
          f"{result['malformed']:.0f} malformed, {result['duplicates']:.0f} duplicates, "
          f"{result['batches']:.0f} batches")
    written = max(result["written"], 1)
    print(f"    in the broker's upsert: {result['broker_seconds'] / written * 1e6:.1f} µs/msg "
          f"wall ({result['broker_seconds'] / result['seconds']:.0%} of the run); "
          f"process CPU {result['cpu'] / written * 1e6:.1f} µs/msg (ingester + broker)")
    adapter = adapter_only_mqtt(args, tmp)
    print(f"    ingester's own code alone (no network, no storage): {adapter * 1e6:.1f} µs "
          f"CPU/msg (= {1 / adapter:,.0f} msg/s on one core)")
    return {"mosquitto_per_s": baseline, "mosquitto_same_qos_per_s": baseline_same_qos,
            "sinergia_per_s": figure, "ratio": ratio,
            "storing_nothing_per_s": alone["written"] / alone["seconds"],
            "storing_nothing_cpu_us_per_msg": alone["cpu"] / max(alone["written"], 1) * 1e6,
            "broker_us_per_msg": result["broker_seconds"] / written * 1e6,
            "cpu_us_per_msg": result["cpu"] / written * 1e6,
            "adapter_us_per_msg": adapter * 1e6, "entities": entities, "history": history}


# -- UrbanDataset --------------------------------------------------------------------------------


def urbandataset_document(lines: int, pods: int) -> bytes:
    """A CounterReading 2.0 document: ``pods`` meters, each with ``lines // pods`` readings of
    15 minutes; values vary so that every instance is new."""
    doc = orjson.loads(UD_FIXTURE.read_bytes())
    ud = doc["UrbanDataset"]
    shape = ud["values"]["line"][0]
    start = datetime(2026, 11, 1)
    out = []
    for n in range(lines):
        pod, step = n % pods, n // pods
        line = copy.deepcopy(shape)
        line["id"] = n + 1
        line["coordinates"]["latitude"] = round(45.40 + pod / pods * 0.1, 5)
        line["coordinates"]["longitude"] = round(9.10 + pod / pods * 0.2, 5)
        begin = start + timedelta(minutes=15 * step)
        line["period"] = {"start_ts": begin.strftime("%Y-%m-%dT%H:%M:%S"),
                          "end_ts": (begin + timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%S")}
        for index, prop in enumerate(line["property"]):
            if prop["name"] == "PODID":
                prop["val"] = f"IT001E{pod:08d}"
            elif prop["name"] == "ElectricPanelID":
                prop["val"] = f"QE-{pod:05d}"
            elif prop["name"] != "TownCode":
                prop["val"] = f"{(n * 7 + index * 13) % 5000 / 10:.2f}"
        out.append(line)
    ud["values"]["line"] = out
    return orjson.dumps(doc)


def run_cli(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([PYTHON, "-m", "sinergia.cli", *command], cwd=ROOT, check=False,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
    print("    " + "\n    ".join(line.strip() for line in tail if line.strip()))
    if done.returncode not in (0, 1):
        raise RuntimeError(f"sinergia {' '.join(command[:2])} failed: {done.stderr[-2000:]}")
    return elapsed


def cli_import(name: str, command: list[str], db: Path, count: int, target: int, unit: str,
               baseline: str) -> tuple[float, int]:
    """``sinergia import <command> --database db``: its rate (start-up included), printed
    with the rows it stored; returns the rate and the history rows."""
    elapsed = run_cli(["import", *command, "--database", f"sqlite:///{db}"])
    figure = count / elapsed
    report(f"{name}: sinergia import {command[0]} (CLI)", rate(count, elapsed),
           f">= {target:,} {unit}/s", f"{'MET' if figure >= target else 'MISSED'}; {baseline}")
    entities, history = counts(db)
    print(f"    stored: {entities:,} entities, {history:,} history rows")
    return figure, history


def bench_ud(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    from sinergia.adapters.urbandataset import import_document
    from sinergia.adapters.urbandataset.pipeline import write_import

    path = tmp / "counter-reading.json"
    raw = urbandataset_document(args.lines, args.pods)
    path.write_bytes(raw)
    started = time.perf_counter()
    parsed = orjson.loads(raw)
    baseline = args.lines / (time.perf_counter() - started)
    del parsed
    figure, history = cli_import("ud", ["urbandataset", str(path)], tmp / "ud.db",
                                 args.lines, TARGET_LINES, "lines",
                                 f"orjson.loads {baseline:,.0f}/s")

    async def split() -> tuple[float, float, int]:
        cpu = time.process_time()
        with profiling(args.profile_dir, "ud-adapter"):
            result = import_document(raw)
            await write_import(result, NullBroker())
        adapter = time.process_time() - cpu
        async with in_process_broker(tmp / "ud-split.db",
                                     sqlite_synchronous=args.synchronous) as (_, broker):
            timed = TimedBroker(broker)
            with profiling(args.profile_dir, "ud-broker"):
                await write_import(result, timed)
        return adapter, timed.seconds, result.report.counts.get("imported", 0)

    adapter, in_broker, imported = asyncio.run(split())
    print(f"    adapter alone: {rate(args.lines, adapter).strip()} CPU "
          f"({adapter / args.lines * 1e6:.1f} µs/line); broker's add_history: "
          f"{in_broker / args.lines * 1e6:.1f} µs/line wall; {imported:,} lines imported")
    return {"lines_per_s": figure, "adapter_us_per_line": adapter / args.lines * 1e6,
            "broker_us_per_line": in_broker / args.lines * 1e6, "history": history}


# -- CSV -----------------------------------------------------------------------------------------


def _comma(number: str) -> str:
    return number.replace(".", ",")


def csv_table(rows: int) -> str:
    """Rows shaped as qualita_aria.csv: stations x hours, Italian numbers and dates."""
    stations = max(1, rows // 1000)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(["stazione", "nome", "data", "no2", "pm10", "temperatura", "lat", "lon",
                     "attiva"])
    start = datetime(2024, 1, 1)
    for n in range(rows):
        station, hour = n % stations, n // stations
        moment = start + timedelta(hours=hour)
        writer.writerow([f"MI-{station:04d}", f"Stazione {station}",
                         moment.strftime("%d/%m/%Y %H:%M"), _comma(f"{(n % 900) / 10:.1f}"),
                         str(n % 80) if n % 17 else "-999", _comma(f"{(n % 300) / 10:.1f}"),
                         _comma(f"{45.4 + station / 10000:.4f}"),
                         _comma(f"{9.1 + station / 10000:.4f}"),
                         "si" if n % 3 else "no"])
    return out.getvalue()


def bench_csv(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    from sinergia.adapters.tabular.importer import import_table
    from sinergia.adapters.tabular.mapping import load_mapping

    path = tmp / "qualita_aria.csv"
    path.write_text(csv_table(args.rows), encoding="utf-8")
    started = time.perf_counter()
    with path.open(newline="", encoding="utf-8") as handle:
        read = sum(1 for _ in csv.reader(handle, delimiter=";")) - 1
    baseline = read / (time.perf_counter() - started)
    figure, _ = cli_import("csv", ["table", str(path), "--mapping", str(CSV_MAPPING)],
                           tmp / "csv.db", args.rows, TARGET_ROWS, "rows",
                           f"csv.reader {baseline:,.0f}/s")
    mapping = load_mapping(CSV_MAPPING)

    async def split() -> tuple[float, float, int]:
        cpu = time.process_time()
        with profiling(args.profile_dir, "csv-adapter"):
            alone = await import_table(path, mapping, NullBroker())
        adapter = time.process_time() - cpu
        async with in_process_broker(tmp / "csv-split.db",
                                     sqlite_synchronous=args.synchronous) as (_, broker):
            timed = TimedBroker(broker)
            with profiling(args.profile_dir, "csv-broker"):
                await import_table(path, mapping, timed)
        return adapter, timed.seconds, alone.written

    adapter, in_broker, written = asyncio.run(split())
    print(f"    adapter alone: {rate(args.rows, adapter).strip()} CPU "
          f"({adapter / args.rows * 1e6:.1f} µs/row, {written:,} rows accepted); broker's "
          f"upsert: {in_broker / args.rows * 1e6:.1f} µs/row wall")
    return {"rows_per_s": figure, "adapter_us_per_row": adapter / args.rows * 1e6,
            "broker_us_per_row": in_broker / args.rows * 1e6}


MEASURES: dict[str, Callable[[argparse.Namespace, Path], dict[str, float]]] = {
    "mqtt": bench_mqtt, "ud": bench_ud, "csv": bench_csv}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="mqtt,ud,csv")
    parser.add_argument("--messages", type=int, default=50_000,
                        help="MQTT messages (at most ~65,000 at QoS1: the most Mosquitto "
                             "keeps in flight for one subscriber)")
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--qos", type=int, default=1, choices=(0, 1),
                        help="QoS of the devices' messages to Sinergia")
    parser.add_argument("--mqtt-host", default="127.0.0.1")
    parser.add_argument("--mqtt-port", type=int, default=1883)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--synchronous", default="full", choices=("full", "normal"))
    parser.add_argument("--profile-dir", type=Path)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the set-up")
    parser.add_argument("--out", type=Path, default=Path("bench/results/ingest.json"))
    args = parser.parse_args()
    if args.quick:
        args.messages, args.devices, args.lines, args.pods, args.rows = 3000, 20, 2000, 20, 2000
    wanted = [m.strip() for m in args.only.split(",") if m.strip()]
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"bench_ingest: {', '.join(wanted)} (load average {load})")
    results: dict[str, Any] = {"when": datetime.now().isoformat(timespec="seconds"),
                               "args": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        for name in wanted:
            results[name] = MEASURES[name](args, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"results: {args.out}")
    sys.exit(0)


if __name__ == "__main__":
    main()
