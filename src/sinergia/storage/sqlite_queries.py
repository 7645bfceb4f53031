"""SQL for entity queries on the SQLite schema. Every value and every JSON path derived from
a request is a bound parameter; only fixed SQL fragments are concatenated."""

from __future__ import annotations

from collections.abc import Sequence

from sinergia.ngsild.geo import query_bbox
from sinergia.ngsild.qlang import TypeAnd, TypeExpr, TypeOr
from sinergia.ngsild.query import EntityQuery, Selector
from sinergia.storage.base import HistoryQuery
from sinergia.storage.sqlite_filters import compile_q, compile_scope

Params = list[object]


def _type_sql(expr: TypeExpr, tenant: str, params: Params,
              probe: str = "entity_types x WHERE x.tenant = ? AND x.type = ? AND x.rid = e.rid",
              ) -> str:
    if isinstance(expr, str):
        params.extend((tenant, expr))
        # correlated: a primary-key probe per candidate row, never a list of every rid
        return f"EXISTS (SELECT 1 FROM {probe})"  # noqa: S608 (probe: fixed SQL of ours)
    joiner = " AND " if isinstance(expr, TypeAnd) else " OR "
    assert isinstance(expr, TypeAnd | TypeOr)
    return "(" + joiner.join(_type_sql(term, tenant, params, probe) for term in expr.terms) + ")"


def _selectors_sql(selectors: tuple[Selector, ...], tenant: str, params: Params) -> str:
    """Any of the selectors, each the AND of its id, id pattern and type expression."""
    alternatives = []
    for selector in selectors:
        terms = []
        if selector.id is not None:
            terms.append("e.id = ?")
            params.append(selector.id)
        if selector.id_pattern is not None:
            terms.append("regexp(?, e.id)")
            params.append(selector.id_pattern)
        if selector.type is not None:
            terms.append(_type_sql(selector.type, tenant, params))
        alternatives.append("(" + " AND ".join(terms) + ")" if terms else "1")
    return "(" + " OR ".join(alternatives) + ")"


def _attr_exists_path(attr: str) -> str:
    return '$.attrs."' + attr.replace('"', '\\"') + '"'


def _where(tenant: str, query: EntityQuery,
           rids: Sequence[int] | None = None) -> tuple[str, str, Params]:
    """(FROM clause, WHERE clause, parameters) of every condition but the geo-query (see
    :func:`geo_candidates_sql`). A single type drives the scan from the ``entity_types``
    primary key, which yields rows already in ``rid`` order. With ``rids`` only the entities
    of those row ids (the caller's candidates) are looked at, each by its key."""
    sources = "entities e"
    clauses: list[str] = []
    params: Params = []
    marks = "" if rids is None else ",".join("?" * len(rids))
    if isinstance(query.type, str):
        # CROSS JOIN: the candidates' types are probed before any entity row is read.
        join = "JOIN" if rids is None else "CROSS JOIN"
        sources = f"entity_types t {join} entities e ON e.rid = t.rid"
        clauses.append("t.tenant = ? AND t.type = ?")
        params.extend((tenant, query.type))
        if rids is not None:
            clauses.append(f"t.rid IN ({marks})")
            params.extend(rids)
    elif rids is not None:
        # Looked up by row id, never by scanning an index (of the tenant, say) instead.
        sources = "entities e NOT INDEXED"
        clauses.append(f"e.rid IN ({marks})")
        params.extend(rids)
    clauses.append("e.tenant = ?")
    params.append(tenant)
    if query.ids:
        clauses.append("e.id IN (" + ",".join("?" * len(query.ids)) + ")")
        params.extend(query.ids)
    if query.id_pattern:
        clauses.append("regexp(?, e.id)")
        params.append(query.id_pattern)
    if query.type is not None and not sources.startswith("entity_types"):
        clauses.append(_type_sql(query.type, tenant, params))
    if query.selectors:
        clauses.append(_selectors_sql(query.selectors, tenant, params))
    if query.attrs:
        clauses.append("(" + " OR ".join("json_type(e.doc, ?) IS NOT NULL"
                                          for _ in query.attrs) + ")")
        params.extend(_attr_exists_path(a) for a in query.attrs)
    if query.q is not None:
        # With the type driving the scan, the row id is known before the entity row is read.
        rid = "t.rid" if sources.startswith("entity_types") else "e.rid"
        sql, q_params = compile_q(query.q, rid=rid)
        clauses.append(sql)
        params.extend(q_params)
    if query.scope is not None:
        sql, s_params = compile_scope(query.scope)
        clauses.append(sql)
        params.extend(s_params)
    return sources, " AND ".join(clauses), params


def select_sql(tenant: str, query: EntityQuery, *, paginate: bool = True,
               column: str = "e.doc") -> tuple[str, Params]:
    """The documents (or ``column``, e.g. ``e.rid``) of the selected entities, by row id."""
    sources, where, params = _where(tenant, query)
    # Order by the column of the driving side, whose index yields that order.
    order = "t.rid" if sources.startswith("entity_types") else "e.rid"
    sql = f"SELECT {column} FROM {sources} WHERE {where} ORDER BY {order}"  # noqa: S608
    if paginate:
        sql += " LIMIT ? OFFSET ?"
        params.extend((query.limit, query.offset))
    return sql, params


def geo_candidates_sql(query: EntityQuery) -> tuple[str, Params] | None:
    """``(rid, minx, miny, maxx, maxy)`` of each indexed geometry of the query's GeoProperty
    whose box meets the query's box: the index alone, no entity row nor type is read (the
    documents read afterwards are of the candidates that pass the rest of the query, see
    :func:`candidates_sql`). None when the geo-query has no useful box. An entity with
    several geometries comes once for each."""
    assert query.geo is not None
    box = query_bbox(query.geo)
    if box is None:
        return None
    minx, miny, maxx, maxy = box
    params: Params = [maxx, minx, maxy, miny, query.geo.geoproperty]
    sql = ("SELECT r.rid, g.minx, g.miny, g.maxx, g.maxy FROM geo_index g "
           "JOIN geo_refs r ON r.gid = g.gid WHERE g.minx <= ? AND g.maxx >= ? "
           "AND g.miny <= ? AND g.maxy >= ? AND r.attr = ?")
    return sql, params


def candidates_sql(tenant: str, query: EntityQuery, rids: list[int]) -> tuple[str, Params]:
    """``(rid, doc)`` of those of the candidates ``rids`` that pass every condition of the
    query but its geo-query (left to the caller)."""
    sources, where, params = _where(tenant, query, rids)
    return f"SELECT e.rid, e.doc FROM {sources} WHERE {where}", params  # noqa: S608


def count_sql(tenant: str, query: EntityQuery) -> tuple[str, Params]:
    sources, where, params = _where(tenant, query)
    return f"SELECT count(*) FROM {sources} WHERE {where}", params  # noqa: S608


def history_entities_sql(tenant: str, query: HistoryQuery, *, paginate: bool,
                         count: bool = False) -> tuple[str, Params]:
    """Entities that have history, selected by id, id pattern and type expression."""
    clauses = ["h.tenant = ?"]
    params: Params = [tenant]
    if query.ids:
        clauses.append("h.id IN (" + ",".join("?" * len(query.ids)) + ")")
        params.extend(query.ids)
    if query.id_pattern:
        clauses.append("regexp(?, h.id)")
        params.append(query.id_pattern)
    if query.type is not None:
        clauses.append(_type_sql(query.type, tenant, params,
                                 "history_types x WHERE x.tenant = ? AND x.type = ? "
                                 "AND x.heid = h.heid"))
    where = " AND ".join(clauses)
    if count:
        return f"SELECT count(*) FROM history_entities h WHERE {where}", params  # noqa: S608
    sql = f"SELECT h.heid, h.id, h.types FROM history_entities h WHERE {where} ORDER BY h.heid"  # noqa: S608
    if paginate:
        sql += " LIMIT ? OFFSET ?"
        params.extend((query.limit, query.offset))
    return sql, params
