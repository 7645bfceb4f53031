"""SQLite reads on worker threads share a pool of connections: threads come and go (anyio
retires idle ones; every event loop has its own), connections must not pile up with them."""

from __future__ import annotations

from pathlib import Path

import anyio

from sinergia.ngsild.query import EntityQuery
from sinergia.storage.base import Edit
from sinergia.storage.sqlite import SQLiteStore

T = "https://example.org/Lamp"


def test_reader_connections_outlive_worker_threads(tmp_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'pool.db'}", synchronous="normal", readers=2)
    lamp = {"id": "urn:ngsi-ld:Lamp:1", "type": [T], "attrs": {},
            "createdAt": "2026-01-01T00:00:00.000Z", "modifiedAt": "2026-01-01T00:00:00.000Z"}

    async def setup() -> None:
        await store.open()
        await store.apply("", [Edit(lamp["id"], lambda current: lamp)])

    async def read() -> list[str]:
        async with anyio.create_task_group() as tg:  # more queries at once than readers
            for _ in range(5):
                tg.start_soon(store.query_entities, "", EntityQuery(type=T))
        result = await store.query_entities("", EntityQuery(type=T))
        return [str(e["id"]) for e in result.entities]

    anyio.run(setup)
    try:
        for _ in range(6):  # a new event loop, hence new worker threads, each time
            assert anyio.run(read) == [lamp["id"]]
        assert len(store._all_readers) <= 2
    finally:
        anyio.run(store.close)
