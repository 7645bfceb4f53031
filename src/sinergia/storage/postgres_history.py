"""History (the temporal API) on the PostgreSQL schema: recording inside write transactions,
the reads the temporal API needs, and the monthly partitions of the ``history`` table.

``history`` is partitioned by month of ``modified_ms`` (when an instance was recorded): the
retention purge drops whole partitions, and :class:`Partitions` creates the partitions of the
current and the next months ahead of need. A write that would land in a month without a
partition raises :class:`MissingPartitions` before writing any history (its transaction then
rolls back, whatever else it wrote); the store creates the partition in a transaction of its
own (creating a partition locks the parent table, which must not happen while holding entity
row locks) and runs the write again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import lru_cache
from itertools import groupby
from typing import Any, NamedTuple

import orjson
from psycopg import AsyncConnection, errors, sql

from sinergia.ngsild.aggregation import bucket_step, from_buckets
from sinergia.ngsild.history import HistoryInstance, history_instances
from sinergia.ngsild.model import Instance, value_of
from sinergia.ngsild.qlang import compiled_regex
from sinergia.ngsild.temporal import iso_to_ms, ms_to_iso
from sinergia.storage import history_sql
from sinergia.storage.base import (
    Aggregated,
    EditResult,
    HistoryQuery,
    HistoryResult,
    Series,
    TemporalEntity,
)
from sinergia.storage.postgres_arrays import BoolArray, Float8Array, Int8Array, TextArray
from sinergia.storage.postgres_filters import compile_types
from sinergia.storage.postgres_regex import to_are

Conn = AsyncConnection[Any]
MONTHS_AHEAD = 2


# -- partitions ---------------------------------------------------------------------------------


def month_of(ms: int) -> tuple[int, int]:
    when = datetime.fromtimestamp(ms / 1000, UTC)
    return when.year, when.month


def _bounds(month: tuple[int, int]) -> tuple[int, int]:
    year, number = month
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def _name(month: tuple[int, int]) -> str:
    return f"history_{month[0]:04d}{month[1]:02d}"


class MissingPartitions(Exception):
    def __init__(self, months: set[tuple[int, int]]) -> None:
        super().__init__(f"history partitions missing for {sorted(months)}")
        self.months = months


class Partitions:
    """The months that have a partition (as far as this process knows)."""

    def __init__(self) -> None:
        self.known: set[tuple[int, int]] = set()

    async def load(self, conn: Conn) -> None:
        cur = await conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'history'::regclass")
        self.known = {(int(name[8:12]), int(name[12:14])) for (name,) in await cur.fetchall()
                      if len(name) == 14 and name[8:].isdigit()}

    def require(self, months: Iterable[tuple[int, int]]) -> None:
        missing = set(months) - self.known
        if missing:
            raise MissingPartitions(missing)

    async def create(self, conn: Conn, months: Iterable[tuple[int, int]]) -> None:
        """Create the partitions (in a transaction of their own on ``conn``)."""
        wanted = sorted(set(months) - self.known)
        if not wanted:
            return
        async with conn.transaction():
            # One creator at a time per schema: CREATE ... IF NOT EXISTS still races.
            await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))",
                               (0x5E_4E_62,))
            for month in wanted:
                start, end = _bounds(month)
                await conn.execute(sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} PARTITION OF history "
                    "FOR VALUES FROM ({}) TO ({})").format(
                        sql.Identifier(_name(month)), sql.Literal(start), sql.Literal(end)))
        self.known.update(wanted)

    async def create_ahead(self, conn: Conn, now_ms: int) -> None:
        year, number = month_of(now_ms)
        months = []
        for _ in range(MONTHS_AHEAD + 1):
            months.append((year, number))
            year, number = (year + 1, 1) if number == 12 else (year, number + 1)
        await self.create(conn, months)

    async def drop_older(self, conn: Conn, older_than_ms: int) -> int | None:
        """Drop the oldest partition lying wholly before ``older_than_ms``; return its row
        count, or None when there is none."""
        for month in sorted(self.known):
            if _bounds(month)[1] > older_than_ms:
                return None
            name = sql.Identifier(_name(month))
            async with conn.transaction():
                cur = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(name))
                (rows,) = await cur.fetchone() or (0,)
                await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(name))
            self.known.discard(month)
            return int(rows)
        return None


# -- writing (inside the caller's transaction) --------------------------------------------------


class _Row(NamedTuple):  # a tuple: a write makes ten thousand of them
    entity_id: str
    types: tuple[str, ...]
    item: HistoryInstance


def rows_for_changes(results: Iterable[EditResult], now: str) -> list[_Row]:
    rows: list[_Row] = []
    for result in results:
        if result.error is not None or result.after is result.before:
            continue
        entity = result.after if result.after is not None else result.before
        assert entity is not None
        types = tuple(entity["type"])
        rows.extend(_Row(result.entity_id, types, item)
                    for item in history_instances(result.before, result.after, now=now))
    return rows


def rows_for_instances(entity_id: str, types: Sequence[str],
                       instances: Sequence[HistoryInstance]) -> list[_Row]:
    return [_Row(entity_id, tuple(types), item) for item in instances]


def _times(item: HistoryInstance,
           to_ms: Callable[[str], int] = iso_to_ms) -> tuple[int, int]:
    """(time, recording time) of an instance in ms."""
    modified_ms = to_ms(item.modified_at)
    return (to_ms(item.observed_at) if item.observed_at else modified_ms), modified_ms


# One statement (one round trip) records a whole write: the entities' rows (new ones get an id,
# changed types are updated), the series rows of their attributes, then the history rows.
# Existing rows are looked up and new ones inserted without ON CONFLICT (its speculative
# insertion costs several times a plain insert): a concurrent writer that created the same
# entity or series first makes this statement fail with a unique violation, and the store
# runs the transaction again. Heids come from the sequence in input order (``ORDER BY`` the
# ordinality), so they order entities by first recording. Its cost is PostgreSQL's, so it does
# only what a write needs: entities are looked up by id through the index (never by reading
# all of the tenant's), only the attributes of entities that had history already are looked
# up among the series, ids are drawn once (not read back with RETURNING and joined again),
# and each history row finds its series by position in an array (``sids[pair]``): no join or
# sort of the instances, which go in as unnest gives them, in order, so their hids order a
# series' instances. Arrays are sent in binary: no quoting or escaping of the JSON texts.
_WRITE_ROWS = """
WITH ve AS MATERIALIZED (
    SELECT v.id, v.types::jsonb AS types, v.o
    FROM unnest(%(ids)b::text[], %(types)b::text[]) WITH ORDINALITY AS v(id, types, o)),
fe AS MATERIALIZED (
    SELECT h.id, h.heid, h.types FROM history_entities h
    WHERE h.tenant = %(tenant)s AND h.id = ANY(%(ids)b::text[])),
ue AS (
    UPDATE history_entities h SET types = ve.types FROM fe JOIN ve ON ve.id = fe.id
    WHERE h.tenant = %(tenant)s AND h.heid = fe.heid AND fe.types <> ve.types),
ne AS MATERIALIZED (
    SELECT n.id, n.types, nextval('history_ids') AS heid FROM (
        SELECT ve.id, ve.types FROM ve WHERE NOT EXISTS (SELECT 1 FROM fe WHERE fe.id = ve.id)
        ORDER BY ve.o) n),
me AS (
    INSERT INTO history_entities (tenant, heid, id, types)
    SELECT %(tenant)s, ne.heid, ne.id, ne.types FROM ne),
vs AS MATERIALIZED (
    SELECT ae.heid, ae.found, v.attr, v.o
    FROM unnest(%(pair_ids)b::text[], %(pair_attrs)b::text[]) WITH ORDINALITY AS v(id, attr, o)
    JOIN (SELECT id, heid, true AS found FROM fe UNION ALL SELECT id, heid, false FROM ne) ae
    ON ae.id = v.id),
fs AS MATERIALIZED (
    SELECT vs.o, s.sid FROM vs CROSS JOIN LATERAL (
        SELECT s.sid FROM history_series s
        WHERE s.tenant = %(tenant)s AND s.heid = vs.heid AND s.attr = vs.attr
        LIMIT 1) s  -- (LIMIT: one index probe each, never a read of the tenant's series)
    WHERE vs.found),
ns AS MATERIALIZED (
    SELECT vs.o, vs.heid, vs.attr, nextval('history_ids') AS sid FROM vs
    WHERE NOT vs.found OR NOT EXISTS (SELECT 1 FROM fs WHERE fs.o = vs.o)),
ms AS (
    INSERT INTO history_series (tenant, sid, heid, attr)
    SELECT %(tenant)s, ns.sid, ns.heid, ns.attr FROM ns)
INSERT INTO history (tenant, sid, hid, t_ms, modified_ms, instance_id, deleted, created, num,
                     instance)
SELECT %(tenant)s, (SELECT array_agg(x.sid ORDER BY x.o) FROM (
           SELECT fs.o, fs.sid FROM fs UNION ALL SELECT ns.o, ns.sid FROM ns) x)[v.p],
       nextval('history_ids'), v.t, v.m, v.iid, v.del, v.cr, v.num, v.inst
FROM unnest(%(pair)b::bigint[], %(t)b::bigint[], %(m)b::bigint[], %(iid)b::text[],
            %(del)b::boolean[], %(cr)b::boolean[], %(num)b::float8[], %(inst)b::text[])
     AS v(p, t, m, iid, del, cr, num, inst)
"""


async def write_rows(conn: Conn, tenant: str, rows: list[_Row], partitions: Partitions) -> None:
    """Append the rows to history (MissingPartitions before any write if a month lacks one).
    In a pipeline, the statement is only queued: its errors surface when the pipeline syncs."""
    if not rows:
        return
    to_ms = lru_cache(maxsize=256)(iso_to_ms)  # the instances of one write mostly share times
    entities: dict[str, tuple[str, ...]] = {}
    pairs: dict[tuple[str, str], int] = {}  # (entity id, attribute) -> 1-based ordinal
    row_pairs: list[int] = []
    t: list[int] = []
    m: list[int] = []
    items = [row.item for row in rows]
    for row, item in zip(rows, items, strict=True):  # one pass: ten thousand rows a batch
        entities[row.entity_id] = row.types
        row_pairs.append(pairs.setdefault((row.entity_id, item.attr), len(pairs) + 1))
        t_ms, modified_ms = _times(item, to_ms)
        m.append(modified_ms)
        t.append(t_ms)
    partitions.require(month_of(modified) for modified in set(m))
    dumps = orjson.dumps
    await conn.execute(_WRITE_ROWS, {
        "tenant": tenant,
        "ids": TextArray(list(entities)),
        "types": TextArray([dumps(sorted(types)).decode() for types in entities.values()]),
        "pair_ids": TextArray([entity_id for entity_id, _ in pairs]),
        "pair_attrs": TextArray([attr for _, attr in pairs]),
        "pair": Int8Array(row_pairs),
        "t": Int8Array(t),
        "m": Int8Array(m),
        "iid": TextArray([item.instance_id for item in items]),
        "del": BoolArray([item.deleted for item in items]),
        "cr": BoolArray([item.created_at is not None for item in items]),
        "num": Float8Array([item.numeric for item in items]),
        # (str, not orjson's bytes: ten thousand of those kept at once cost more to allocate
        # than decoding each and encoding it again)
        "inst": TextArray([dumps(item.instance).decode() for item in items])})


async def delete_history(conn: Conn, tenant: str, entity_id: str, attr: str | None,
                         instance_id: str | None) -> int:
    cur = await conn.execute("SELECT heid FROM history_entities WHERE tenant = %s AND id = %s",
                             (tenant, entity_id))
    row = await cur.fetchone()
    if row is None:
        return 0
    (heid,) = row
    where = "h.tenant = %s AND h.sid = s.sid AND s.tenant = %s AND s.heid = %s"
    params: list[Any] = [tenant, tenant, heid]
    if attr is not None:
        where += " AND s.attr = %s"
        params.append(attr)
    if instance_id is not None:
        where += " AND h.instance_id = %s"
        params.append(instance_id)
    cur = await conn.execute(f"DELETE FROM history h USING history_series s WHERE {where}",  # noqa: S608
                             params)
    gone = cur.rowcount
    if instance_id is None:  # the entity's (or attribute's) own row goes too, and counts
        if attr is None:
            await conn.execute("DELETE FROM history_series WHERE tenant = %s AND heid = %s",
                               (tenant, heid))
            cur = await conn.execute("DELETE FROM history_entities WHERE tenant = %s "
                                     "AND heid = %s", (tenant, heid))
        else:
            cur = await conn.execute("DELETE FROM history_series WHERE tenant = %s "
                                     "AND heid = %s AND attr = %s", (tenant, heid, attr))
        gone += cur.rowcount
    return gone


async def replace_instance(conn: Conn, tenant: str, entity_id: str, attr: str,
                           item: HistoryInstance, *, partitions: Partitions) -> bool:
    t_ms, modified_ms = _times(item)
    partitions.require([month_of(modified_ms)])
    cur = await conn.execute(
        "UPDATE history h SET t_ms = %s, modified_ms = %s, num = %s, instance = %s "
        "FROM history_series s JOIN history_entities e ON e.tenant = s.tenant "
        "AND e.heid = s.heid WHERE h.tenant = %s AND h.instance_id = %s AND h.sid = s.sid "
        "AND s.tenant = %s AND s.attr = %s AND e.id = %s",
        (t_ms, modified_ms, item.numeric, orjson.dumps(item.instance).decode(), tenant,
         item.instance_id, tenant, attr, entity_id))
    return cur.rowcount > 0


async def purge_rows(conn: Conn, older_than_ms: int, limit: int) -> int:
    cur = await conn.execute(
        "DELETE FROM history h USING (SELECT tenant, hid, modified_ms FROM history "
        "WHERE modified_ms < %s LIMIT %s) d WHERE h.tenant = d.tenant AND h.hid = d.hid "
        "AND h.modified_ms = d.modified_ms", (older_than_ms, limit))
    return cur.rowcount


# -- reading -------------------------------------------------------------------------------------

_TIME_COLUMN = {"observedAt": "t_ms", "createdAt": "modified_ms", "modifiedAt": "modified_ms",
                "deletedAt": "modified_ms"}


async def query(conn: Conn, tenant: str, q: HistoryQuery) -> HistoryResult:
    where = ["h.tenant = %s"]
    params: list[Any] = [tenant]
    if q.ids:
        where.append("h.id = ANY(%b::text[])")
        params.append([i for i in q.ids if "\x00" not in i])
    pattern_in_python = None
    if q.id_pattern:
        are = to_are(q.id_pattern)
        if are is None:
            pattern_in_python = compiled_regex(q.id_pattern)
        else:
            where.append("h.id ~ %s")
            params.append(are)
    if q.type is not None:
        types = compile_types(q.type, "h.types")
        where.append(types.sql)
        params.extend(types.params)
    base = f"FROM history_entities h WHERE {' AND '.join(where)}"
    if pattern_in_python is None:
        cur = await conn.execute(f"SELECT h.heid, h.id, h.types {base} ORDER BY h.heid "
                                 "LIMIT %s OFFSET %s", (*params, q.limit, q.offset))
        page = await cur.fetchall()
        count = None
        if q.count:
            cur = await conn.execute(f"SELECT count(*) {base}", params)
            (count,) = await cur.fetchone() or (0,)
    else:
        cur = await conn.execute(f"SELECT h.heid, h.id, h.types {base} ORDER BY h.heid",
                                 params)
        selected = [r for r in await cur.fetchall() if pattern_in_python.search(r[1])]
        page = selected[q.offset:q.offset + q.limit]
        count = len(selected) if q.count else None
    attrs = await _attrs(conn, tenant, [heid for heid, _, _ in page], q)
    entities = [TemporalEntity(entity_id, tuple(types), attrs.get(heid, {}))
                for heid, entity_id, types in page]
    return HistoryResult(entities, count)


# The figures of stddev_samp (Youngs-Cramer) are as exact as the Python path's.
_SQL_METHODS = frozenset({"totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev",
                          "sumsq"})


def _filter(q: HistoryQuery, alias: str) -> str:
    """The instances of the interval (named parameters ``lo`` and ``hi``) among a series'
    rows ``alias``, whose ``sid`` and ``tenant`` the caller matches."""
    column = f"{alias}.{_TIME_COLUMN[q.timeproperty]}"
    where = f"{column} >= %(lo)s AND {column} < %(hi)s"
    if q.timeproperty == "deletedAt":
        where += f" AND {alias}.deleted"
    elif q.timeproperty == "createdAt":
        where += f" AND {alias}.created"
    if q.series:
        where += f" AND NOT {alias}.deleted"
    return where


def _series_params(tenant: str, heids: list[int], q: HistoryQuery) -> tuple[str, dict[str, Any]]:
    """The page's series (``s``) as a WHERE clause, and the parameters of it and of
    :func:`_filter`."""
    where = "s.tenant = %(tenant)s AND s.heid = ANY(%(heids)b::bigint[])"
    params: dict[str, Any] = {
        "tenant": tenant, "heids": heids,
        "lo": q.start_ms if q.start_ms is not None else -(2**62),
        "hi": q.end_ms if q.end_ms is not None else 2**62}
    if q.attrs is not None:
        where += " AND s.attr = ANY(%(attrs)b::text[])"
        params["attrs"] = [a for a in q.attrs if "\x00" not in a]
    return where, params


async def _attrs(conn: Conn, tenant: str, heids: list[int],
                 q: HistoryQuery) -> dict[int, Any]:
    """heid → {attr: instances, Series or Aggregated}, one query for the whole page (two when
    some attributes cannot be aggregated by the database)."""
    if not heids:
        return {}
    if history_sql.in_database(q, _SQL_METHODS):
        done, others = await _aggregated(conn, tenant, heids, q)
        if others:
            rest = await _attrs(conn, tenant, sorted({heid for heid, _ in others}),
                                replace(q, aggregation=None))
            for heid, attr in others:
                series = rest.get(heid, {}).get(attr)
                if series is not None:
                    done.setdefault(heid, {})[attr] = series
        return done
    column = _TIME_COLUMN[q.timeproperty]
    series_where, params = _series_params(tenant, heids, q)
    newest_first = q.last_n is not None
    limit = q.last_n if q.last_n is not None else q.instance_limit
    order = "DESC" if newest_first else "ASC"
    payload = (f"h.{column}, h.num, CASE WHEN h.num IS NULL THEN h.instance END" if q.series
               else "h.instance_id, h.modified_ms, h.deleted, h.instance")
    # Per series, its rows in the order of history_by_series: a LIMIT (lastN, a page) stops
    # after that many rows instead of ranking the whole history.
    sql_text = (f"SELECT s.heid, s.attr, x.* FROM history_series s CROSS JOIN LATERAL ("  # noqa: S608
                f"SELECT h.{column} AS t, h.hid, {payload} FROM history h "
                f"WHERE h.tenant = s.tenant AND h.sid = s.sid AND {_filter(q, 'h')} "
                f"ORDER BY h.{column} {order}, h.hid {order}")
    if limit is not None:
        sql_text += " LIMIT %(limit)s"
        params["limit"] = limit
    sql_text += (f") x WHERE {series_where} "
                 f"ORDER BY s.heid, s.attr, x.t {order}, x.hid {order}")
    cur = await conn.execute(sql_text, params)
    rows = await cur.fetchall()
    if newest_first:
        rows.reverse()
    out: dict[int, dict[str, Any]] = {}
    for row in rows:
        attrs = out.setdefault(row[0], {})
        attr = row[1]
        if q.series:
            t_ms, num, doc = row[4:7]
            series = attrs.get(attr)
            if series is None:
                series = attrs[attr] = Series([], [])
            series.times_ms.append(t_ms)
            series.values.append(num if num is not None else value_of(orjson.loads(doc)))
        else:
            attrs.setdefault(attr, []).append(_instance(*row[4:8]))
    return out


async def _aggregated(conn: Conn, tenant: str, heids: list[int], q: HistoryQuery
                      ) -> tuple[dict[int, dict[str, Any]], list[tuple[int, str]]]:
    """heid → {attr: Aggregated} for the series PostgreSQL could aggregate, and the (heid,
    attr) of the others (a value that is not a number, or a figure out of float range)."""
    assert q.aggregation is not None
    methods, period = q.aggregation.methods, q.aggregation.period
    column = _TIME_COLUMN[q.timeproperty]
    series_where, params = _series_params(tenant, heids, q)
    params |= {"start": q.start_ms, "step": bucket_step(period)}
    columns = history_sql.figure_columns(q.aggregation, time=f"h.{column}", num="h.num",
                                         stddev="stddev_samp(h.num)")
    # Buckets start at the query's start or, without one, at the series' first point: found
    # once per series (MATERIALIZED: inlined, the planner evaluates it again for every row).
    # Grouped per series (LATERAL), the only key is the bucket: a hash aggregate, where one
    # GROUP BY over all series sorts every row by (heid, attr, bucket).
    sql_text = (
        f"WITH o AS MATERIALIZED (SELECT s.tenant, s.sid, s.heid, s.attr, coalesce("  # noqa: S608
        f"%(start)s::bigint, (SELECT f.{column} FROM history f WHERE f.tenant = s.tenant "
        f"AND f.sid = s.sid AND {_filter(q, 'f')} ORDER BY f.{column} LIMIT 1)) AS origin "
        f"FROM history_series s WHERE {series_where}) "
        f"SELECT o.heid, o.attr, o.origin, b.* FROM o CROSS JOIN LATERAL ("
        f"SELECT (h.{column} - o.origin) / %(step)s AS k, {columns} FROM history h "
        f"WHERE h.tenant = o.tenant AND h.sid = o.sid AND {_filter(q, 'h')} GROUP BY k) b "
        f"ORDER BY o.heid, o.attr, b.k")
    try:
        cur = await conn.execute(sql_text, params)
        rows = await cur.fetchall()
    except errors.NumericValueOutOfRange:  # float8 sums raise instead of reaching infinity
        cur = await conn.execute(f"SELECT s.heid, s.attr FROM history_series s "  # noqa: S608
                                 f"WHERE {series_where}", params)
        return {}, [(heid, attr) for heid, attr in await cur.fetchall()]
    out: dict[int, dict[str, Any]] = {}
    others: list[tuple[int, str]] = []
    for (heid, attr, origin), group in groupby(rows, key=lambda row: tuple(row[:3])):
        buckets = history_sql.figures(row[3:] for row in group)
        if buckets is None:
            others.append((heid, attr))
        else:
            out.setdefault(heid, {})[attr] = Aggregated(
                from_buckets(buckets, methods, period, origin, q.end_ms))
    return out, others


def _instance(instance_id: str, modified_ms: int, deleted: bool, doc: str) -> Instance:
    instance: Instance = orjson.loads(doc)
    instance.setdefault("instanceId", instance_id)
    if deleted:
        instance.setdefault("deletedAt", ms_to_iso(modified_ms))
    return instance
