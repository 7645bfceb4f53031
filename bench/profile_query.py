"""In-process CPU cost of the read-query path (issue 2): GET /entities with ``type`` + ``q``
and with ``georel=near``, through the ASGI app on a seeded SQLite database, measured with
``time.process_time`` (every thread of the process, the readers' included).

    .venv/bin/python -m bench.bench_broker --only query --keep bench/results/db  # seeds once
    .venv/bin/python -m bench.profile_query bench/results/db/streetlights-100000.db
    .venv/bin/python -m bench.profile_query DB --profile geo    # + cProfile of the geo run

Requests are issued ``--concurrency`` at a time, as wrk's connections keep them in flight.
Prints CPU microseconds per request for each kind, and the same for a raw baseline that runs
the request's SQL on a bare connection and returns the stored documents unparsed: the
ratio says how much of a request is spent outside SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import random
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.bench_broker import ENTITIES, LAT0, LAT1, LON0, LON1
from bench.profile_batch import _Client
from sinergia.api.app import create_app
from sinergia.api.asgi import tune_gc
from sinergia.settings import Settings

# Names in the default @context, as the bench seeds them.
DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"
TYPE = DEFAULT + "Streetlight"


def q_query(rng: random.Random) -> str:
    level = rng.randint(0, 90) / 100
    return ("type=Streetlight&limit=100&q=" + quote(f'illuminanceLevel>{level};powerState=="on"'))


def geo_query(rng: random.Random) -> str:
    lon = rng.uniform(LON0 + 0.01, LON1 - 0.01)
    lat = rng.uniform(LAT0 + 0.01, LAT1 - 0.01)
    return ("type=Streetlight&limit=100&georel=" + quote("near;maxDistance==500")
            + f"&geometry=Point&coordinates={quote(f'[{lon:.5f},{lat:.5f}]')}")


async def _measure(http: _Client, make: Any, n: int, concurrency: int, seed: int,
                   profiler: cProfile.Profile | None) -> tuple[float, float]:
    """(CPU us per request, mean entities returned)."""
    rng = random.Random(seed)
    queries = [make(rng) for _ in range(n)]
    returned = 0

    async def one(query: str) -> None:
        nonlocal returned
        status, body = await http.request("GET", ENTITIES, b"", query)
        assert status == 200, body[:300]
        returned += body.count(b'"id":')

    started = time.process_time()
    if profiler:
        profiler.enable()
    for first in range(0, n, concurrency):
        await asyncio.gather(*(one(q) for q in queries[first:first + concurrency]))
    if profiler:
        profiler.disable()
    return (time.process_time() - started) / n * 1e6, returned / n


async def _run(db: Path, n: int, concurrency: int, profile: str | None,
               kinds: list[str]) -> dict[str, tuple[float, float]]:
    settings = Settings(database_url=f"sqlite:///{db}", allow_remote_contexts=False,
                        max_limit=1000)
    app = create_app(settings)
    tune_gc()
    out = {}
    makers = {"query": q_query, "geo": geo_query}
    async with app.router.lifespan_context(app):
        http = _Client(app)
        for kind in kinds:
            await _measure(http, makers[kind], 50, concurrency, 99, None)  # warm-up
            profiler = cProfile.Profile() if profile == kind else None
            out[kind] = await _measure(http, makers[kind], n, concurrency, 5, profiler)
            if profiler:
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
                pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    return out


def raw_sql_us(db: Path, n: int) -> float:
    """CPU of the plain-SQL version of the type + q request: the same filter on the
    ``attr_values`` side table, 100 stored documents fetched, nothing parsed."""
    conn = sqlite3.connect(db)
    rng = random.Random(5)
    sql = ("SELECT e.doc FROM entity_types t JOIN entities e ON e.rid = t.rid "
           "JOIN attr_values a ON a.rid = t.rid AND a.aid = (SELECT aid FROM attr_names "
           "WHERE iri = ?) JOIN attr_values b ON b.rid = t.rid AND b.aid = (SELECT aid FROM "
           "attr_names WHERE iri = ?) WHERE t.tenant = '' AND t.type = ? AND a.v > ? "
           "AND b.v = 'on' ORDER BY t.rid LIMIT 100")
    ill = DEFAULT + "illuminanceLevel"
    power = DEFAULT + "powerState"
    started = time.process_time()
    for _ in range(n):
        conn.execute(sql, (ill, power, TYPE, rng.randint(0, 90) / 100)).fetchall()
    elapsed = time.process_time() - started
    conn.close()
    return elapsed / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("db", type=Path)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--only", default="query,geo")
    parser.add_argument("--profile", choices=["query", "geo"])
    args = parser.parse_args()
    kinds = args.only.split(",")
    figures = asyncio.run(_run(args.db, args.requests, args.concurrency, args.profile, kinds))
    raw = raw_sql_us(args.db, args.requests)
    for kind, (us, size) in figures.items():
        print(f"{kind:<6} {us:8.0f} us CPU/request   {size:5.1f} entities/request   "
              f"(=> {1e6 / us:,.0f} req/s on one core)")
    print(f"raw SQL for type + q: {raw:.0f} us CPU/request"
          + (f"   ratio to query {raw / figures['query'][0]:.1%}" if "query" in figures
             else ""))


if __name__ == "__main__":
    main()
