"""Geo-queries on the SQLite store: R*Tree candidates, exact predicate, pagination.

The candidates come from the index alone (no entity row is read for them); those whose indexed
box is provably out of reach are dropped; the documents of the rest are read in row-id order a
slice at a time, so a page that fills early reads few. Ids and documents come from one
snapshot: one connection, in one read transaction.

SQLite runs on a worker thread; the documents are parsed and tested on the calling (event
loop) thread, which renders them next anyway. Python work on a reader thread only contends
with the event loop for the GIL: doing it there cost ~20% more CPU a request.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import anyio.to_thread
import orjson

from sinergia.ngsild.geo import boxes_out_of_reach, make_predicate
from sinergia.ngsild.model import Entity
from sinergia.ngsild.query import EntityQuery, QueryResult
from sinergia.storage.sqlite_queries import candidates_sql, geo_candidates_sql, select_sql

# Documents read in a slice of candidates: the first a little more than the page needs (most
# candidates left after the box test match), then twice as many each time.
_SLICE_MIN, _SLICE_MAX = 16, 500


async def geo_query(conn: sqlite3.Connection, tenant: str, query: EntityQuery) -> QueryResult:
    """The page of entities ``query`` (which has a geo-query) selects, read with ``conn``, a
    connection the caller has to itself until this returns."""
    assert query.geo is not None
    predicate = make_predicate(query.geo)
    attr = query.geo.geoproperty
    wanted = query.offset + query.limit
    docs: list[str] = []
    entities: list[Entity] = []
    count = 0
    # BEGIN and COMMIT of a read transaction take no time: on this thread, so that no
    # cancellation can come between them and the connection's return to its pool.
    conn.execute("BEGIN")
    try:
        rids = await anyio.to_thread.run_sync(_candidates, conn, tenant, query)
        start = 0
        step = _SLICE_MAX if query.count else max(_SLICE_MIN, wanted + wanted // 8)
        while start < len(rids) and (query.count or len(docs) < wanted):
            step = min(step, _SLICE_MAX)  # SQLite allows 999 parameters in old builds
            chunk = rids[start:start + step]
            start += step
            step *= 2
            found = await anyio.to_thread.run_sync(_documents, conn, tenant, query, chunk)
            for rid in chunk:
                doc = found.get(rid)
                if doc is None:
                    continue
                entity = orjson.loads(doc)
                if not any(predicate(instance["value"])
                           for instance in entity["attrs"].get(attr, ())
                           if isinstance(instance.get("value"), dict)):
                    continue
                count += 1
                if len(docs) < wanted:
                    docs.append(doc)
                    entities.append(entity)
                elif not query.count:
                    break
    finally:
        conn.execute("COMMIT")
    return QueryResult(entities[query.offset:wanted], count if query.count else None,
                       documents=docs[query.offset:wanted])


def _candidates(conn: sqlite3.Connection, tenant: str, query: EntityQuery) -> list[int]:
    """Row ids, ascending, of the entities that may match the geo-query: those with an
    indexed geometry in the query's box that is not provably out of reach, or (no useful box)
    every entity the rest of the query selects."""
    assert query.geo is not None
    candidates = geo_candidates_sql(query)
    if candidates is None:
        sql, params = select_sql(tenant, replace(query, geo=None), paginate=False,
                                 column="e.rid")
        return [rid for (rid,) in conn.execute(sql, params)]
    rows = conn.execute(*candidates).fetchall()
    if not rows:
        return []
    rid_of, minx, miny, maxx, maxy = zip(*rows, strict=True)
    out = boxes_out_of_reach(query.geo, minx, miny, maxx, maxy)
    return sorted({rid for rid, far in zip(rid_of, out, strict=True) if not far})


def _documents(conn: sqlite3.Connection, tenant: str, query: EntityQuery,
               rids: list[int]) -> dict[int, str]:
    """Row id → document of those of ``rids`` that pass the rest of the query."""
    return dict(conn.execute(*candidates_sql(tenant, query, rids)).fetchall())
