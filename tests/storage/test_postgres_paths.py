"""The PostgreSQL store's fast paths answer exactly as the plain ones: geo-queries that start
from the point index or the grid of cells (paged, offset, counted, mixed with other shapes and
other filters, the same answers as SQLite), coalesced look-ups by id, documents with
characters that need escaping, and a database migrated from the schema before the point
index."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from sinergia.ngsild.geo import GeoQuery, parse_geoq, query_bbox
from sinergia.ngsild.model import LOCATION, Entity
from sinergia.ngsild.qlang import parse_q, resolve_q
from sinergia.ngsild.query import EntityQuery
from sinergia.storage import postgres_grid
from sinergia.storage.base import Edit, HistoryQuery, Store, open_store
from sinergia.storage.postgres_grid import cells_of

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]
V = "https://example.org/"
SQUARE = "[[[9.10,45.40],[9.20,45.40],[9.20,45.50],[9.10,45.50],[9.10,45.40]]]"


def located(n: int, lon: float, lat: float, *, kind: str = "T",
            shape: dict[str, Any] | None = None) -> Entity:
    instances: list[dict[str, Any]] = [{"type": "GeoProperty", "value": {
        "type": "Point", "coordinates": [lon, lat]}}]
    if shape is not None:
        instances.append({"type": "GeoProperty", "datasetId": "urn:d:shape", "value": shape})
    return {"id": f"urn:ngsi-ld:X:{n}", "type": [V + kind],
            "attrs": {LOCATION: instances, V + "level": [{"type": "Property", "value": n % 7}]}}


def put(new: Entity) -> Edit:
    return Edit(new["id"], lambda current: new)


def _city(count: int) -> list[Entity]:
    """Points in and around SQUARE, every third of another type, some with a second shape (a
    line crossing into the square from outside, or a polygon lying outside it)."""
    rng = random.Random(4)
    entities = []
    for n in range(count):
        lon, lat = rng.uniform(9.05, 9.25), rng.uniform(45.35, 45.55)
        shape = None
        if n % 10 == 3:
            shape = {"type": "LineString", "coordinates": [[9.0, 45.45], [9.15, 45.45]]}
        elif n % 10 == 7:
            shape = {"type": "Polygon", "coordinates": [[[9.3, 45.3], [9.4, 45.3], [9.4, 45.4],
                                                         [9.3, 45.3]]]}
        entities.append(located(n, lon, lat, kind="T" if n % 3 else "U", shape=shape))
    return entities


@pytest.fixture
async def stores(postgres_url: str, tmp_path: Path) -> AsyncIterator[list[Store]]:
    opened = [open_store(postgres_url), open_store(f"sqlite:///{tmp_path / 'same.db'}")]
    for s in opened:
        await s.open()
    try:
        yield opened
    finally:
        for s in opened:
            await s.close()


async def test_geo_queries_page_and_count_as_on_sqlite(stores: list[Store]) -> None:
    for s in stores:
        await s.apply("", [put(e) for e in _city(400)])
    level = resolve_q(parse_q("level>2"), lambda name: V + name)
    queries = []
    for georel in ("within", "intersects", "near;maxDistance==4000"):
        geometry, coordinates = (("Point", "[9.15,45.45]") if georel.startswith("near")
                                 else ("Polygon", SQUARE))
        geo = parse_geoq(georel, geometry, coordinates, LOCATION)
        for limit, offset in ((5, 0), (30, 7), (100, 0), (0, 0), (40, 200)):
            queries.append(EntityQuery(geo=geo, limit=limit, offset=offset, count=True))
            queries.append(EntityQuery(geo=geo, type=V + "T", limit=limit, offset=offset,
                                       count=offset == 7))
            queries.append(EntityQuery(geo=geo, q=level, id_pattern=r"[13579]$",
                                       limit=limit, offset=offset, count=True))
    for query in queries:
        pg, lite = [await s.query_entities("", query) for s in stores]
        assert [e["id"] for e in pg.entities] == [e["id"] for e in lite.entities], query
        assert pg.count == lite.count, query


@pytest.mark.parametrize("grid", [True, False], ids=["grid", "spgist"])
async def test_geo_pages_read_in_chunks_answer_as_on_sqlite(
        stores: list[Store], grid: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages without a count read the box's Points a chunk at a time in rid order (from the
    grid's cells, or from the SP-GiST index): entities with many Points (more than a first
    chunk holds, some inside and some outside the polygon) must be judged on all of them, and
    other shapes merged in order."""
    if not grid:
        monkeypatch.setattr(postgres_grid, "MAX_CELLS", 0)
    box = query_bbox(parse_geoq("within", "Polygon", SQUARE, LOCATION))
    assert box is not None and (cells_of(box) is not None) == grid
    rng = random.Random(9)
    entities = []
    for n in range(300):
        points = 1 if n % 5 else rng.choice((2, 3, 90, 400))
        instances: list[dict[str, Any]] = [
            {"type": "GeoProperty", "datasetId": f"urn:d:{k}", "value": {
                "type": "Point", "coordinates": [rng.uniform(9.05, 9.25),
                                                 rng.uniform(45.35, 45.55)]}}
            for k in range(points)]
        if n % 11 == 4:
            instances.append({"type": "GeoProperty", "datasetId": "urn:d:line", "value": {
                "type": "LineString", "coordinates": [[9.0, 45.45], [9.15, 45.45]]}})
        entities.append({"id": f"urn:ngsi-ld:X:{n}", "type": [V + ("T" if n % 3 else "U")],
                         "attrs": {LOCATION: instances}})
    for s in stores:
        await s.apply("", [put(e) for e in entities])
    for georel in ("within", "intersects", "disjoint"):
        await pages_agree(stores, parse_geoq(georel, "Polygon", SQUARE, LOCATION))


async def pages_agree(stores: list[Store], geo: GeoQuery) -> None:
    """Pages at several offsets, with and without a type, are SQLite's; each early page of
    the city has matches."""
    for limit, offset in ((1, 0), (3, 2), (10, 0), (25, 40), (100, 0), (200, 150)):
        for type_ in (None, V + "T"):
            query = EntityQuery(geo=geo, type=type_, limit=limit, offset=offset)
            pg, lite = [await s.query_entities("", query) for s in stores]
            assert [e["id"] for e in pg.entities] == [e["id"] for e in lite.entities], query
            assert pg.entities or offset >= 100, query


# A concave block a few grid cells wide (postgres_grid): its pages read the cells' Points
# merged in rid order.
BLOCK = ("[[[9.171,45.461],[9.199,45.462],[9.2,45.489],[9.185,45.47],[9.17,45.488],"
         "[9.171,45.461]]]")


async def test_geo_pages_from_grid_cells_answer_as_on_sqlite(stores: list[Store]) -> None:
    """Also entities with many Points (more than a first chunk, spread over several cells:
    the same rid comes from several cells' ranges)."""
    rng = random.Random(12)
    entities = []
    for n in range(600):
        lon, lat = rng.uniform(9.16, 9.21), rng.uniform(45.45, 45.50)
        if n % 4 == 0:  # on the cells' edges
            lon, lat = round(lon, 2), round(lat, 2)
        entity = located(n, lon, lat, kind="T" if n % 3 else "U")
        if n % 50 == 5:
            entity["attrs"][LOCATION] += [
                {"type": "GeoProperty", "datasetId": f"urn:d:{k}", "value": {
                    "type": "Point", "coordinates": [rng.uniform(9.16, 9.21),
                                                     rng.uniform(45.45, 45.50)]}}
                for k in range(rng.choice((2, 90)))]
        entities.append(entity)
    for s in stores:
        await s.apply("", [put(e) for e in entities])
    for georel in ("within", "intersects"):
        geo = parse_geoq(georel, "Polygon", BLOCK, LOCATION)
        box = query_bbox(geo)
        assert box is not None and cells_of(box) is not None  # the grid serves this block
        await pages_agree(stores, geo)


async def test_grid_cells_of_stored_points_are_those_of_their_boxes(
        stores: list[Store], postgres_url: str) -> None:
    """The cell PostgreSQL computes for a Point is among the cells the query side computes for
    any box holding it: on cell edges, at the ends of the lon/lat range, around zero."""
    import psycopg

    pg = stores[0]
    edges = [(9.18, 45.47), (-180.0, -90.0), (180.0, 90.0), (0.0, 0.0), (-0.01, -0.01),
             (-1e-9, 1e-9), (179.995, -89.995), (9.1799999999, 45.4700000001)]
    await pg.apply("", [put(located(n, lon, lat)) for n, (lon, lat) in enumerate(edges)])
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cur = await conn.execute("SELECT ST_X(geom), ST_Y(geom), cell FROM entity_geo")
        rows = await cur.fetchall()
    assert len(rows) == len(edges)
    for x, y, cell in rows:
        assert cell is not None
        for box in ((x, y, x + 0.01, y + 0.01), (x - 0.01, y - 0.01, x, y),
                    (x - 0.006, y - 0.007, x + 0.005, y + 0.004)):
            cells = cells_of(box, min_cover=0)
            assert cells is not None and cell in cells, (x, y, box)


async def test_geo_index_follows_moves_and_removals(stores: list[Store]) -> None:
    pg = stores[0]
    inside = located(1, 9.15, 45.45)
    await pg.apply("", [put(inside), put(located(2, 9.16, 45.46))])
    within = EntityQuery(geo=parse_geoq("within", "Polygon", SQUARE, LOCATION), count=True)
    assert (await pg.query_entities("", within)).count == 2
    await pg.apply("", [put(located(1, 12.49, 41.89)), Edit("urn:ngsi-ld:X:2", lambda c: None)])
    assert (await pg.query_entities("", within)).count == 0
    await pg.apply("", [put(inside)])
    assert [e["id"] for e in (await pg.query_entities("", within)).entities] == [inside["id"]]


async def test_concurrent_lookups_each_get_their_own_entity(stores: list[Store]) -> None:
    pg = stores[0]
    await pg.apply("", [put(located(n, 9.1, 45.4)) for n in range(20)])
    await pg.apply("other", [put(located(n, 9.2, 45.5, kind="U")) for n in range(10)])
    wanted = [(tenant, n) for n in range(25) for tenant in ("", "other")]
    found: dict[tuple[str, int], Entity | None] = {}

    async def get(tenant: str, n: int) -> None:
        found[tenant, n] = await pg.get_entity(tenant, f"urn:ngsi-ld:X:{n}")

    async with anyio.create_task_group() as group:
        for tenant, n in wanted * 2:
            group.start_soon(get, tenant, n)
    for (tenant, n), entity in found.items():
        if tenant == "" and n < 20:
            assert entity == located(n, 9.1, 45.4)
        elif tenant == "other" and n < 10:
            assert entity == located(n, 9.2, 45.5, kind="U")
        else:
            assert entity is None
    first = await pg.get_entity("", "urn:ngsi-ld:X:1")
    assert first is not None
    first["attrs"].clear()  # each caller owns its copy
    assert await pg.get_entity("", "urn:ngsi-ld:X:1") == located(1, 9.1, 45.4)


async def test_a_lookup_sees_the_write_that_preceded_it(stores: list[Store]) -> None:
    pg = stores[0]
    for n in range(30):
        await pg.apply("", [put(located(n, 9.1, 45.4))])
        assert await pg.get_entity("", f"urn:ngsi-ld:X:{n}") == located(n, 9.1, 45.4)


async def test_documents_that_need_escaping_round_trip(stores: list[Store]) -> None:
    pg = stores[0]
    text = 'quote " backslash \\ tab \t newline \n {"json": [1]} é 漢字 🚦 \\u0000'
    tricky = located(1, 9.15, 45.45)
    tricky["attrs"][V + "note"] = [{"type": "Property", "value": text}]
    tricky["attrs"][V + 'we"ird\\name'] = [{"type": "Property", "value": [text, {text: text}]}]
    await pg.apply("", [put(tricky), put(located(2, 9.15, 45.45))])
    assert await pg.get_entity("", tricky["id"]) == tricky
    found = await pg.query_entities("", EntityQuery(
        q=resolve_q(parse_q(f"note=={orjson.dumps(text).decode()}"), lambda n: V + n)))
    assert [e["id"] for e in found.entities] == [tricky["id"]]
    history = await pg.query_history("", HistoryQuery(ids=(tricky["id"],)))
    (recorded,) = history.entities
    assert recorded.attrs[V + "note"][0]["value"] == text
    assert recorded.attrs[V + 'we"ird\\name'][0]["value"] == [text, {text: text}]


async def test_a_write_recreates_a_history_partition_dropped_behind_its_back(
        postgres_url: str) -> None:
    import psycopg

    s = open_store(postgres_url)
    await s.open()
    try:
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
            cur = await conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'history'::regclass")
            for (name,) in await cur.fetchall():  # every month, this one included
                await conn.execute(f'DROP TABLE "{name}"')
        (result,) = await s.apply("", [put(located(1, 9.15, 45.45))])
        assert result.ok
        history = await s.query_history("", HistoryQuery(ids=("urn:ngsi-ld:X:1",)))
        assert set(history.entities[0].attrs) == {LOCATION, V + "level"}
    finally:
        await s.close()


async def test_a_database_from_before_the_point_index_is_migrated(postgres_url: str) -> None:
    import psycopg

    from sinergia.storage.postgres_schema import LATEST, MIGRATIONS

    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE sinergia_schema (version integer PRIMARY KEY, "
                           "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        for number, migration in enumerate(MIGRATIONS[:2], start=1):
            await conn.execute(migration.sql)
            await conn.execute("INSERT INTO sinergia_schema (version, name) VALUES (%s, %s)",
                               (number, migration.name))
        # what the version 2 store wrote for one located entity
        doc = located(1, 9.15, 45.45)
        await conn.execute("INSERT INTO entities (tenant, rid, id, doc) VALUES ('', 1, %s, %s)",
                           (doc["id"], orjson.dumps(doc).decode()))
        await conn.execute("INSERT INTO entity_types (tenant, type, rid) VALUES ('', %s, 1)",
                           (V + "T",))
        await conn.execute("INSERT INTO entity_geo (tenant, rid, attr, n, geom) VALUES ('', 1, "
                           "%s, 0, ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326))",
                           (LOCATION, orjson.dumps(doc["attrs"][LOCATION][0]["value"]).decode()))
        await conn.execute("SELECT setval('entity_rid', 1)")
    s = open_store(postgres_url, migrate="all")
    await s.open()
    try:
        within = EntityQuery(geo=parse_geoq("within", "Polygon", SQUARE, LOCATION), count=True)
        result = await s.query_entities("", within)
        assert [e["id"] for e in result.entities] == [doc["id"]] and result.count == 1
        await s.apply("", [put(located(2, 9.16, 45.46))])
        assert (await s.query_entities("", within)).count == 2
    finally:
        await s.close()
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cur = await conn.execute("SELECT max(version) FROM sinergia_schema")
        assert await cur.fetchone() == (LATEST,)
