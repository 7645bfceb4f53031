"""PostgreSQL backend benchmarks (issue 4): server, PostgreSQL and load generator on this machine.

    .venv/bin/python -m bench.bench_postgres                # everything, the issue's sizes
    .venv/bin/python -m bench.bench_postgres --quick        # tiny sizes: checks the set-up
    .venv/bin/python -m bench.bench_postgres --million 200000 --only query,geo
    .venv/bin/python -m bench.bench_postgres --keep         # keep the seeded database; the
                                                            # next --keep run reuses it
    .venv/bin/python -m bench.bench_postgres --profile-dir bench/results/profiles

Needs PostgreSQL 15+ with PostGIS at --pg (default postgresql://postgres@127.0.0.1:5432/, a
role that may create databases) and wrk. The bench creates the database --database
(sinergia_bench), seeds it through the API and drops it at the end (unless --keep).

Seeding: --million located 10-attribute Streetlight entities (bench_broker's shape, spread over
Milan's bounding box) through POST /entityOperations/upsert, 1,000 entities per request from
--clients concurrent clients, into a 2-worker server with history off (seeding is not measured;
the measured servers run with history on, the shipped default). Then VACUUM ANALYZE, as
autovacuum would do after a bulk load. Seeding 1M takes as long as 1M batch-upserted entities
take (many minutes while batch upserts are slow): --keep keeps the seeded database for the
next run. The same first --sqlite-entities entities are seeded
through the API into a SQLite file for the retrieve comparison.

Measures, each on a 1-worker and a 2-worker ``sinergia serve --database-url postgresql://…``
(so every figure has its 1 → 2 workers scaling factor), each with its target and its ratio to
a raw baseline of this run:
  retrieve  GET /entities/{id}, random ids among the first --sqlite-entities; target: the
            2-worker figure >= the 1-worker SQLite server's on the same entities (measured in
            this run). Raw baseline: a bare Starlette + psycopg-pool app returning the stored
            document's text by id (same pool size)
  query     GET /entities?type=Streetlight&q=illuminanceLevel>x;powerState=="on"&limit=100
            over the --million entities (x random in [0, 0.9]); target >= 500 req/s. Raw
            baseline: the bare app running a hand-written SQL of the same filter
  geo       GET /entities?type=Streetlight&georel=within&geometry=Polygon&coordinates=<NIL>
            &limit=100, the NIL (Milan neighbourhood) of median area unless --nil, from
            --geo-connections connections; target p99 <= 50 ms. Raw baseline: the bare app
            running PostGIS ST_Within on entity_geo's points (read from their index alone)
            joined to the documents
  patch     PATCH /entities/{id}/attrs, one attribute (single-entity writes, for scaling)
  batch     POST /entityOperations/upsert, 1,000 new entities x 10 attributes per request,
            --batch-entities in all from --clients clients, into a fresh tenant; also once on
            1 worker with history off. Target >= 40% of a raw COPY of the same rows: the
            documents the server stored, read back, COPYed (psycopg's copy API) into a copy
            of the entities table (same keys and indexes) in 1,000-row transactions from
            --clients connections. Also shown: the raw COPY of everything the server's state
            tables got (entities + entity_types + entity_geo rows), for context.
Every measure also prints the CPU milliseconds a request cost the server processes and the
PostgreSQL backends (from /proc): the Python and SQL shares, which other load on the machine
hardly moves; the SQLite retrieve server's too, the retrieve comparison by CPU. With
--profile-dir, query, geo and batch get an extra pass under py-spy on the
1-worker server after their clean figures, and the functions that dominate are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import orjson
import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.bench_broker import streetlight
from bench.harness import (
    PYTHON,
    Server,
    WrkResult,
    baseline_server,
    cpu_seconds,
    print_profile,
    profiled,
    report,
    sinergia_server,
    wrk,
)

ENTITIES = "/ngsi-ld/v1/entities"
UPSERT = "/ngsi-ld/v1/entityOperations/upsert"
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
STREETLIGHT = DEFAULT_VOCAB + "Streetlight"
LOCATION = "https://uri.etsi.org/ngsi-ld/location"
BATCH = 1000  # entities per upsert request, as the issue says
POOL_SIZE = 10  # the server's postgres_pool_size default; the raw app gets the same
JSON = {"Content-Type": "application/json"}

# The q of the query measure, once as the server gets it and once as the raw SQL tests it.
QUERY_LUA = ("request = function()\n  local level = math.random(0, 90) / 100\n"
             "  return wrk.format(nil, '{path}' .. level .. '{rest}')\nend\n")
QUERY_PATH = (f"{ENTITIES}?type=Streetlight&limit=100&q=illuminanceLevel%3E",
              "%3BpowerState==%22on%22")
RAW_QUERY_PATH = ("/query?level=", "")


# -- the database ------------------------------------------------------------------------------


def database_url(server_url: str, name: str) -> str:
    return urlunsplit(urlsplit(server_url)._replace(path="/" + name))


@contextlib.contextmanager
def bench_database(server_url: str, name: str, *, keep: bool) -> Iterator[str]:
    """A database of its own for the run: created afresh (kept and reused with ``keep``) and
    dropped at the end unless ``keep``."""
    with psycopg.connect(server_url, dbname="postgres", autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                               (name,)).fetchone()
        if exists and not keep:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        if not exists or not keep:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield database_url(server_url, name)
    finally:
        if not keep:
            with psycopg.connect(server_url, dbname="postgres", autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                              .format(sql.Identifier(name)))


def stored_count(url: str, tenant: str = "") -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('entities')").fetchone() == (None,):
            return 0
        row = conn.execute("SELECT count(*) FROM entities WHERE tenant = %s",
                           (tenant,)).fetchone()
        return int(row[0]) if row else 0


def vacuum_analyze(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("entities", "entity_types", "entity_geo"):
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))


# -- seeding and batch upserts through the API -------------------------------------------------


def bodies(count: int, start: int = 0) -> Iterator[bytes]:
    """Upsert bodies of entities ``start`` … ``start + count - 1``, 1,000 a request, made as
    they are sent (1M entities at once would not fit comfortably in memory). Entity n is the
    same in every run and every database."""
    for first in range(start, start + count, BATCH):
        rng = random.Random(first)
        yield orjson.dumps([streetlight(n, rng)
                            for n in range(first, min(first + BATCH, start + count))])


async def upsert_all(base: str, requests: Iterator[bytes], *, clients: int, tenant: str = "",
                     progress_every: int = 0) -> float:
    """Send every body from ``clients`` concurrent clients; return the elapsed seconds."""
    headers = {**JSON, **({"NGSILD-Tenant": tenant} if tenant else {})}
    sent = 0

    async def client() -> None:
        nonlocal sent
        async with httpx.AsyncClient(base_url=base, timeout=600.0) as http:
            for body in requests:  # a shared iterator: each body is taken by one client
                answer = await http.post(UPSERT, content=body, headers=headers)
                if answer.status_code not in (201, 204):
                    raise RuntimeError(f"upsert failed: {answer.status_code} "
                                       f"{answer.text[:300]}")
                sent += 1
                if progress_every and sent % progress_every == 0:
                    print(f"    {sent * BATCH:,} entities …", flush=True)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started


def upgrade_schema(url: str) -> None:
    """A database kept from an earlier run may need migrations a serving process does not run
    by itself (offline ones): what an operator does with ``sinergia db upgrade``."""
    subprocess.run([PYTHON, "-m", "sinergia.cli", "db", "upgrade", "--database", url],
                   check=True, stdout=subprocess.DEVNULL)


def seed_postgres(url: str, count: int, clients: int) -> None:
    upgrade_schema(url)
    have = stored_count(url)
    if have >= count:
        print(f"  {have:,} entities already stored (--keep): not seeding")
        return
    # Resume at a whole request: entity n is the same whoever sends it.
    have -= have % BATCH
    print(f"  seeding {count - have:,} located 10-attribute entities through the API "
          f"(2 workers, history off, {clients} clients) …", flush=True)
    with sinergia_server(database_url=url, workers=2,
                         extra_env={"SINERGIA_HISTORY": "false"}) as server:
        elapsed = asyncio.run(upsert_all(server.base, bodies(count - have, have),
                                         clients=clients,
                                         progress_every=max(1, (count // BATCH) // 10)))
    report("  seeded", f"{(count - have) / elapsed:>9,.0f} entities/s ({elapsed:,.0f} s)")
    vacuum_analyze(url)


def seed_sqlite(db: Path, count: int, clients: int) -> None:
    with sinergia_server(db, synchronous="normal") as server:
        elapsed = asyncio.run(upsert_all(server.base, bodies(count), clients=clients))
    report("  seeded SQLite", f"{count / elapsed:>9,.0f} entities/s ({elapsed:,.1f} s)")


# -- the raw baseline app: bare Starlette + psycopg pool on the same database ------------------


def raw_app() -> Starlette:
    """What a hand-written service over the same tables would do: one SQL statement per
    request, the stored documents' text returned untouched (no JSON-LD, no rendering, no
    Python-side filtering). Run by uvicorn (``--factory bench.bench_postgres:raw_app``)."""
    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
        os.environ["RAW_PG_URL"], min_size=POOL_SIZE, max_size=POOL_SIZE, open=False,
        kwargs={"autocommit": True})
    query_sql = (
        "SELECT e.doc_text FROM entity_types t JOIN entities e "
        "ON e.tenant = t.tenant AND e.rid = t.rid "
        "WHERE t.tenant = '' AND t.type = %s AND (e.doc #>> %s::text[])::float8 > %s "
        "AND e.doc #>> %s::text[] = 'on' ORDER BY t.rid LIMIT 100")
    # The page of rids first (the points in the polygon's box from their index, exact
    # ST_Within, type from its index), then their documents.
    within_sql = (
        "SELECT e.doc_text FROM (SELECT g.rid FROM entity_geo g "
        "WHERE g.tenant = '' AND g.attr = %s AND g.pt IS NOT NULL "
        "AND g.pt <@ box(point(%s, %s), point(%s, %s)) "
        "AND ST_Within(ST_SetSRID(ST_MakePoint(g.pt[0], g.pt[1]), 4326), "
        "ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326)) "
        "AND EXISTS (SELECT 1 FROM entity_types t WHERE t.tenant = '' AND t.type = %s "
        "AND t.rid = g.rid) ORDER BY g.rid LIMIT 100) c "
        "JOIN entities e ON e.tenant = '' AND e.rid = c.rid ORDER BY c.rid")

    async def rows(statement: str, params: tuple[object, ...]) -> Response:
        async with pool.connection() as conn:
            cur = await conn.execute(statement, params)
            docs = [doc for (doc,) in await cur.fetchall()]
        return Response("[" + ",".join(docs) + "]", media_type="application/json")

    async def by_id(request: Request) -> Response:
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT doc_text FROM entities "
                                     "WHERE tenant = '' AND id = %s",
                                     (request.path_params["entity_id"],))
            row = await cur.fetchone()
        if row is None:
            return Response(status_code=404)
        return Response(row[0], media_type="application/json")

    async def query(request: Request) -> Response:
        level = float(request.query_params["level"])
        return await rows(query_sql, (
            STREETLIGHT, ["attrs", DEFAULT_VOCAB + "illuminanceLevel", "0", "value"], level,
            ["attrs", DEFAULT_VOCAB + "powerState", "0", "value"]))

    async def within(request: Request) -> Response:
        coordinates = orjson.loads(request.query_params["coordinates"])
        polygon = orjson.dumps({"type": "Polygon", "coordinates": coordinates}).decode()
        xs, ys = [p[0] for p in coordinates[0]], [p[1] for p in coordinates[0]]
        return await rows(within_sql, (LOCATION, min(xs), min(ys), max(xs), max(ys), polygon,
                                       STREETLIGHT))

    async def health(request: Request) -> Response:
        return Response("ok")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await pool.open(wait=True)
        try:
            yield
        finally:
            await pool.close()

    return Starlette(routes=[Route("/entities/{entity_id:path}", by_id),
                             Route("/query", query), Route("/within", within),
                             Route("/health", health)], lifespan=lifespan)


@contextlib.contextmanager
def raw_server(url: str, workers: int) -> Iterator[Server]:
    with baseline_server(None, workers=workers, app="bench.bench_postgres:raw_app",
                         extra_env={"RAW_PG_URL": url}) as server:
        yield server


# -- the NIL polygon ---------------------------------------------------------------------------


def nil_polygon(nil_id: int | None) -> tuple[str, list[Any]]:
    """(name, Polygon coordinates) of the neighbourhood ``nil_id``, or of the one of median
    area among the single-polygon ones."""
    from sinergia.sim.milano import load_data

    polygons = [n for n in load_data()["neighbourhoods"] if n["geometry"]["type"] == "Polygon"]
    if nil_id is None:
        chosen = sorted(polygons, key=lambda n: n["area"])[len(polygons) // 2]
    else:
        chosen = next((n for n in polygons if n["id"] == nil_id), None)
        if chosen is None:
            raise SystemExit(f"no single-polygon NIL with id {nil_id}")
    return (f"NIL {chosen['id']} {chosen['name']} ({chosen['area'] / 1e6:.2f} km²)",
            chosen["geometry"]["coordinates"])


def geo_paths(coordinates: list[Any]) -> tuple[str, str]:
    """(Sinergia path, raw app path) of the within query."""
    encoded = quote(orjson.dumps(coordinates).decode(), safe="")
    return (f"{ENTITIES}?type=Streetlight&limit=100&georel=within&geometry=Polygon"
            f"&coordinates={encoded}", f"/within?coordinates={encoded}")


# -- measures ----------------------------------------------------------------------------------

T = TypeVar("T")


class CpuSplit:
    """CPU milliseconds a request of each measure cost the server processes and the
    PostgreSQL backends of the database (from /proc: PostgreSQL runs on this machine). Where a
    request's time goes — Python or SQL — whatever else the machine is doing meanwhile."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.per_request: dict[str, tuple[float, float]] = {}

    def _backends(self) -> dict[int, float]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            pids = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = "
                                "current_database() AND pid <> pg_backend_pid()").fetchall()
        return {pid: cpu_seconds(pid) for (pid,) in pids}

    def measure(self, key: str, server: Server, run: Callable[[], T],
                requests: Callable[[T], float], *, database: bool = True) -> T:
        """Run ``run`` and note its CPU per request (``requests(result)`` of them); backends
        that started meanwhile count from zero, those that ended are missed. Without
        ``database`` (a SQLite server) only the server's CPU counts."""
        server_before = sum(cpu_seconds(pid) for pid in server.pids())
        db_before = self._backends() if database else {}
        result = run()
        server_ms = 1000 * (sum(cpu_seconds(pid) for pid in server.pids()) - server_before)
        db_ms = 1000 * sum(used - db_before.get(pid, 0.0)
                           for pid, used in self._backends().items()) if database else 0.0
        n = max(1.0, requests(result))
        self.per_request[key] = (server_ms / n, db_ms / n)
        return result

    def print(self, figures: dict[str, float]) -> None:
        for key, (server_ms, db_ms) in self.per_request.items():
            report(f"CPU a request, {key}", f"server {server_ms:8.2f} ms   PostgreSQL "
                   f"{db_ms:8.2f} ms", "report",
                   f"{server_ms / max(server_ms + db_ms, 1e-9):.0%} in the server")
            figures[f"cpu_{key}_server_ms"] = server_ms
            figures[f"cpu_{key}_postgres_ms"] = db_ms


def retrieve_lua(prefix: str, ids: int) -> str:
    return ("math.randomseed(42)\nrequest = function()\n"
            f"  return wrk.format(nil, '{prefix}urn:ngsi-ld:Streetlight:' .. "
            f"math.random(0, {ids - 1}))\nend\n")


def patch_lua(ids: int) -> str:
    return ("request = function()\n"
            f"  local path = '{ENTITIES}/urn:ngsi-ld:Streetlight:' .. "
            f"math.random(0, {ids - 1}) .. '/attrs'\n"
            "  return wrk.format('PATCH', path, {['Content-Type']='application/json'}, "
            "'{\"dimmingLevel\":{\"type\":\"Property\",\"value\":' .. math.random(0, 100) .. "
            "'}}')\nend\n")


def same_answers(ours_url: str, raw_url: str, what: str) -> None:
    """The figures compare like with like only if both answer the same entities."""
    ours = httpx.get(ours_url, timeout=120.0)
    raw = httpx.get(raw_url, timeout=120.0)
    if ours.status_code != 200 or raw.status_code != 200:
        print(f"  WARNING: {what}: Sinergia answered {ours.status_code}, raw {raw.status_code}")
        return
    ours_ids = [e["id"] for e in ours.json()]
    raw_ids = [e["id"] for e in raw.json()]
    if ours_ids != raw_ids:
        print(f"  WARNING: {what}: Sinergia and the raw SQL answer different entities "
              f"({len(ours_ids)} vs {len(raw_ids)})")
    elif not ours_ids:
        print(f"  WARNING: {what}: both answer no entities (too few seeded?)")


def measure_reads(server: Server, args: argparse.Namespace, wanted: set[str],
                  geo_path: str, split: CpuSplit, workers: int) -> dict[str, WrkResult]:
    out: dict[str, WrkResult] = {}
    runs = {
        "retrieve": lambda: wrk(server.base + "/", retrieve_lua(f"{ENTITIES}/", args.ids),
                                seconds=args.seconds, connections=args.connections),
        "query": lambda: wrk(server.base + "/", QUERY_LUA.format(
            path=QUERY_PATH[0], rest=QUERY_PATH[1]), seconds=args.seconds,
            connections=args.connections),
        "geo": lambda: wrk(server.base + geo_path, seconds=args.seconds,
                           connections=args.geo_connections),
        "patch": lambda: wrk(server.base + "/", patch_lua(args.ids), seconds=args.seconds,
                             connections=args.connections),
    }
    for measure, run in runs.items():
        if measure in wanted:
            out[measure] = split.measure(f"{measure} {workers}w", server, run,
                                         lambda r: r.requests_per_s * args.seconds)
    return out


def measure_batch(server: Server, count: int, clients: int, tenant: str) -> float:
    elapsed = asyncio.run(upsert_all(server.base, bodies(count), clients=clients,
                                     tenant=tenant))
    if stored_count_via_api(server, tenant) != count:
        print(f"  WARNING: batch into tenant {tenant}: not all {count:,} entities stored")
    return count / elapsed


def stored_count_via_api(server: Server, tenant: str) -> int:
    answer = httpx.get(server.base + ENTITIES, params={"type": "Streetlight", "limit": 0,
                                                       "count": "true"},
                       headers={"NGSILD-Tenant": tenant}, timeout=120.0)
    return int(answer.headers.get("ngsild-results-count", "-1"))


def profile_pass(server: Server, args: argparse.Namespace, name: str, run: Any) -> None:
    path = args.profile_dir / f"postgres-{name}.txt"
    with profiled(server.process.pid, path):
        run()
    print(f"  {name}, 1 worker, under py-spy:")
    print_profile(path)


def bench_postgres(url: str, args: argparse.Namespace, wanted: set[str], geo_path: str,
                   split: CpuSplit) -> tuple[dict[int, dict[str, WrkResult]], dict[str, float]]:
    """Every measure on a 1-worker then a 2-worker server (history on)."""
    reads: dict[int, dict[str, WrkResult]] = {}
    batch: dict[str, float] = {}
    run = uuid.uuid4().hex[:8]
    for workers in (1, 2):
        with sinergia_server(database_url=url, workers=workers) as server:
            reads[workers] = measure_reads(server, args, wanted, geo_path, split, workers)
            if "batch" in wanted:
                tenant = f"batch{workers}{run}"
                batch[f"w{workers}"] = split.measure(
                    f"batch {workers}w (1,000 entities)", server,
                    partial(measure_batch, server, args.batch_entities, args.clients, tenant),
                    lambda _: args.batch_entities / BATCH)
            if workers == 1 and args.profile_dir:
                profile_measures(server, args, wanted, geo_path, run)
    if "batch" in wanted:
        with sinergia_server(database_url=url, workers=1,
                             extra_env={"SINERGIA_HISTORY": "false"}) as server:
            batch["w1_nohistory"] = split.measure(
                "batch 1w, history off (1,000 entities)", server,
                lambda: measure_batch(server, args.batch_entities, args.clients,
                                      f"batch0{run}"),
                lambda _: args.batch_entities / BATCH)
        copy_entities, copy_state = raw_copy(url, f"batch1{run}", args.clients)
        batch |= {"raw_copy": copy_entities, "raw_copy_state": copy_state}
        drop_tenants(url, [f"batch{w}{run}" for w in (0, 1, 2)] + [f"profile{run}"])
    return reads, batch


def profile_measures(server: Server, args: argparse.Namespace, wanted: set[str],
                     geo_path: str, run: str) -> None:
    seconds = args.profile_seconds
    if "query" in wanted:
        profile_pass(server, args, "query", lambda: wrk(
            server.base + "/", QUERY_LUA.format(path=QUERY_PATH[0], rest=QUERY_PATH[1]),
            seconds=seconds, connections=args.connections))
    if "geo" in wanted:
        profile_pass(server, args, "geo", lambda: wrk(
            server.base + geo_path, seconds=seconds, connections=args.geo_connections))
    if "batch" in wanted:
        profile_pass(server, args, "batch", lambda: measure_batch(
            server, args.batch_entities, args.clients, f"profile{run}"))


def drop_tenants(url: str, tenants: list[str]) -> None:
    """Remove what the batch measures wrote, so a --keep database stays as seeded."""
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("entities", "entity_types", "entity_geo", "tenants", "history",
                      "history_series", "history_entities"):
            conn.execute(sql.SQL("DELETE FROM {} WHERE tenant = ANY(%s)")
                         .format(sql.Identifier(table)), (tenants,))


# -- the raw COPY baseline of the batch measure ------------------------------------------------

STATE_TABLES = {
    "entities": "tenant, rid, id, doc",
    "entity_types": "tenant, type, rid",
    "entity_geo": "tenant, rid, attr, n, geom",
}


def raw_copy(url: str, tenant: str, clients: int) -> tuple[float, float]:
    """Rows/s of COPYing the rows the server stored for ``tenant`` into empty copies of its
    tables, 1,000 entities a transaction from ``clients`` connections: the entities table
    alone, then all three state tables. Returns (entities rows/s, entities/s for all three)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows: dict[str, list[tuple[Any, ...]]] = {}
        for table, columns in STATE_TABLES.items():
            select = sql.SQL("SELECT {} FROM {} WHERE tenant = %s ORDER BY rid").format(
                sql.SQL(", ".join(f"{c}::text" for c in columns.split(", "))),
                sql.Identifier(table))
            rows[table] = conn.execute(select, (tenant,)).fetchall()
        for table in STATE_TABLES:
            raw = sql.Identifier("raw_" + table)
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(raw))
            conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)")
                         .format(raw, sql.Identifier(table)))
    count = len(rows["entities"])
    if not count:
        raise RuntimeError(f"no rows stored for tenant {tenant}")
    chunks = [rows["entities"][i:i + BATCH] for i in range(0, count, BATCH)]
    entities_only = asyncio.run(_copy_chunks(url, [{"entities": c} for c in chunks], clients))
    # every row of an entity goes in the transaction of its entity's chunk
    chunk_of = {r[1]: n for n, chunk in enumerate(chunks) for r in chunk}
    by_chunk: list[dict[str, list[tuple[Any, ...]]]] = [
        {table: [] for table in STATE_TABLES} for _ in chunks]
    for table, columns in STATE_TABLES.items():
        rid_at = columns.split(", ").index("rid")
        for row in rows[table]:
            by_chunk[chunk_of[row[rid_at]]][table].append(row)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE raw_entities")
    whole_state = asyncio.run(_copy_chunks(url, by_chunk, clients))
    with psycopg.connect(url, autocommit=True) as conn:
        for table in STATE_TABLES:
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("raw_" + table)))
    return count / entities_only, count / whole_state


async def _copy_chunks(url: str, chunks: list[dict[str, list[tuple[Any, ...]]]],
                       clients: int) -> float:
    """Elapsed seconds to COPY every chunk (table → rows), one transaction a chunk."""
    queue = list(reversed(chunks))

    async def client() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            while queue:
                chunk = queue.pop()
                async with conn.transaction():
                    for table, table_rows in chunk.items():
                        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                            sql.Identifier("raw_" + table), sql.SQL(STATE_TABLES[table]))
                        async with conn.cursor().copy(statement) as copy:
                            for row in table_rows:
                                await copy.write_row(row)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started


# -- the report --------------------------------------------------------------------------------


def bench_raw(url: str, args: argparse.Namespace, wanted: set[str],
              raw_geo_path: str) -> dict[int, dict[str, WrkResult]]:
    out: dict[int, dict[str, WrkResult]] = {}
    for workers in (1, 2):
        out[workers] = {}
        with raw_server(url, workers) as server:
            if "retrieve" in wanted:
                out[workers]["retrieve"] = wrk(server.base + "/",
                                               retrieve_lua("/entities/", args.ids),
                                               seconds=args.seconds,
                                               connections=args.connections)
            if "query" in wanted:
                out[workers]["query"] = wrk(server.base + "/", QUERY_LUA.format(
                    path=RAW_QUERY_PATH[0], rest=RAW_QUERY_PATH[1]), seconds=args.seconds,
                    connections=args.connections)
            if "geo" in wanted:
                out[workers]["geo"] = wrk(server.base + raw_geo_path, seconds=args.seconds,
                                          connections=args.geo_connections)
    return out


def check_answers(url: str, geo_paths_: tuple[str, str], wanted: set[str]) -> None:
    with sinergia_server(database_url=url) as ours, raw_server(url, 1) as raw:
        if "query" in wanted:
            same_answers(ours.base + QUERY_PATH[0] + "0.5" + QUERY_PATH[1],
                         raw.base + RAW_QUERY_PATH[0] + "0.5", "query")
        if "geo" in wanted:
            same_answers(ours.base + geo_paths_[0], raw.base + geo_paths_[1], "geo within")


def print_reads(ours: dict[int, dict[str, WrkResult]], raw: dict[int, dict[str, WrkResult]],
                sqlite_w1: WrkResult | None, args: argparse.Namespace,
                nil: str) -> dict[str, float]:
    figures: dict[str, float] = {}
    titles = {"retrieve": "retrieve by id", "query": "type + q, limit 100",
              "geo": "geo within NIL, limit 100", "patch": "PATCH /attrs, one attribute"}
    if sqlite_w1 is not None:
        report("retrieve by id, SQLite, 1 worker", sqlite_w1.line())
        figures["retrieve_sqlite_w1"] = sqlite_w1.requests_per_s
    for measure, title in titles.items():
        for workers in (1, 2):
            result = ours.get(workers, {}).get(measure)
            if result is None:
                continue
            baseline = raw.get(workers, {}).get(measure)
            if baseline is not None:
                report(f"{title}, {workers}w, raw baseline", baseline.line())
                figures[f"{measure}_w{workers}_raw"] = baseline.requests_per_s
            target, ratio = "", ""
            if baseline is not None:
                ratio = f"{result.requests_per_s / baseline.requests_per_s:.0%} of raw"
            if measure == "retrieve" and workers == 2 and sqlite_w1 is not None:
                target = ">= SQLite 1w"
                ratio += (f", {result.requests_per_s / sqlite_w1.requests_per_s:.0%} "
                          "of SQLite 1w")
            elif measure == "query":
                target = ">= 500 req/s"
            elif measure == "geo":
                target = "p99 <= 50 ms"
                if baseline is not None:
                    ratio += f", p99 {result.p99_ms / max(baseline.p99_ms, 1e-3):.1f}x raw"
            report(f"{title}, {workers}w, Sinergia", result.line(), target, ratio)
            figures[f"{measure}_w{workers}"] = result.requests_per_s
            if measure == "geo":
                figures[f"geo_w{workers}_p99_ms"] = result.p99_ms
                if baseline is not None:
                    figures[f"geo_w{workers}_raw_p99_ms"] = baseline.p99_ms
        if measure == "geo" and ours.get(1, {}).get("geo") is not None:
            print(f"    ({nil}, {args.geo_connections} connections)")
    return figures


def print_batch(batch: dict[str, float], args: argparse.Namespace) -> dict[str, float]:
    raw = batch["raw_copy"]
    size = f"({args.batch_entities:,} entities)"
    report("batch: raw COPY into a copy of entities", f"{raw:>9,.0f} rows/s {size}")
    report("batch: raw COPY, entities+types+geo rows", f"{batch['raw_copy_state']:>9,.0f} "
           "entities/s")
    for key, label in (("w1", "1w, history on"), ("w2", "2w, history on"),
                       ("w1_nohistory", "1w, history off")):
        ours = batch[key]
        report(f"batch upsert 1,000 x 10 attrs, {label}", f"{ours:>9,.0f} entities/s {size}",
               ">= 40% of raw COPY" if key != "w1_nohistory" else "",
               f"{ours / raw:.0%} of raw COPY")
    return {f"batch_{k}": v for k, v in batch.items()}


def print_scaling(figures: dict[str, float]) -> None:
    for measure, kind in (("retrieve", "reads"), ("query", "reads"), ("geo", "reads"),
                          ("patch", "writes"), ("batch", "writes")):
        one, two = figures.get(f"{measure}_w1"), figures.get(f"{measure}_w2")
        if one and two:
            report(f"1 -> 2 workers, {measure} ({kind})", f"x{two / one:.2f}",
                   "report")
            figures[f"{measure}_scaling"] = two / one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="retrieve,query,geo,patch,batch")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/",
                        help="PostgreSQL server (a role that may create databases)")
    parser.add_argument("--database", default="sinergia_bench")
    parser.add_argument("--keep", action="store_true",
                        help="keep the seeded database at the end, and reuse it if present")
    parser.add_argument("--million", type=int, default=1_000_000,
                        help="located entities seeded for query and geo")
    parser.add_argument("--sqlite-entities", dest="ids", type=int, default=100_000,
                        help="entities in the SQLite file; retrieve and patch pick ids "
                             "among the first this many")
    parser.add_argument("--batch-entities", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=4,
                        help="concurrent upsert clients (seeding, batch) and COPY connections")
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--geo-connections", type=int, default=8)
    parser.add_argument("--nil", type=int, help="NIL id of the within polygon "
                                                "(default: the one of median area)")
    parser.add_argument("--profile-dir", type=Path,
                        help="profile query, geo and batch with py-spy, files here")
    parser.add_argument("--profile-seconds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the set-up")
    parser.add_argument("--out", type=Path, default=Path("bench/results/postgres.json"))
    if "--quick" in sys.argv:  # small defaults; flags given explicitly still win
        parser.set_defaults(million=3000, ids=1000, batch_entities=3000, seconds=2,
                            profile_seconds=2, database="sinergia_bench_quick",
                            out=Path("bench/results/postgres-quick.json"))
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    args.ids = min(args.ids, args.million)
    nil, coordinates = nil_polygon(args.nil)
    ours_geo, raw_geo = geo_paths(coordinates)
    figures: dict[str, float] = {"entities": args.million}
    with bench_database(args.pg, args.database, keep=args.keep) as url, \
            tempfile.TemporaryDirectory() as tmp:
        print(f"PostgreSQL database {args.database}: {args.million:,} entities")
        seed_postgres(url, args.million, args.clients)
        sqlite_w1 = None
        split = CpuSplit(url)
        if "retrieve" in wanted:
            db = Path(tmp) / "sqlite.db"
            seed_sqlite(db, args.ids, args.clients)
            with sinergia_server(db) as server:
                # its CPU a request too: the comparison that other load hardly moves
                sqlite_w1 = split.measure(
                    "retrieve SQLite 1w", server,
                    lambda: wrk(server.base + "/", retrieve_lua(f"{ENTITIES}/", args.ids),
                                seconds=args.seconds, connections=args.connections),
                    lambda r: r.requests_per_s * args.seconds, database=False)
        if wanted & {"query", "geo"}:
            check_answers(url, (ours_geo, raw_geo), wanted)
        ours, batch = bench_postgres(url, args, wanted, ours_geo, split)
        raw = bench_raw(url, args, wanted, raw_geo)
        print("Figures")
        figures |= print_reads(ours, raw, sqlite_w1, args, nil)
        if batch:
            figures |= print_batch(batch, args)
        print_scaling(figures)
        split.print(figures)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2))
    print(f"figures written to {args.out}")


if __name__ == "__main__":
    main()
