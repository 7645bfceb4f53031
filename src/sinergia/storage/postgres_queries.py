"""Entity queries on the PostgreSQL schema: the SQL, how to run it, and the Python check that
completes it when SQL alone cannot be exact (regular expressions PostgreSQL cannot express, and
geo predicates, which are shapely's everywhere so that every backend answers alike). Every value
and every name from a request is a bound parameter.

Documents are fetched as JSON text (the stored ``doc_text``, no conversion from JSONB) and
handed over unparsed (``QueryResult.documents``): the API renders them through a cache keyed by
that text. Only the rows a Python check must see are parsed.

A geo-query with a bounding box starts from the candidates in that box: the stored Points come
from an index-only scan of ``entity_geo_points`` (their coordinates, no document read) and are
tested all at once with :func:`sinergia.ngsild.geo.filter_points`; other shapes come from the
GiST index and are tested on their documents. Then the documents of the matching entities are
read in rid order, a page at a time. A page without a count reads the Points in rid order a
chunk at a time and stops once the page is full; when the box covers a few cells of
:mod:`sinergia.storage.postgres_grid`, the chunks come merged from the grid's index.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from psycopg import AsyncConnection

from sinergia.ngsild.geo import Bbox, GeoQuery, filter_points, make_predicate, query_bbox
from sinergia.ngsild.qlang import compiled_regex, evaluate_q, match_types
from sinergia.ngsild.query import EntityQuery, QueryResult, Selector
from sinergia.storage.postgres_filters import (
    FALSE,
    compile_q,
    compile_scope,
    compile_types,
)
from sinergia.storage.postgres_grid import Statement, cells_of, points_after
from sinergia.storage.postgres_regex import to_are
from sinergia.storage.sql_common import Frag, concat, joined

Entity = dict[str, Any]
Conn = AsyncConnection[Any]

# Rows read per round trip when Python completes the filter: the first read is sized to the
# page (at most _SCAN_BATCH), each later one four times the last (at most _SCAN_MAX).
_SCAN_BATCH = 500
_SCAN_MAX = 5000


def _p(value: object, cast: str = "") -> Frag:
    return Frag("%s" + cast, (value,))


def _no_nul(names: tuple[str, ...]) -> list[str]:
    """The names that can exist: PostgreSQL text never holds U+0000."""
    return [n for n in names if "\x00" not in n]


@dataclass(frozen=True, slots=True)
class GeoPlan:
    """Where the box candidates of a geo-query come from (see the module's docstring), and
    the test of a whole document for the entities whose only candidates are not Points."""

    tenant: str
    attr: str
    box: Bbox
    query: GeoQuery
    check: Callable[[Entity], bool]


@dataclass(frozen=True, slots=True)
class Plan:
    """How to run one entity query: the SQL selecting the candidates in result order, and
    ``recheck`` — None when the SQL is exact, else the Python test a row must also pass (the
    caller then paginates and counts in Python). With ``geo``, the SQL also needs the rids of
    the geo candidates (``select(rids=…)``)."""

    sources: Frag
    where: Frag
    order: str
    recheck: Callable[[Entity], bool] | None
    geo: GeoPlan | None = None

    def select(self, *, limit: int | None = None, offset: int = 0, after: int | None = None,
               rids: list[int] | None = None) -> tuple[str, list[object]]:
        """(key, document text) rows in result order: from the start (``offset``) or after
        the key ``after``, at most ``limit``; only the rows of ``rids`` if given."""
        sql = (f"SELECT {self.order}, e.doc_text FROM {self.sources.sql} "  # noqa: S608
               f"WHERE {self.where.sql}")
        params: list[object] = [*self.sources.params, *self.where.params]
        if after is not None:
            sql += f" AND {self.order} > %s"
            params.append(after)
        if rids is not None:
            sql += " AND e.rid = ANY(%b::bigint[])"
            params.append(rids)
        sql += f" ORDER BY {self.order}"
        if limit is not None:
            sql += " LIMIT %s OFFSET %s"
            params.extend((limit, offset))
        return sql, params

    def count(self, *, rids: list[int] | None = None) -> tuple[str, list[object]]:
        sql = f"SELECT count(*) FROM {self.sources.sql} WHERE {self.where.sql}"  # noqa: S608
        params: list[object] = [*self.sources.params, *self.where.params]
        if rids is not None:
            sql += " AND e.rid = ANY(%b::bigint[])"
            params.append(rids)
        return sql, params


# Compiling a geo-query's test (reading its geometry, preparing it) costs more than a page of
# candidates' tests; a map or a dashboard asks with the same few geometries again and again.
_PREDICATES: OrderedDict[bytes, Callable[[dict[str, Any]], bool]] = OrderedDict()
_PREDICATES_KEPT = 64


def _predicate(geo: GeoQuery) -> Callable[[dict[str, Any]], bool]:
    key = orjson.dumps((geo.georel, geo.geometry, geo.max_distance, geo.min_distance))
    found = _PREDICATES.get(key)
    if found is None:
        found = _PREDICATES[key] = make_predicate(geo)
        if len(_PREDICATES) > _PREDICATES_KEPT:
            _PREDICATES.popitem(last=False)
    return found


def plan(tenant: str, query: EntityQuery) -> Plan:
    """The SQL of ``query``. A single type drives the scan from ``entity_types``' primary key
    (already in result order); a geo-query with a bounding box starts from its candidates."""
    sources = Frag("entities e")
    order = "e.rid"
    conds: list[Frag] = []
    checks: list[Callable[[Entity], bool]] = []
    geo = query.geo
    box = query_bbox(geo) if geo is not None else None
    single_type = (query.type if isinstance(query.type, str) and "\x00" not in query.type
                   else None)
    if single_type is not None and box is None:
        sources = Frag("entity_types t JOIN entities e ON e.tenant = t.tenant AND e.rid = t.rid")
        order = "t.rid"
        conds.append(concat("t.tenant = ", _p(tenant, "::text"), " AND t.type = ",
                            _p(single_type, "::text")))
    elif single_type is not None:
        # Looked up by rid for the few candidates read: cheaper than the document's types.
        conds.append(concat("EXISTS (SELECT 1 FROM entity_types t WHERE t.tenant = ",
                            _p(tenant, "::text"), " AND t.type = ", _p(single_type, "::text"),
                            " AND t.rid = e.rid)"))
    elif query.type is not None:
        types = compile_types(query.type)
        conds.append(Frag(types.sql, types.params))
    attrs_sql = "e.doc -> 'attrs'"
    q = None
    if query.q is not None:
        # Each comparison reads the attributes several times, and each read of the stored
        # (compressed) document would decompress all of it again: compile_q's lateral
        # subquery extracts them (and the instances it compares) once a row.
        q = compile_q(query.q, attrs=attrs_sql, lateral="a")
        assert q.sources is not None
        sources = concat(sources, q.sources)
        attrs_sql = "a.attrs"
    conds.append(concat("e.tenant = ", _p(tenant, "::text")))
    if query.ids:
        ids = _no_nul(query.ids)
        conds.append(concat("e.id = ANY(", _p(ids, "::text[]"), ")") if ids else FALSE)
    if query.id_pattern:
        are = to_are(query.id_pattern)
        if are is not None:
            conds.append(concat("e.id ~ ", _p(are, "::text")))
        else:
            regex = compiled_regex(query.id_pattern)
            checks.append(lambda entity: regex.search(str(entity["id"])) is not None)
    if query.selectors:
        selected, exact = _selectors(query.selectors)
        conds.append(selected)
        if not exact:
            chosen = query.selectors
            checks.append(lambda entity: any(_selects(s, entity) for s in chosen))
    if query.attrs:
        attrs = _no_nul(query.attrs)
        conds.append(concat(f"({attrs_sql}) ?| ", _p(attrs, "::text[]")) if attrs else FALSE)
    if q is not None and query.q is not None:
        conds.append(Frag(q.sql, q.params))
        if not q.exact:
            expr = query.q
            checks.append(lambda entity: evaluate_q(expr, entity))
    if query.scope is not None:
        scope = compile_scope(query.scope)
        conds.append(Frag(scope.sql, scope.params))
    geo_plan = None
    if geo is not None:
        predicate = _predicate(geo)
        attr = geo.geoproperty

        def near_enough(entity: Entity) -> bool:
            return any(predicate(instance["value"]) for instance in entity["attrs"].get(attr, ())
                       if isinstance(instance.get("value"), dict))
        if box is None:
            checks.append(near_enough)
        else:
            geo_plan = GeoPlan(tenant, attr, box, geo, near_enough)
    recheck = None
    if checks:
        def recheck(entity: Entity) -> bool:
            return all(check(entity) for check in checks)
    return Plan(sources, joined(conds, " AND "), order, recheck, geo_plan)


# -- running a plan -------------------------------------------------------------------------------


async def run_query(conn: Conn, how: Plan, query: EntityQuery) -> QueryResult:
    if how.geo is not None:
        return await _geo_query(conn, how, how.geo, query)
    if how.recheck is not None:
        return await _scan(conn, how, how.recheck, query)
    documents: list[str] = []
    if query.limit > 0:
        sql, params = how.select(limit=query.limit, offset=query.offset)
        cur = await conn.execute(sql, params)
        documents = [doc for _, doc in await cur.fetchall()]
    count = None
    if query.count:
        sql, params = how.count()
        cur = await conn.execute(sql, params)
        row = await cur.fetchone()
        count = int(row[0]) if row else 0
    return QueryResult(count=count, documents=documents)


class _Page:
    """The matching documents of a scan in result order: the page kept, every one counted."""

    def __init__(self, query: EntityQuery) -> None:
        self.offset, self.wanted = query.offset, query.offset + query.limit
        self.documents: list[str] = []
        self.total = 0

    @property
    def full(self) -> bool:
        return len(self.documents) >= self.wanted

    def add(self, document: str) -> None:
        self.total += 1
        if not self.full:
            self.documents.append(document)

    def result(self, query: EntityQuery) -> QueryResult:
        return QueryResult(count=self.total if query.count else None,
                           documents=self.documents[self.offset:self.wanted])


async def _scan(conn: Conn, how: Plan, keep: Callable[[Entity], bool],
                query: EntityQuery) -> QueryResult:
    """Python completes the filter: read the candidates in order, a batch a round trip
    (continuing after the last key read), until the page is full (or, to count, to the end)."""
    page = _Page(query)
    after: int | None = None
    batch = max(64, min(_SCAN_BATCH, 2 * page.wanted))  # one batch is often enough
    while query.count or not page.full:
        sql, params = how.select(limit=batch, after=after)
        cur = await conn.execute(sql, params)
        rows = await cur.fetchall()
        for _, doc in rows:
            if keep(orjson.loads(doc)):
                page.add(doc)
        if len(rows) < batch:
            break
        after = rows[-1][0]
        batch = min(4 * batch, _SCAN_MAX)
    return page.result(query)


# The candidates in the box: the Points' rids and coordinates (packed big-endian, for numpy),
# and the entities with another shape there. _BOX_POINTS_AFTER reads them in rid order, a
# chunk at a time: a page without a count needs only the first matches, not every point in
# the box (a neighbourhood of a city of 1M entities has thousands).
_BOX_POINTS = (
    "SELECT string_agg(int8send(rid), ''::bytea), string_agg(float8send(pt[0]), ''::bytea), "
    "string_agg(float8send(pt[1]), ''::bytea) FROM entity_geo WHERE pt IS NOT NULL "
    "AND pt <@ box(point(%s, %s), point(%s, %s)) AND tenant = %s AND attr = %s")
_BOX_POINTS_AFTER = (
    "SELECT string_agg(int8send(rid), ''::bytea ORDER BY rid), "
    "string_agg(float8send(pt[0]), ''::bytea ORDER BY rid), "
    "string_agg(float8send(pt[1]), ''::bytea ORDER BY rid), count(*) FROM ("
    "SELECT rid, pt FROM entity_geo WHERE pt IS NOT NULL "
    "AND pt <@ box(point(%s, %s), point(%s, %s)) AND tenant = %s AND attr = %s AND rid > %s "
    "ORDER BY rid LIMIT %s) c")
_BOX_SHAPES = (
    "SELECT DISTINCT rid FROM entity_geo WHERE pt IS NULL "
    "AND geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326) AND tenant = %s AND attr = %s")


def _point_hits(geo: GeoPlan, packed: tuple[Any, ...] | None) -> np.ndarray[Any, Any]:
    """The sorted distinct rids of the packed Points that pass the geo-query."""
    if packed is None or packed[0] is None:
        return np.empty(0, dtype=np.int64)
    rids = np.frombuffer(packed[0], dtype=">i8")
    hits = filter_points(geo.query, np.frombuffer(packed[1], dtype=">f8"),
                         np.frombuffer(packed[2], dtype=">f8"))
    return np.unique(rids[np.asarray(hits, dtype=bool)]).astype(np.int64)


async def _geo_query(conn: Conn, how: Plan, geo: GeoPlan, query: EntityQuery) -> QueryResult:
    if not query.count:
        return await _geo_page(conn, how, geo, query)
    minx, miny, maxx, maxy = (float(c) for c in geo.box)
    params = (minx, miny, maxx, maxy, geo.tenant, geo.attr)
    async with conn.pipeline():
        points = await conn.execute(_BOX_POINTS, params)
        shapes = await conn.execute(_BOX_SHAPES, params)
    matched = _point_hits(geo, await points.fetchone())  # sorted, once each
    unsure = {rid for (rid,) in await shapes.fetchall()}
    if unsure:
        unsure.difference_update(matched.tolist())
        matched = np.union1d(matched, np.fromiter(unsure, dtype=np.int64, count=len(unsure)))
    candidates: list[int] = matched.tolist()
    page = _Page(query)
    keep = how.recheck
    start, size = 0, max(16, page.wanted)
    while start < len(candidates):
        chunk = candidates[start:start + size]
        start += len(chunk)
        if page.full and keep is None:
            # Only counting now, and SQL decides the entities whose Points matched.
            known = [rid for rid in chunk if rid not in unsure]
            if known:
                sql, sql_params = how.count(rids=known)
                cur = await conn.execute(sql, sql_params)
                row = await cur.fetchone()
                page.total += int(row[0]) if row else 0
            chunk = [rid for rid in chunk if rid in unsure]
            if not chunk:
                continue
        await _add_documents(conn, how, geo, chunk, page, unsure=unsure, whole=True,
                             first=len(chunk))
        size = min(2 * size, _SCAN_MAX)
    return page.result(query)


def _points_after(geo: GeoPlan) -> Callable[[int, int], Statement]:
    """The statement and parameters reading the next chunk of the box's Points (after a rid,
    at most a size): from the grid when it serves the box, else from the SP-GiST index."""
    minx, miny, maxx, maxy = (float(c) for c in geo.box)
    bounds = (minx, miny, maxx, maxy)
    cells = cells_of(bounds)
    if cells is not None:
        return points_after(cells, bounds, geo.tenant, geo.attr)
    return lambda after, size: (_BOX_POINTS_AFTER, (*bounds, geo.tenant, geo.attr, after, size))


async def _geo_page(conn: Conn, how: Plan, geo: GeoPlan, query: EntityQuery) -> QueryResult:
    """A page without a count: the box's Points in rid order, a chunk at a time (each four
    times the last), the matches of each chunk and the other shapes up to the same rid read,
    until the page is full or the box is exhausted."""
    minx, miny, maxx, maxy = (float(c) for c in geo.box)
    box = (minx, miny, maxx, maxy, geo.tenant, geo.attr)
    page = _Page(query)
    size = min(_SCAN_MAX, 2 * page.wanted + 64)
    after = -1  # rids are positive
    points_after = _points_after(geo)
    async with conn.pipeline():
        points = await conn.execute(*points_after(after, size))
        shapes = await conn.execute(_BOX_SHAPES, box)
    packed = await points.fetchone()
    unsure = sorted(rid for (rid,) in await shapes.fetchall())
    taken = 0  # how many of ``unsure`` are merged already
    while True:
        assert packed is not None
        complete = int(packed[3]) < size
        hits = _point_hits(geo, packed)
        if complete:
            upto = None
        else:
            # The last rid read may have more Points beyond the limit: it is read again with
            # the next chunk, whole. A chunk of one rid's Points alone is read larger.
            last = int(np.frombuffer(packed[0], dtype=">i8")[-1])
            upto = last - 1
            hits = hits[hits <= upto]
        end = len(unsure) if upto is None else bisect_right(unsure, upto, lo=taken)
        shapes_here = unsure[taken:end]
        taken = end
        if upto is None or upto > after:
            candidates = np.union1d(hits, np.asarray(shapes_here, dtype=np.int64)).tolist()
            shape_set = set(shapes_here).difference(hits.tolist())
            await _add_documents(conn, how, geo, candidates, page, unsure=shape_set)
            if upto is not None:
                after = upto
        if page.full or upto is None:
            return page.result(query)
        size *= 4  # uncapped: a chunk of one entity's Points alone must grow past them
        cur = await conn.execute(*points_after(after, size))
        packed = await cur.fetchone()


async def _add_documents(conn: Conn, how: Plan, geo: GeoPlan, candidates: list[int],
                         page: _Page, *, unsure: set[int], whole: bool = False,
                         first: int | None = None) -> None:
    """Add the documents of ``candidates`` (rids in order) that pass the rest of the query,
    until the page is full (``whole``: all of them, to count; ``first``: the size of the
    first read, by default what the page still wants). The entities of ``unsure`` had no
    matching Point: their other shapes decide, on the document."""
    keep = how.recheck
    start = 0
    size = first if first is not None else max(16, page.wanted - len(page.documents))
    while start < len(candidates) and (whole or not page.full):
        chunk = candidates[start:start + size]
        start += len(chunk)
        sql, sql_params = how.select(rids=chunk)
        cur = await conn.execute(sql, sql_params)
        for rid, doc in await cur.fetchall():
            if rid in unsure or keep is not None:
                entity = orjson.loads(doc)
                if rid in unsure and not geo.check(entity):
                    continue
                if keep is not None and not keep(entity):
                    continue
            page.add(doc)
        size = min(2 * size, _SCAN_MAX)


def _selectors(selectors: tuple[Selector, ...]) -> tuple[Frag, bool]:
    """Any of the selectors, each the AND of its id, id pattern and type expression; and
    whether that SQL is exact (an id pattern without an exact translation is left out of it,
    a superset, for Python to decide)."""
    alternatives: list[Frag] = []
    exact = True
    for selector in selectors:
        terms: list[Frag] = []
        if selector.id is not None:
            terms.append(FALSE if "\x00" in selector.id
                         else concat("e.id = ", _p(selector.id, "::text")))
        if selector.id_pattern is not None:
            are = to_are(selector.id_pattern)
            if are is None:
                exact = False
            else:
                terms.append(concat("e.id ~ ", _p(are, "::text")))
        if selector.type is not None:
            types = compile_types(selector.type)
            terms.append(Frag(types.sql, types.params))
        alternatives.append(concat("(", joined(terms, " AND "), ")") if terms else Frag("true"))
    return concat("(", joined(alternatives, " OR "), ")"), exact


def _selects(selector: Selector, entity: Entity) -> bool:
    entity_id = str(entity["id"])
    return ((selector.id is None or entity_id == selector.id)
            and (selector.id_pattern is None
                 or compiled_regex(selector.id_pattern).search(entity_id) is not None)
            and (selector.type is None or match_types(selector.type, entity["type"])))
