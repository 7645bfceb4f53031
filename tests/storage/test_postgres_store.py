"""What the PostgreSQL store must do beyond the shared contract: survive a lost database
(503, then recovery by itself), keep concurrent writers atomic, refuse what PostgreSQL cannot
store, migrate safely, keep history partitions, and answer geo and q queries exactly as the
SQLite store does."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import pytest
from starlette.testclient import TestClient

from sinergia.api.app import create_app
from sinergia.ngsild.errors import AlreadyExists, BadRequestData, ServiceUnavailable
from sinergia.ngsild.geo import parse_geoq
from sinergia.ngsild.model import LOCATION, Entity
from sinergia.ngsild.qlang import parse_q, parse_scope_q, resolve_q
from sinergia.ngsild.query import EntityQuery, Selector
from sinergia.settings import Settings
from sinergia.storage.base import Edit, Store, open_store
from sinergia.storage.postgres_schema import LATEST, SchemaError

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]
V = "https://example.org/"


class Proxy:
    """A TCP relay to the database that the test can cut and restore: the network between
    Sinergia and PostgreSQL. Runs its own event loop in a thread."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port,
                                                 reuse_address=True)

    async def _stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()
        await self.server.wait_closed()

    def start(self) -> None:
        self._call(self._start())

    def stop(self) -> None:
        self._call(self._stop())

    def close(self) -> None:
        if self.server is not None and self.server.is_serving():
            self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    def url(self, url: str) -> str:
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2
                                         else host))


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[Proxy]:
    parts = urlsplit(postgres_url)
    relay = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    relay.start()
    try:
        yield relay
    finally:
        relay.close()


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[Store]:
    s = open_store(postgres_url)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def entity(n: int, **attrs: Any) -> Entity:
    return {"id": f"urn:ngsi-ld:X:{n}", "type": [V + "T"],
            "attrs": {V + k: [{"type": "Property", "value": v}] for k, v in attrs.items()}}


def put(new: Entity) -> Edit:
    return Edit(new["id"], lambda current: new)


async def until_recovered(store: Store, entity_id: str) -> Entity | None:
    """Ask until the store answers again (each failed try takes its connect timeout)."""
    with anyio.fail_after(120):
        while True:
            try:
                return await store.get_entity("", entity_id)
            except ServiceUnavailable:
                continue


# -- a database that goes away ------------------------------------------------------------------


async def test_unreachable_database_at_open_is_service_unavailable() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    s = open_store(f"postgresql://postgres@127.0.0.1:{port}/nothing", connect_timeout=1)
    with pytest.raises(ServiceUnavailable, match="Cannot connect"):
        await s.open()


async def test_lost_database_gives_503_then_the_store_recovers(postgres_url: str,
                                                               proxy: Proxy) -> None:
    s = open_store(proxy.url(postgres_url), connect_timeout=1)
    await s.open()
    try:
        await s.apply("", [put(entity(1, level=1))])
        proxy.stop()
        with pytest.raises(ServiceUnavailable, match=r"unavailable|Cannot connect|within"):
            await s.get_entity("", "urn:ngsi-ld:X:1")
        with pytest.raises(ServiceUnavailable):
            await s.apply("", [put(entity(2))])
        proxy.start()
        assert await until_recovered(s, "urn:ngsi-ld:X:1") == entity(1, level=1)
        (result,) = await s.apply("", [put(entity(2))])
        assert result.ok and await s.get_entity("", "urn:ngsi-ld:X:2") == entity(2)
    finally:
        await s.close()


def test_api_answers_503_problem_and_recovers(postgres_url: str, proxy: Proxy) -> None:
    settings = Settings(database_url=proxy.url(postgres_url), postgres_connect_timeout=1.0,
                        allow_remote_contexts=False)
    url = "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:1"
    with TestClient(create_app(settings)) as client:
        created = client.post("/ngsi-ld/v1/entities", json={
            "id": "urn:ngsi-ld:Streetlight:1", "type": "Streetlight",
            "powerState": {"type": "Property", "value": "on"}})
        assert created.status_code == 201, created.text
        proxy.stop()
        response = client.get(url)
        assert response.status_code == 503
        body = response.json()
        assert body["type"] == "https://uri.etsi.org/ngsi-ld/errors/ServiceUnavailable"
        assert "database" in body["detail"]
        proxy.start()
        deadline = time.monotonic() + 120  # each failed try takes the connect timeout
        while response.status_code == 503 and time.monotonic() < deadline:
            response = client.get(url)
        assert response.status_code == 200
        assert response.json()["powerState"]["value"] == "on"


async def test_statement_timeout_is_service_unavailable(postgres_url: str) -> None:
    import psycopg

    s = open_store(postgres_url, statement_timeout=0.5)
    await s.open()
    try:
        await s.apply("", [put(entity(1, level=1))])
        async with await psycopg.AsyncConnection.connect(postgres_url) as blocker:
            # another transaction holds the row: the edit waits for it until the timeout
            await blocker.execute("SELECT 1 FROM entities WHERE id = 'urn:ngsi-ld:X:1' "
                                  "FOR UPDATE")
            with pytest.raises(ServiceUnavailable, match=r"did not answer within 0\.5 s"):
                await s.apply("", [put(entity(1, level=2))])
            await blocker.rollback()
        assert await s.get_entity("", "urn:ngsi-ld:X:1") == entity(1, level=1)
    finally:
        await s.close()


# -- concurrent writers -------------------------------------------------------------------------


async def test_concurrent_creates_of_one_entity_let_exactly_one_win(store: Store) -> None:
    def create(current: Entity | None) -> Entity:
        if current is not None:
            raise AlreadyExists("exists")
        return entity(1)

    outcomes: list[bool] = []

    async def attempt() -> None:
        (result,) = await store.apply("", [Edit("urn:ngsi-ld:X:1", create)])
        outcomes.append(result.ok)

    async with anyio.create_task_group() as group:
        for _ in range(12):
            group.start_soon(attempt)
    assert sorted(outcomes) == [False] * 11 + [True]


async def test_concurrent_read_modify_writes_lose_no_update(store: Store) -> None:
    await store.apply("", [put(entity(1, level=0)), put(entity(2, level=0))])

    def bump(current: Entity | None) -> Entity:
        assert current is not None
        level = current["attrs"][V + "level"][0]["value"]
        return entity(int(current["id"].rsplit(":", 1)[1]), level=level + 1)

    async def bump_both(order: list[str]) -> None:
        await store.apply("", [Edit(i, bump) for i in order])

    async with anyio.create_task_group() as group:
        for n in range(20):  # half lock 1 then 2, half 2 then 1: no deadlock may surface
            ids = ["urn:ngsi-ld:X:1", "urn:ngsi-ld:X:2"]
            group.start_soon(bump_both, ids if n % 2 else ids[::-1])
    for n in (1, 2):
        assert await store.get_entity("", f"urn:ngsi-ld:X:{n}") == entity(n, level=20)


# -- bad input ----------------------------------------------------------------------------------


async def test_records_keep_any_json_string(store: Store) -> None:
    record = {"document": {"@context": {"a\x00": "http://a/\x00"}}, "n": 1e20}
    assert await store.put_record("context", "", "nul", record)
    assert await store.get_record("context", "", "nul") == record


async def test_nul_in_a_string_fails_that_edit_alone(store: Store) -> None:
    results = await store.apply("", [put(entity(1, name="a\x00b")), put(entity(2, name="ok"))])
    assert isinstance(results[0].error, BadRequestData)
    assert results[1].ok
    assert await store.get_entity("", "urn:ngsi-ld:X:1") is None
    assert await store.get_entity("", "urn:ngsi-ld:X:2") == entity(2, name="ok")
    literal = entity(3, name="\\u0000 is six characters")  # not a NUL: stored as is
    assert (await store.apply("", [put(literal)]))[0].ok
    assert await store.get_entity("", "urn:ngsi-ld:X:3") == literal
    assert await store.get_entity("", "urn:ngsi-ld:X:\x00") is None


# -- schema -------------------------------------------------------------------------------------


async def test_concurrent_first_opens_migrate_once(postgres_url: str) -> None:
    import psycopg

    stores = [open_store(postgres_url) for _ in range(4)]
    async with anyio.create_task_group() as group:
        for s in stores:
            group.start_soon(s.open)
    for s in stores:
        await s.close()
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cur = await conn.execute("SELECT version FROM sinergia_schema ORDER BY version")
        assert [v for (v,) in await cur.fetchall()] == list(range(1, LATEST + 1))


async def test_a_newer_schema_is_refused(postgres_url: str) -> None:
    import psycopg

    s = open_store(postgres_url)
    await s.open()
    await s.close()
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute("INSERT INTO sinergia_schema (version, name) VALUES (%s, 'future')",
                           (LATEST + 1,))
    with pytest.raises(SchemaError, match="newer"):
        await open_store(postgres_url).open()


async def test_history_partitions_are_made_ahead_and_dropped_whole(postgres_url: str) -> None:
    import psycopg

    s = open_store(postgres_url)
    await s.open()
    try:
        async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'history'::regclass")
            assert (await cur.fetchone()) == (3,)  # this month and the next two
        await s.apply("", [put(entity(1, level=1))])
        assert await s.purge_history(older_than_ms=0) == 0
        assert await s.purge_history(older_than_ms=2**62) == 1
        assert (await s.query_history("", _all_history())).entities[0].attrs == {}
    finally:
        await s.close()


def _all_history() -> Any:
    from sinergia.storage.base import HistoryQuery
    return HistoryQuery()


# -- same answers as SQLite ---------------------------------------------------------------------

PLACES = [(9.1916, 45.4641), (9.1796, 45.4705), (9.2040, 45.4860), (9.19, 45.46),
          (12.4964, 41.9028), (9.15, 45.49), (179.9, 0.0), (-179.9, 0.5), (9.18, 45.465)]
GEO_QUERIES = [
    ("near;maxDistance==1500", "Point", "[9.1916,45.4641]"),
    ("near;minDistance==1500", "Point", "[9.1916,45.4641]"),
    ("near;maxDistance==50000", "LineString", "[[179.0,0.0],[-179.0,0.0]]"),
    ("within", "Polygon", "[[[9.17,45.45],[9.21,45.45],[9.21,45.47],[9.17,45.47],[9.17,45.45]]]"),
    ("intersects", "Polygon",
     "[[[9.17,45.45],[9.21,45.45],[9.17,45.47],[9.21,45.47],[9.17,45.45]]]"),  # a bow-tie
    ("disjoint", "Point", "[9.19,45.46]"),
    ("equals", "Point", "[9.19,45.46]"),
    ("contains", "Point", "[9.20,45.465]"),
    ("overlaps", "Polygon", "[[[9.0,45.0],[9.3,45.0],[9.3,45.5],[9.0,45.5],[9.0,45.0]]]"),
]
Q_TEXTS = ["level>3", "level==2,4,6", 'name~="^p[0-9]$"', 'name~="(?i)P1"', "name!~=\"1\"",
           "level<=2|name==\"p7\"", "since>2026-01-01T00:00:00Z", "level==1..5;since"]


def _city() -> list[Entity]:
    entities = []
    for n, (lon, lat) in enumerate(PLACES):
        doc = entity(n, level=n, name=f"p{n}", since=f"2026-01-0{n % 9 + 1}T00:00:00+01:00")
        doc["attrs"][LOCATION] = [{"type": "GeoProperty", "value": {
            "type": "Point", "coordinates": [lon, lat]}}]
        if n % 3 == 0:  # some polygons and lines too
            doc["attrs"][LOCATION].append({"type": "GeoProperty", "datasetId": "urn:d:1", "value": {
                "type": "Polygon", "coordinates": [[[lon, lat], [lon + 0.01, lat],
                                                    [lon + 0.01, lat + 0.01], [lon, lat]]]}})
        if n % 4 == 1:
            doc["attrs"][LOCATION][0]["value"] = {"type": "LineString", "coordinates": [
                [lon, lat], [lon + 0.02, lat + 0.005]]}
        doc["scope"] = [f"/City/Zone{n % 3}/Block{n}"]
        entities.append(doc)
    return entities


async def test_queries_answer_exactly_as_on_sqlite(postgres_url: str, tmp_path: Path) -> None:
    stores = [open_store(postgres_url), open_store(f"sqlite:///{tmp_path / 'same.db'}")]
    for s in stores:
        await s.open()
    try:
        for s in stores:
            await s.apply("", [put(e) for e in _city()])
        queries = [EntityQuery(geo=parse_geoq(*g, LOCATION), limit=100, count=True)
                   for g in GEO_QUERIES]
        queries += [EntityQuery(type=V + "T", q=resolve_q(parse_q(t), lambda n: V + n),
                                limit=3, offset=1, count=True) for t in Q_TEXTS]
        queries += [EntityQuery(id_pattern=p, limit=100) for p in (r":[13]$", r"\d$", "X")]
        queries += [EntityQuery(type=V + "T", scope=parse_scope_q(p), limit=100)
                    for p in ("/City/+/Block1", "/City/Zone0/#", "/#")]
        queries += [EntityQuery(selectors=(Selector(id="urn:ngsi-ld:X:1"),
                                           Selector(id_pattern=p, type=V + "T")), limit=100)
                    for p in (r"[57]$", r"(?i)x:[68]$")]  # exact in SQL / checked in Python
        for query in queries:
            pg, lite = [await s.query_entities("", query) for s in stores]
            assert [e["id"] for e in pg.entities] == [e["id"] for e in lite.entities], query
            assert pg.count == lite.count, query
    finally:
        for s in stores:
            await s.close()
