"""Broker core benchmarks (issue 2), on SQLite, server and load generator on this machine.

    .venv/bin/python -m bench.bench_broker                 # everything, default sizes
    .venv/bin/python -m bench.bench_broker --only retrieve,query --entities 100000
    .venv/bin/python -m bench.bench_broker --keep bench/results/db   # keep the seeded databases
                                                                     # there; later runs reuse them

Measures (each prints its figure, target, and ratio to a raw baseline taken in this run):
  retrieve   GET /entities/{id}, 1 and 2 workers, vs bare Starlette + SQLite lookup of the
             same stored document
  write      POST /entities (one entity per request) and PATCH /attrs (partial update)
  batch      POST /entityOperations/upsert, 1,000 entities x 10 attributes per request, vs a
             raw SQLite executemany of the same rows
  query      GET /entities?type=…&q=…&limit=100 over the seeded entities
  geo        GET /entities?georel=near;maxDistance==500 over the seeded located entities,
             from 8 connections (throughput; latency mostly queueing) and from one
  memory     server RSS after storing --million entities (default 1,000,000)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.harness import baseline_server, sinergia_server, wrk

ENTITIES = "/ngsi-ld/v1/entities"
UPSERT = "/ngsi-ld/v1/entityOperations/upsert"
# Milan's bounding box: every located entity lies inside it.
LON0, LON1, LAT0, LAT1 = 9.04, 9.28, 45.39, 45.54


def streetlight(n: int, rng: random.Random) -> dict[str, Any]:
    """A 10-attribute entity, as a lighting operator would publish it."""
    return {
        "id": f"urn:ngsi-ld:Streetlight:{n}",
        "type": "Streetlight",
        "location": {"type": "GeoProperty", "value": {
            "type": "Point", "coordinates": [round(rng.uniform(LON0, LON1), 6),
                                            round(rng.uniform(LAT0, LAT1), 6)]}},
        "powerState": {"type": "Property", "value": rng.choice(["on", "off"])},
        "illuminanceLevel": {"type": "Property", "value": round(rng.random(), 3),
                             "unitCode": "C62"},
        "dimmingLevel": {"type": "Property", "value": rng.randint(0, 100)},
        "powerConsumption": {"type": "Property", "value": round(rng.uniform(20, 150), 1),
                             "unitCode": "WTT", "observedAt": "2026-11-21T18:00:00Z"},
        "lampTechnology": {"type": "Property", "value": rng.choice(["LED", "HPS", "MH"])},
        "status": {"type": "Property", "value": "ok"},
        "refStreetlightGroup": {"type": "Relationship",
                                "object": f"urn:ngsi-ld:StreetlightGroup:{n % 200}"},
        "refDevice": {"type": "Relationship", "object": f"urn:ngsi-ld:Device:{n}"},
        "dateLastLampChange": {"type": "Property", "value": "2025-03-01T00:00:00Z"},
    }


def batches(count: int, size: int, seed: int = 7, start: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [orjson.dumps([streetlight(n, rng) for n in range(i, min(i + size, start + count))])
            for i in range(start, start + count, size)]


async def post_batches(base: str, bodies: list[bytes], concurrency: int = 4) -> float:
    """Send batch upserts from ``concurrency`` clients; return elapsed seconds."""
    queue = list(reversed(bodies))

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=300.0) as http:
            while queue:
                body = queue.pop()
                response = await http.post(UPSERT, content=body,
                                           headers={"Content-Type": "application/json"})
                if response.status_code not in (201, 204):
                    raise RuntimeError(f"upsert failed: {response.status_code} "
                                       f"{response.text[:300]}")

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.perf_counter() - started


def report(name: str, figure: str, target: str, ratio: str = "") -> None:
    print(f"  {name:<44} {figure:<58} target {target:<22} {ratio}")


# -- measures -------------------------------------------------------------------------------


def bench_retrieve(db: Path, n: int, seconds: int) -> dict[str, float]:
    lua = ("math.randomseed(42)\nrequest = function()\n"
           f"  return wrk.format(nil, '{{path}}' .. math.random(0, {n - 1}))\nend\n")
    out = {}
    for workers in (1, 2):
        with baseline_server(db, workers=workers) as base:
            raw = wrk(base.base + "/", lua.replace("{path}", "/entities/urn:ngsi-ld:Streetlight:"),
                      seconds=seconds)
        with sinergia_server(db, workers=workers) as server:
            ours = wrk(server.base + "/", lua.replace(
                "{path}", f"{ENTITIES}/urn:ngsi-ld:Streetlight:"), seconds=seconds)
        ratio = ours.requests_per_s / raw.requests_per_s
        report(f"retrieve by id, {workers} worker(s), baseline", raw.line(), "")
        report(f"retrieve by id, {workers} worker(s), Sinergia", ours.line(),
               ">= 5,000 req/s, >= 50%", f"{ratio:.0%} of baseline")
        out[f"retrieve_w{workers}"] = ours.requests_per_s
        out[f"retrieve_w{workers}_baseline"] = raw.requests_per_s
    return out


def bench_write(db: Path, seconds: int) -> dict[str, float]:
    create = ("local n = 0\nrequest = function()\n  n = n + 1\n"
              "  local id = 'urn:ngsi-ld:Sensor:' .. tostring(math.random(1, 1e9)) .. '-' .. n\n"
              "  return wrk.format('POST', '" + ENTITIES + "', "
              "{['Content-Type']='application/json'}, "
              "'{\"id\":\"' .. id .. '\",\"type\":\"Sensor\",\"temperature\":{\"type\":"
              "\"Property\",\"value\":21.5},\"humidity\":{\"type\":\"Property\",\"value\":40}}')"
              "\nend\n")
    patch = ("request = function()\n"
             "  local path = '" + ENTITIES + "/urn:ngsi-ld:Streetlight:' .. "
             "math.random(0, 9999) .. '/attrs'\n"
             "  return wrk.format('PATCH', path, {['Content-Type']='application/json'}, "
             "'{\"dimmingLevel\":{\"type\":\"Property\",\"value\":' .. math.random(0, 100) .. '}}')"
             "\nend\n")
    out = {}
    with sinergia_server(db) as server:
        created = wrk(server.base + "/", create, seconds=seconds)
        report("create, one entity per request", created.line(), ">= 2,000 req/s")
        patched = wrk(server.base + "/", patch, seconds=seconds)
        report("partial update (PATCH /attrs)", patched.line(), ">= 2,000 req/s")
    out["create"] = created.requests_per_s
    out["patch"] = patched.requests_per_s
    return out


def raw_executemany(rows: list[tuple[str, str]]) -> float:
    """The same rows (id, stored document) written with a bare executemany into the same kind
    of table, in 1,000-row transactions, WAL and synchronous=FULL like the server."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "raw.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE entities (rid INTEGER PRIMARY KEY, tenant TEXT NOT NULL, "
                     "id TEXT NOT NULL, doc TEXT NOT NULL, UNIQUE (tenant, id))")
        started = time.perf_counter()
        for i in range(0, len(rows), 1000):
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO entities (tenant, id, doc) VALUES ('', ?, ?)",
                             rows[i:i + 1000])
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        conn.close()
    return len(rows) / elapsed


def bench_batch(db: Path, n: int) -> dict[str, float]:
    bodies = batches(n, 1000, seed=11, start=10_000_000)
    with sinergia_server(db) as server:
        elapsed = asyncio.run(post_batches(server.base, bodies))
    ours = n / elapsed
    # The baseline writes the documents the server stored, read back from its database.
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT id, doc FROM entities WHERE id LIKE 'urn:ngsi-ld:Streetlight:1____%' ORDER BY rid"
    ).fetchall()
    conn.close()
    raw = raw_executemany(rows)
    report("batch upsert, 1,000 x 10 attrs per request", f"{ours:>9,.0f} entities/s "
           f"({n:,} entities)", ">= 50,000/s, >= 40%",
           f"{ours / raw:.0%} of raw executemany ({raw:,.0f} rows/s)")
    return {"batch": ours, "batch_raw": raw}


def bench_query(server_base: str, seconds: int) -> dict[str, float]:
    lua = ("request = function()\n  local level = math.random(0, 90) / 100\n"
           "  return wrk.format(nil, '" + ENTITIES + "?type=Streetlight&limit=100&q="
           "illuminanceLevel%3E' .. level .. '%3BpowerState==%22on%22')\nend\n")
    result = wrk(server_base + "/", lua, seconds=seconds)
    report("type + q query, limit 100", result.line(), ">= 1,000 req/s")
    return {"query": result.requests_per_s}


def bench_geo(server_base: str, seconds: int) -> dict[str, float]:
    lua = ("request = function()\n"
           f"  local lon = {LON0 + 0.01} + math.random() * {LON1 - LON0 - 0.02}\n"
           f"  local lat = {LAT0 + 0.01} + math.random() * {LAT1 - LAT0 - 0.02}\n"
           "  return wrk.format(nil, '" + ENTITIES + "?type=Streetlight&limit=100&georel="
           "near%3BmaxDistance==500&geometry=Point&coordinates=%5B' .. "
           "string.format('%.5f', lon) .. ',' .. string.format('%.5f', lat) .. '%5D')\nend\n")
    # With 8 connections a request's latency is mostly its wait behind the others (the
    # server's throughput speaks); one connection at a time gives a request's own latency.
    result = wrk(server_base + "/", lua, seconds=seconds, connections=8)
    report("geo near;maxDistance==500, limit 100", result.line(), "p99 <= 20 ms")
    alone = wrk(server_base + "/", lua, seconds=seconds, connections=1)
    report("  the same, one connection", alone.line(), "p99 <= 20 ms")
    return {"geo_rps": result.requests_per_s, "geo_p99_ms": result.p99_ms,
            "geo_alone_rps": alone.requests_per_s, "geo_alone_p99_ms": alone.p99_ms}


def stored_count(db: Path) -> int:
    """Entities already in ``db`` (0 when there is no such file yet)."""
    if not db.exists():
        return 0
    conn = sqlite3.connect(db)
    try:
        (n,) = conn.execute("SELECT count(*) FROM entities WHERE tenant = ''").fetchone()
    except sqlite3.OperationalError:  # no schema yet
        n = 0
    finally:
        conn.close()
    return int(n)


def seed(db: Path, count: int, *, seed_of: Any = None) -> None:
    """Store Streetlights 0 … count-1 through the API, resuming after those already there.
    ``seed_of(start)`` is the random seed of the 50,000-entity slice at ``start``; without it
    one generator (seed 7) makes them all, so the set is only the same if seeded in one go."""
    have = stored_count(db)
    if have >= count:
        print(f"  {have:,} entities already stored in {db}: not seeding")
        return
    have -= have % 1000  # resume at a whole request: batch n is the same whoever sends it
    print(f"Seeding {count - have:,} located 10-attribute entities into {db} ...", flush=True)
    started = time.perf_counter()
    # History off: it is not what these measures read, and it would make seeding 1M slower.
    with sinergia_server(db, synchronous="normal", workers=2,
                         extra_env={"SINERGIA_HISTORY": "false"}) as server:
        if seed_of is None:
            asyncio.run(post_batches(server.base, batches(count, 1000)[have // 1000:]))
        else:
            for start in range(have, count, 50_000):
                asyncio.run(post_batches(server.base, batches(
                    min(50_000, count - start), 1000, seed=seed_of(start), start=start)))
    print(f"  seeded in {time.perf_counter() - started:,.1f} s", flush=True)


def bench_memory(db: Path, count: int) -> dict[str, float]:
    missing = count - stored_count(db)
    started = time.perf_counter()
    seed(db, count, seed_of=lambda start: start)
    elapsed = time.perf_counter() - started
    with sinergia_server(db, synchronous="normal") as server:
        # a few reads of each kind, so caches are as warm as in service
        with httpx.Client(base_url=server.base) as http:
            rng = random.Random(3)
            for _ in range(200):
                http.get(f"{ENTITIES}/urn:ngsi-ld:Streetlight:{rng.randrange(count)}")
                http.get(ENTITIES, params={"type": "Streetlight", "limit": 100,
                                           "q": f"illuminanceLevel>{rng.random():.2f}"})
                http.get(ENTITIES, params={
                    "type": "Streetlight", "limit": 100, "georel": "near;maxDistance==500",
                    "geometry": "Point", "coordinates": f"[{rng.uniform(LON0, LON1):.5f},"
                                                       f"{rng.uniform(LAT0, LAT1):.5f}]"})
        rss = server.rss_mb()
    report(f"{count:,} entities stored: server RSS", f"{rss:,.0f} MB "
           f"(loaded {max(0, missing):,} in {elapsed:,.0f} s)", "<= 1 GB")
    return {"rss_mb": rss}


@contextlib.contextmanager
def databases(keep: Path | None) -> Iterator[Path]:
    """The folder of the run's databases: ``keep`` (created if needed, left in place), or a
    temporary one removed at the end."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="retrieve,write,batch,query,geo,memory")
    parser.add_argument("--entities", type=int, default=100_000,
                        help="entities seeded for retrieve/query/geo")
    parser.add_argument("--batch-entities", type=int, default=50_000)
    parser.add_argument("--million", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--keep", type=Path, default=None, metavar="FOLDER",
                        help="keep the seeded databases in FOLDER and reuse them next time "
                             "(seeding 1M entities through the API takes long)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/broker.json"))
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    results: dict[str, float] = {}
    with databases(args.keep) as folder:
        db = folder / f"streetlights-{args.entities}.db"
        seed(db, args.entities)
        if wanted & {"query", "geo"}:
            with sinergia_server(db, synchronous="normal") as server:
                if "query" in wanted:
                    results |= bench_query(server.base, args.seconds)
                if "geo" in wanted:
                    results |= bench_geo(server.base, args.seconds)
        if "retrieve" in wanted:
            results |= bench_retrieve(db, args.entities, args.seconds)
        if "write" in wanted or "batch" in wanted:
            # writes change the database: measure them on a copy, so a kept one stays as seeded
            scratch = folder / "scratch.db"
            shutil.copyfile(db, scratch)
            try:
                if "write" in wanted:
                    results |= bench_write(scratch, args.seconds)
                if "batch" in wanted:
                    results |= bench_batch(scratch, args.batch_entities)
            finally:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{scratch}{suffix}").unlink(missing_ok=True)
        if "memory" in wanted:
            results |= bench_memory(folder / f"streetlights-{args.million}.db", args.million)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"figures written to {args.out}")


if __name__ == "__main__":
    main()
