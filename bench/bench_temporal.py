"""Temporal benchmarks (issue 3), server and load generator on this machine.

    .venv/bin/python -m bench.bench_temporal                # everything, the issue's sizes
    .venv/bin/python -m bench.bench_temporal --quick        # tiny sizes: checks the set-up
    .venv/bin/python -m bench.bench_temporal --only lastn --lastn-instances 200000
    .venv/bin/python -m bench.bench_temporal --profile-dir bench/results/profiles
    .venv/bin/python -m bench.bench_temporal --only aggregate,lastn \
        --database postgresql://postgres@127.0.0.1:5432/sinergia_bench

Measures (each prints its figure, target, and ratio to a baseline taken in this run):
  history    PATCH /attrs throughput (wrk, closed loop, as in bench_broker) with history on
             against the same load on a server with SINERGIA_HISTORY=false, started on a copy
             of the same seeded database; arms alternate over --rounds to cancel drift
  aggregate  GET /temporal/entities/{id}?format=aggregatedValues&aggrMethods=avg&
             aggrPeriodDuration=PT1H over one attribute of --agg-instances instances (wrk, one
             connection: p50/p99), vs the same hourly averages computed by a raw
             GROUP BY over the history table of the server's database
  lastn      GET /temporal/entities/{id}?lastN=100 on one attribute of --lastn-instances
             instances, vs a raw ORDER BY t_ms DESC LIMIT 100 on the same database

The two reads run on SQLite, or with --database postgresql://… on PostgreSQL: in a schema of
their own in that database (created, and dropped at the end), followed by VACUUM (ANALYZE) of
the history, as autovacuum does after a bulk load. The history measure is SQLite's.

Histories are seeded through the temporal API (POST /temporal/entities, --per-request
instances per call, one reading every --interval-s seconds). SQLite synchronous=full for the
history measure (the server's default, as in bench_broker's writes), normal while seeding.
With --profile-dir, each measure gets an extra pass under py-spy after its clean figure, and
the functions that dominate it are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import psycopg
from psycopg import sql

from bench.bench_broker import batches, post_batches
from bench.harness import (
    Server,
    percentiles,
    print_profile,
    profiled,
    report,
    sinergia_server,
    wrk,
)

ENTITIES = "/ngsi-ld/v1/entities"
TEMPORAL = "/ngsi-ld/v1/temporal/entities"
AGG_ID = "urn:ngsi-ld:Meter:aggregated"
LASTN_ID = "urn:ngsi-ld:Meter:long"
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR_MS = 3_600_000


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{ms % 1000:03d}Z"


# -- seeding -----------------------------------------------------------------------------------


def history_bodies(entity_id: str, count: int, per_request: int,
                   interval_ms: int) -> Iterator[bytes]:
    """POST /temporal/entities bodies: one attribute ``power``, one reading every
    ``interval_ms`` from START_MS, ``per_request`` readings per body, made lazily."""
    rng = random.Random(entity_id)
    for first in range(0, count, per_request):
        readings = [{"type": "Property", "value": round(rng.uniform(20.0, 150.0), 2),
                     "observedAt": iso(START_MS + i * interval_ms)}
                    for i in range(first, min(first + per_request, count))]
        yield orjson.dumps({"id": entity_id, "type": "Meter", "power": readings})


async def post_history(base: str, bodies: Iterator[bytes], concurrency: int = 2) -> None:
    """The first body alone (it creates the entity), then the rest from ``concurrency``
    clients so that building a body overlaps with the server storing the previous one."""
    async with httpx.AsyncClient(base_url=base, timeout=600.0) as http:

        async def send(body: bytes) -> None:
            answer = await http.post(TEMPORAL, content=body,
                                     headers={"Content-Type": "application/json"})
            if answer.status_code not in (201, 204):
                raise RuntimeError(f"temporal POST failed: {answer.status_code} "
                                   f"{answer.text[:300]}")

        first = next(bodies, None)
        if first is None:
            return
        await send(first)

        async def client() -> None:
            for body in bodies:  # a shared iterator: each body is taken by one client
                await send(body)

        await asyncio.gather(*(client() for _ in range(concurrency)))


def seed_history(server: Server, entity_id: str, count: int,
                 args: argparse.Namespace) -> None:
    started = time.perf_counter()
    asyncio.run(post_history(server.base, history_bodies(
        entity_id, count, args.per_request, int(args.interval_s * 1000))))
    elapsed = time.perf_counter() - started
    report(f"  seeded {count:,} instances via the temporal API",
           f"{count / elapsed:>9,.0f} instances/s ({elapsed:.1f} s)")


# -- raw baselines -------------------------------------------------------------------------------


def timed(run: Callable[[], Any], seconds: float, at_least: int = 20) -> dict[str, float]:
    """Latency percentiles (ms) of ``run`` called again and again for ``seconds``."""
    run()  # warm: the server's figures are warm too
    latencies: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(latencies) < at_least:
        started = time.perf_counter()
        run()
        latencies.append((time.perf_counter() - started) * 1000.0)
    return percentiles(latencies)


SERIES_ID = ("SELECT s.sid FROM history_series s JOIN history_entities e "
             "ON e.heid = s.heid WHERE e.id = ?")
# "?" placeholders, and {tenant} for the tenant column PostgreSQL's keys begin with.
HOURLY_AVG = ("SELECT (t_ms - ?) / 3600000 AS bucket, avg(num) FROM history "
              "WHERE {tenant}sid = ? AND t_ms >= ? AND NOT deleted GROUP BY bucket ORDER BY bucket")
LAST_100 = ("SELECT t_ms, instance FROM history WHERE {tenant}sid = ? "
            "ORDER BY t_ms DESC LIMIT 100")


class Raw:
    """The bench's own read-only connection to the server's database: ``run`` takes the SQL
    above (SQLite dialect) and returns its rows."""

    def __init__(self, sqlite_file: Path | None = None, pg_url: str | None = None) -> None:
        self.pg = pg_url is not None
        if pg_url is not None:
            self.conn: Any = psycopg.connect(pg_url, autocommit=True)
        else:
            self.conn = sqlite3.connect(f"file:{sqlite_file}?mode=ro", uri=True)
            self.conn.execute("PRAGMA cache_size = -65536")  # as the server's connections
            self.conn.execute("PRAGMA mmap_size = 268435456")

    def run(self, statement: str, params: tuple[Any, ...]) -> list[Any]:
        if self.pg:
            statement = statement.replace("?", "%s").format(tenant="tenant = '' AND ")
        else:
            statement = statement.format(tenant="")
        cursor = self.conn.execute(statement, params)
        return list(cursor.fetchall()) if cursor.description else []

    def series_id(self, entity_id: str) -> int:
        rows = self.run(SERIES_ID, (entity_id,))
        if not rows:
            raise RuntimeError(f"no history of {entity_id} in the database")
        return int(rows[0][0])

    def close(self) -> None:
        self.conn.close()


@contextlib.contextmanager
def pg_schema(url: str) -> Iterator[str]:
    """``url`` with a fresh schema of this run first on its search_path (PostGIS stays
    reachable in public); the schema is dropped at the end."""
    schema = f"bench_temporal_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        options = quote(f"-csearch_path={schema},public")
        yield url + ("&" if "?" in url else "?") + f"options={options}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


# -- measures ------------------------------------------------------------------------------------


def patch_script(entities: int) -> str:
    return ("request = function()\n"
            "  local path = '" + ENTITIES + "/urn:ngsi-ld:Streetlight:' .. "
            f"math.random(0, {entities - 1}) .. '/attrs'\n"
            "  return wrk.format('PATCH', path, {['Content-Type']='application/json'}, "
            "'{\"dimmingLevel\":{\"type\":\"Property\",\"value\":' .. math.random(0, 100) .. '}}')"
            "\nend\n")


def copy_db(source: Path, target: Path) -> None:
    with contextlib.closing(sqlite3.connect(source)) as src, \
            contextlib.closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def bench_history(tmp: Path, args: argparse.Namespace) -> dict[str, float]:
    seed_db = tmp / "seed.db"
    with sinergia_server(seed_db, synchronous="normal") as server:
        asyncio.run(post_batches(server.base, batches(args.entities, 1000)))
    script = patch_script(args.entities)
    figures: dict[str, list[float]] = {"on": [], "off": []}
    for n in range(args.rounds):
        for arm in ("off", "on") if n % 2 == 0 else ("on", "off"):
            db = tmp / f"history-{arm}-{n}.db"
            copy_db(seed_db, db)
            env = {"SINERGIA_HISTORY": "true" if arm == "on" else "false"}
            with sinergia_server(db, synchronous=args.synchronous, extra_env=env) as server:
                result = wrk(server.base + "/", script, seconds=args.seconds)
            report(f"PATCH /attrs, history {arm}, round {n + 1}", result.line(), "")
            figures[arm].append(result.requests_per_s)
            db.unlink()
    on = sum(figures["on"]) / len(figures["on"])
    off = sum(figures["off"]) / len(figures["off"])
    report("update throughput, history on vs off", f"{on:>9,.0f} req/s vs {off:,.0f} req/s",
           ">= 70%", f"{on / off:.0%} of history off")
    if args.profile_dir:
        db = tmp / "history-profile.db"
        copy_db(seed_db, db)
        with sinergia_server(db, synchronous=args.synchronous) as server, \
                profiled(server.process.pid, args.profile_dir / "history-on.txt"):
            wrk(server.base + "/", script, seconds=args.profile_seconds)
        print_profile(args.profile_dir / "history-on.txt")
    return {"patch_history_on": on, "patch_history_off": off, "history_ratio": on / off}


def check_aggregate(server: Server, url: str, raw_db: Raw, sid: int) -> None:
    """The figure means something only if the server computes what the baseline computes."""
    answer = httpx.get(server.base + url, timeout=60.0)
    answer.raise_for_status()
    body = answer.json()
    ours = [bucket[0] for bucket in body["power"]["avg"]]
    raw = [avg for _, avg in raw_db.run(HOURLY_AVG, (START_MS, sid, START_MS))]
    if len(ours) != len(raw) or any(abs(a - b) > 1e-6 for a, b in zip(ours, raw, strict=True)):
        print(f"  WARNING: the server's hourly averages differ from SQLite's "
              f"({len(ours)} vs {len(raw)} buckets)")


@contextlib.contextmanager
def read_server(tmp: Path, args: argparse.Namespace) -> Iterator[tuple[Server, Raw, str]]:
    """The server of the read measures, the raw connection to its database, and the name of
    the backend."""
    if args.database is None:
        db = tmp / "history.db"
        with sinergia_server(db, synchronous="normal") as server:
            yield server, Raw(sqlite_file=db), "SQLite"
        return
    with pg_schema(args.database) as url, sinergia_server(database_url=url) as server:
        yield server, Raw(pg_url=url), "PostgreSQL"


def bench_reads(tmp: Path, args: argparse.Namespace, wanted: set[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    agg_url = (f"{TEMPORAL}/{AGG_ID}?format=aggregatedValues&aggrMethods=avg&"
               f"aggrPeriodDuration=PT1H&timerel=after&timeAt={iso(START_MS)}")
    lastn_url = f"{TEMPORAL}/{LASTN_ID}?lastN=100"
    server_figures = {}
    with read_server(tmp, args) as (server, raw_db, backend):
        for name, entity_id, count in (("aggregate", AGG_ID, args.agg_instances),
                                       ("lastn", LASTN_ID, args.lastn_instances)):
            if name in wanted:
                seed_history(server, entity_id, count, args)
        if raw_db.pg:
            raw_db.run("VACUUM (ANALYZE) history", ())
        sids = {name: raw_db.series_id(entity_id) for name, entity_id in
                (("aggregate", AGG_ID), ("lastn", LASTN_ID)) if name in wanted}
        if "aggregate" in wanted:
            check_aggregate(server, agg_url, raw_db, sids["aggregate"])
            server_figures["aggregate"] = wrk(server.base + agg_url, seconds=args.seconds,
                                              connections=1)
        if "lastn" in wanted:
            answer = httpx.get(server.base + lastn_url, timeout=60.0)
            if answer.status_code != 200 or len(answer.json()["power"]) != 100:
                print(f"  WARNING: lastN=100 answered {answer.status_code} with "
                      f"{len(answer.json().get('power', []))} instances")
            server_figures["lastn"] = wrk(server.base + lastn_url, seconds=args.seconds,
                                          connections=1)
        if args.profile_dir:
            for name, url in (("aggregate", agg_url), ("lastn", lastn_url)):
                if name in wanted:
                    path = args.profile_dir / f"temporal-{name}.txt"
                    with profiled(server.process.pid, path):
                        wrk(server.base + url, seconds=args.profile_seconds, connections=1)
                    print(f"  {name}:")
                    print_profile(path)
        # The raw baselines after the server's figures, on the same warm database.
        if "aggregate" in wanted:
            sid = sids["aggregate"]
            raw = timed(lambda: raw_db.run(HOURLY_AVG, (START_MS, sid, START_MS)),
                        args.seconds)
            ours = server_figures["aggregate"]
            report(f"avg per hour, {args.agg_instances:,} instances, raw GROUP BY",
                   f"p50 {raw['p50']:6.2f} ms   p99 {raw['p99']:6.2f} ms")
            report(f"avg per hour, {args.agg_instances:,} instances, Sinergia on {backend}",
                   f"p50 {ours.p50_ms:6.2f} ms   p99 {ours.p99_ms:6.2f} ms   "
                   f"({ours.requests_per_s:,.1f} req/s, 1 connection)", "<= 100 ms",
                   f"p50 {ours.p50_ms / raw['p50']:.1f}x the raw query")
            out |= {"aggregate_p50_ms": ours.p50_ms, "aggregate_p99_ms": ours.p99_ms,
                    "aggregate_raw_p50_ms": raw["p50"], "aggregate_raw_p99_ms": raw["p99"]}
        if "lastn" in wanted:
            sid = sids["lastn"]
            raw = timed(lambda: raw_db.run(LAST_100, (sid,)), args.seconds)
            ours = server_figures["lastn"]
            report(f"lastN=100 of {args.lastn_instances:,} instances, raw LIMIT 100",
                   f"p50 {raw['p50']:6.2f} ms   p99 {raw['p99']:6.2f} ms")
            report(f"lastN=100 of {args.lastn_instances:,} instances, Sinergia on {backend}",
                   f"p50 {ours.p50_ms:6.2f} ms   p99 {ours.p99_ms:6.2f} ms   "
                   f"({ours.requests_per_s:,.0f} req/s, 1 connection)", "<= 10 ms",
                   f"p50 {ours.p50_ms / raw['p50']:.1f}x the raw query")
            out |= {"lastn_p50_ms": ours.p50_ms, "lastn_p99_ms": ours.p99_ms,
                    "lastn_raw_p50_ms": raw["p50"], "lastn_raw_p99_ms": raw["p99"]}
        raw_db.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="history,aggregate,lastn")
    parser.add_argument("--entities", type=int, default=10_000,
                        help="entities seeded for the PATCH load of the history measure")
    parser.add_argument("--rounds", type=int, default=2,
                        help="history on/off rounds (each arm once per round)")
    parser.add_argument("--seconds", type=int, default=10, help="length of each measurement")
    parser.add_argument("--agg-instances", type=int, default=100_000)
    parser.add_argument("--lastn-instances", type=int, default=1_000_000)
    parser.add_argument("--per-request", type=int, default=10_000,
                        help="instances per POST /temporal/entities while seeding")
    parser.add_argument("--interval-s", type=float, default=60.0,
                        help="seconds between two seeded readings (60: 100k = 1,667 hours)")
    parser.add_argument("--database", metavar="postgresql://…",
                        help="run the read measures on this PostgreSQL database (in a schema "
                             "of their own) instead of SQLite")
    parser.add_argument("--synchronous", default="full", choices=("full", "normal"),
                        help="SQLite durability of the history on/off servers")
    parser.add_argument("--profile-dir", type=Path,
                        help="after each clean figure, profile the same load with py-spy here")
    parser.add_argument("--profile-seconds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the set-up")
    parser.add_argument("--out", type=Path, default=Path("bench/results/temporal.json"))
    if "--quick" in sys.argv:  # small defaults; flags given explicitly still win
        parser.set_defaults(entities=1000, rounds=1, seconds=2, agg_instances=5000,
                            lastn_instances=20_000, per_request=5000, profile_seconds=2)
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if "history" in wanted:
            print(f"History on vs off: {args.entities:,} entities, PATCH /attrs, "
                  f"synchronous={args.synchronous}, {args.rounds} round(s)")
            results |= bench_history(Path(tmp), args)
        if wanted & {"aggregate", "lastn"}:
            print("Temporal reads")
            results |= bench_reads(Path(tmp), args, wanted)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"figures written to {args.out}")


if __name__ == "__main__":
    main()
