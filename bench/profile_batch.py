"""In-process CPU cost of the write path (issue 2): batch upsert of 1,000 x 10-attribute
entities, and one-entity create / partial update, through the ASGI app on SQLite (history on),
measured with ``time.process_time`` (every thread of the process, the writer's included).

    .venv/bin/python -m bench.profile_batch                    # figures
    .venv/bin/python -m bench.profile_batch --profile batch    # + cProfile of the batch run

Prints CPU microseconds per entity (batch) and per request (create, patch) and, for the batch,
the ratio to a raw SQLite ``executemany`` of the stored documents measured in the same run.
CPU time, unlike wall time, is little disturbed by other work on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.bench_broker import ENTITIES, UPSERT, batches, raw_executemany
from sinergia.api.app import create_app
from sinergia.api.asgi import tune_gc
from sinergia.settings import Settings

JSON = [(b"content-type", b"application/json")]
CONCURRENCY = 32


class _Client:
    """Calls the ASGI app directly (no HTTP client in the measured CPU time)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def request(self, method: str, path: str, body: bytes,
                      query: str = "") -> tuple[int, bytes]:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
                 "query_string": query.encode(), "root_path": "", "server": ("t", 80),
                 "client": ("127.0.0.1", 1),
                 "headers": [(b"host", b"t"), (b"content-length", str(len(body)).encode()),
                             *JSON]}
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


async def _run(db: Path, batch_count: int, singles: int, profile: str | None,
               synchronous: str) -> dict[str, float]:
    settings = Settings(database_url=f"sqlite:///{db}", sqlite_synchronous=synchronous,
                        allow_remote_contexts=False)
    app = create_app(settings)
    tune_gc()  # as the server's entry point does
    bodies = batches(batch_count * 1000, 1000, seed=11, start=10_000_000)
    rng = random.Random(3)
    out: dict[str, float] = {}
    async with app.router.lifespan_context(app):
        http = _Client(app)
        # warm-up: one batch (contexts, caches, statements)
        await http.request("POST", UPSERT, batches(1000, 1000, seed=1, start=0)[0])
        profiler = cProfile.Profile() if profile == "batch" else None
        started = time.process_time()
        if profiler:
            profiler.enable()
        for body in bodies:
            status, text = await http.request("POST", UPSERT, body)
            assert status in (201, 204), (status, text[:300])
        if profiler:
            profiler.disable()
        out["batch_us_per_entity"] = (time.process_time() - started) / (
            batch_count * 1000) * 1e6
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(35)

        profiler = cProfile.Profile() if profile == "write" else None
        if profiler:
            profiler.enable()
        async def create(n: int) -> None:
            body = orjson.dumps({"id": f"urn:ngsi-ld:Sensor:{n}", "type": "Sensor",
                                 "temperature": {"type": "Property", "value": 21.5},
                                 "humidity": {"type": "Property", "value": 40}})
            status, text = await http.request("POST", ENTITIES, body)
            assert status == 201, text[:300]

        async def patch(n: int) -> None:
            body = orjson.dumps({"dimmingLevel": {"type": "Property",
                                                  "value": rng.randint(0, 100)}})
            status, text = await http.request(
                "PATCH", f"{ENTITIES}/urn:ngsi-ld:Streetlight:{n}/attrs", body)
            assert status == 204, text[:300]

        # CONCURRENCY requests in flight, as wrk's connections keep them: the writer groups
        # them into one transaction as it does in service.
        started = time.process_time()
        for first in range(0, singles, CONCURRENCY):
            await asyncio.gather(*(create(n) for n in range(first, first + CONCURRENCY)))
        out["create_us_per_request"] = (time.process_time() - started) / singles * 1e6
        started = time.process_time()
        for _ in range(0, singles, CONCURRENCY):
            await asyncio.gather(*(patch(rng.randrange(1000)) for _ in range(CONCURRENCY)))
        out["patch_us_per_request"] = (time.process_time() - started) / singles * 1e6
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--singles", type=int, default=2000)
    parser.add_argument("--profile", choices=["batch", "write"])
    parser.add_argument("--synchronous", default="full", choices=["full", "normal"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "profile.db"
        figures = asyncio.run(_run(db, args.batches, args.singles, args.profile,
                                   args.synchronous))
        conn = sqlite3.connect(db)
        rows = conn.execute("SELECT id, doc FROM entities WHERE id LIKE "
                            "'urn:ngsi-ld:Streetlight:1____%' ORDER BY rid").fetchall()
        conn.close()
    started = time.process_time()
    raw_executemany(rows)
    raw_us = (time.process_time() - started) / len(rows) * 1e6
    batch_us = figures["batch_us_per_entity"]
    print(f"batch upsert     {batch_us:8.1f} us CPU/entity   raw executemany {raw_us:6.1f} "
          f"us CPU/row   ratio {raw_us / batch_us:.1%}   (=> {1e6 / batch_us:,.0f} entities/s "
          "on one core)")
    print(f"create           {figures['create_us_per_request']:8.1f} us CPU/request")
    print(f"partial update   {figures['patch_us_per_request']:8.1f} us CPU/request")


if __name__ == "__main__":
    main()
