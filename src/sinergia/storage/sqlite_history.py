"""History (the temporal API) on the SQLite schema: recording inside the writer's transaction,
and the reads the temporal API needs. See ``sqlite_schema`` for the three tables."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import orjson

from sinergia.ngsild.aggregation import bucket_step, from_buckets
from sinergia.ngsild.history import HistoryInstance, history_records
from sinergia.ngsild.model import Instance, value_of
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
from sinergia.storage.sqlite_queries import history_entities_sql
from sinergia.storage.sqlite_values import AttrIds

# -- writing (inside the writer's transaction) -------------------------------------------------


def record_changes(conn: sqlite3.Connection, tenant: str, attr_ids: AttrIds,
                   results: Iterable[EditResult], now: str) -> None:
    """Append to history every instance the successful edits added, changed or deleted."""
    changes = []
    for result in results:
        if result.error is not None or result.after is result.before:
            continue
        instances = history_records(result.before, result.after, now=now)
        if instances:
            entity = result.after if result.after is not None else result.before
            assert entity is not None
            changes.append((result.entity_id, entity["type"], instances))
    add_many(conn, tenant, attr_ids, changes)


def add_many(conn: sqlite3.Connection, tenant: str, attr_ids: AttrIds,
             changes: Sequence[tuple[str, Sequence[str], Sequence[HistoryInstance]]]) -> None:
    """Record the instances of many entities ``(id, types, instances)`` with a few statements
    per call, not per entity: a batch of a thousand entities is one call. The instances are
    bare records (``ngsild.history.history_records``): their ids go to a column."""
    if not changes:
        return
    heids, fresh = _entity_rows(conn, tenant,
                                [(entity_id, types) for entity_id, types, _ in changes])
    # Entities recorded for the first time have no series yet: only the others are looked up,
    # and only for the attributes this call records.
    aids = attr_ids.of(conn, {item.attr for _, _, instances in changes for item in instances})
    sids = _known_series(conn, aids, {
        (heid, item.attr) for entity_id, _, instances in changes
        if (heid := heids[entity_id]) not in fresh for item in instances})
    (next_sid,) = conn.execute("SELECT coalesce(max(sid), 0) + 1 FROM history_series").fetchone()
    new_series: list[tuple[int, int, str]] = []
    to_ms = lru_cache(maxsize=256)(iso_to_ms)  # most instances of a call share their times
    tails = lru_cache(maxsize=256)(_stamp_tails)
    dumps = orjson.dumps
    rows = []
    for entity_id, _, instances in changes:
        heid = heids[entity_id]
        for item in instances:
            sid = sids.get((heid, item.attr))
            if sid is None:
                sid = sids[heid, item.attr] = next_sid
                new_series.append((sid, heid, item.attr))
                next_sid += 1
            modified_ms = to_ms(item.modified_at)
            text, stamps = _stored_text(dumps(item.instance).decode(),
                                        tails(item.modified_at, modified_ms))
            rows.append((sid, to_ms(item.observed_at) if item.observed_at else modified_ms,
                         modified_ms, item.instance_id, int(item.deleted),
                         int(item.created_at is not None), item.numeric, text, stamps))
    if new_series:
        conn.executemany("INSERT INTO history_series (sid, heid, aid) VALUES (?, ?, ?)",
                         [(sid, heid, aids[attr]) for sid, heid, attr in new_series])
    conn.executemany("INSERT INTO history (sid, t_ms, modified_ms, instance_id, deleted, created,"
                     " num, instance, stamps) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _stamp_tails(modified_at: str, modified_ms: int) -> tuple[str, str] | None:
    """The endings of an instance's text that :func:`_stored_text` leaves out: createdAt and
    modifiedAt both ``modified_at``, or modifiedAt alone; None when ``modified_at`` is not
    what the ``modified_ms`` column gives back (not in the stored form of times)."""
    if ms_to_iso(modified_ms) != modified_at:
        return None
    return (f',"createdAt":"{modified_at}","modifiedAt":"{modified_at}"}}',
            f',"modifiedAt":"{modified_at}"}}')


def _stored_text(text: str, tails: tuple[str, str] | None) -> tuple[str, int]:
    """The stored text of an instance and its ``stamps``: how many of its last members
    (createdAt, modifiedAt) it leaves to the ``modified_ms`` column, which holds their time.
    They are half the text of most instances, and history is the bulk of a write."""
    if tails is not None:
        both, modified = tails
        if text.endswith(both):
            return text[:-len(both)] + "}", 2
        if text.endswith(modified):
            return text[:-len(modified)] + "}", 1
    return text, 0


def _chunks(items: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    return (items[start:start + size] for start in range(0, len(items), size))


def _entity_rows(conn: sqlite3.Connection, tenant: str,
                 entities: Sequence[tuple[str, Sequence[str]]]) -> tuple[dict[str, int], set[int]]:
    """Entity id → ``history_entities.heid``, adding the entities not recorded yet (their
    heids are the set returned) and updating the types of those whose types changed."""
    wanted = {entity_id: orjson.dumps(sorted(types)).decode() for entity_id, types in entities}
    types_of: dict[str, dict[str, None]] = {}  # every type an entity had in this call
    for entity_id, types in entities:
        types_of.setdefault(entity_id, {}).update(dict.fromkeys(types))
    found: dict[str, tuple[int, str]] = {}
    for chunk in _chunks(list(wanted)):
        marks = ",".join("?" * len(chunk))
        for heid, entity_id, types_json in conn.execute(
                f"SELECT heid, id, types FROM history_entities WHERE tenant = ? "  # noqa: S608
                f"AND id IN ({marks})", (tenant, *chunk)):
            found[entity_id] = (heid, types_json)
    heids = {entity_id: heid for entity_id, (heid, _) in found.items()}
    retyped = [(types_json, found[entity_id][0]) for entity_id, types_json in wanted.items()
               if entity_id in found and found[entity_id][1] != types_json]
    missing = [entity_id for entity_id in wanted if entity_id not in found]
    fresh: set[int] = set()
    if missing:
        # Inside the write transaction nobody else can take these ids.
        (next_heid,) = conn.execute(
            "SELECT coalesce(max(heid), 0) + 1 FROM history_entities").fetchone()
        for offset, entity_id in enumerate(missing):
            heids[entity_id] = next_heid + offset
        fresh = set(range(next_heid, next_heid + len(missing)))
        conn.executemany("INSERT INTO history_entities (heid, tenant, id, types) "
                         "VALUES (?, ?, ?, ?)",
                         [(heids[i], tenant, i, wanted[i]) for i in missing])
    if retyped:
        conn.executemany("UPDATE history_entities SET types = ? WHERE heid = ?", retyped)
    typed = missing + [entity_id for entity_id in wanted
                       if entity_id in found and found[entity_id][1] != wanted[entity_id]]
    if typed:
        conn.executemany(
            "INSERT OR IGNORE INTO history_types (tenant, type, heid) VALUES (?, ?, ?)",
            [(tenant, t, heids[entity_id]) for entity_id in typed for t in types_of[entity_id]])
    return heids, fresh


def _known_series(conn: sqlite3.Connection, aids: dict[str, int],
                  pairs: set[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """``history_series.sid`` of each (heid, attribute IRI) pair that has a series, found by
    its (heid, aid) key: a write of one attribute reads one series, not all of the entity's."""
    iri_of = {aids[attr]: attr for _, attr in pairs}
    sids: dict[tuple[int, str], int] = {}
    # 499 pairs a statement: two parameters each, under the 999 of older SQLite builds
    for chunk in _chunks(sorted((heid, aids[attr]) for heid, attr in pairs), 499):
        # A join with the pairs as constant rows: SQLite answers ``(heid, aid) IN (VALUES …)``
        # with a scan of the table.
        values = ",".join(["(?, ?)"] * len(chunk))
        for sid, heid, aid in conn.execute(
                f"SELECT s.sid, s.heid, s.aid FROM (VALUES {values}) AS w "  # noqa: S608
                "JOIN history_series s ON s.heid = w.column1 AND s.aid = w.column2",
                [key for pair in chunk for key in pair]):
            sids[heid, iri_of[aid]] = sid
    return sids


def delete_history(conn: sqlite3.Connection, tenant: str, entity_id: str, attr: str | None,
                   instance_id: str | None) -> int:
    row = conn.execute("SELECT heid FROM history_entities WHERE tenant = ? AND id = ?",
                       (tenant, entity_id)).fetchone()
    if row is None:
        return 0
    heid = row[0]
    series = "SELECT sid FROM history_series WHERE heid = ?"
    params: list[Any] = [heid]
    if attr is not None:
        series += " AND aid = (SELECT aid FROM attr_names WHERE iri = ?)"
        params.append(attr)
    sql = f"DELETE FROM history WHERE sid IN ({series})"  # noqa: S608
    if instance_id is not None:
        sql += " AND instance_id = ?"
        params.append(instance_id)
    gone: int = conn.execute(sql, params).rowcount
    if instance_id is None:
        if attr is None:
            conn.execute("DELETE FROM history_series WHERE heid = ?", (heid,))
            conn.execute("DELETE FROM history_types WHERE heid = ?", (heid,))
            gone += conn.execute("DELETE FROM history_entities WHERE heid = ?",
                                 (heid,)).rowcount
        else:
            gone += conn.execute("DELETE FROM history_series WHERE heid = ? AND aid = "
                                 "(SELECT aid FROM attr_names WHERE iri = ?)",
                                 (heid, attr)).rowcount
    return gone


def replace_instance(conn: sqlite3.Connection, tenant: str, entity_id: str, attr: str,
                     item: HistoryInstance) -> bool:
    modified_ms = iso_to_ms(item.modified_at)
    t_ms = iso_to_ms(item.observed_at) if item.observed_at else modified_ms
    cursor = conn.execute(
        "UPDATE history SET t_ms = ?, modified_ms = ?, num = ?, instance = ?, stamps = 0 "
        "WHERE instance_id = ? AND sid = (SELECT s.sid FROM history_series s "
        "JOIN history_entities e ON e.heid = s.heid JOIN attr_names n ON n.aid = s.aid "
        "WHERE e.tenant = ? AND e.id = ? AND n.iri = ?)",
        (t_ms, modified_ms, item.numeric, orjson.dumps(item.instance).decode(),
         item.instance_id, tenant, entity_id, attr))
    return cursor.rowcount > 0


def purge(conn: sqlite3.Connection, older_than_ms: int, limit: int) -> int:
    """Delete up to ``limit`` history rows recorded before ``older_than_ms``.

    Rows get ever larger ids as they are recorded (a new id is the largest plus one), so the
    oldest rows are the first by id: the purge reads them by the table's own key, and no index
    by modification time is kept up at every write for it (migration 7 dropped it). A row whose
    time is out of that order (an instance replaced later, a clock stepped back) is only kept
    longer, never deleted early; up to three slices of such rows at the head are looked past."""
    return conn.execute(
        "DELETE FROM history WHERE hid IN (SELECT hid FROM (SELECT hid, modified_ms FROM history "
        "ORDER BY hid LIMIT ?) WHERE modified_ms < ? LIMIT ?)",
        (4 * limit, older_than_ms, limit)).rowcount


# -- reading (on a reader thread) ----------------------------------------------------------------


def query(conn: sqlite3.Connection, tenant: str, q: HistoryQuery) -> HistoryResult:
    sql, params = history_entities_sql(tenant, q, paginate=True)
    entities = []
    for heid, entity_id, types_json in conn.execute(sql, params).fetchall():
        attrs = _entity_attrs(conn, heid, q)
        entities.append(TemporalEntity(entity_id, tuple(orjson.loads(types_json)), attrs))
    count = None
    if q.count:
        sql, params = history_entities_sql(tenant, q, paginate=False, count=True)
        (count,) = conn.execute(sql, params).fetchone()
    return HistoryResult(entities, count)


_TIME_COLUMN = {"observedAt": "t_ms", "createdAt": "modified_ms", "modifiedAt": "modified_ms",
                "deletedAt": "modified_ms"}


# SQLite has no stddev; one from sums of squares loses precision (see history_sql).
_SQL_METHODS = frozenset({"totalCount", "distinctCount", "sum", "avg", "min", "max", "sumsq"})


def _entity_attrs(conn: sqlite3.Connection, heid: int,
                  q: HistoryQuery) -> dict[str, list[Instance]] | dict[str, Series | Aggregated]:
    series_sql = ("SELECT s.sid, n.iri FROM history_series s JOIN attr_names n "
                  "ON n.aid = s.aid WHERE s.heid = ?")
    params: list[Any] = [heid]
    if q.attrs is not None:
        series_sql += " AND n.iri IN (" + ",".join("?" * len(q.attrs)) + ")"
        params.extend(q.attrs)
    column = _TIME_COLUMN[q.timeproperty]
    where = f"sid = ? AND {column} >= ? AND {column} < ?"
    if q.timeproperty == "deletedAt":
        where += " AND deleted = 1"
    elif q.timeproperty == "createdAt":
        where += " AND created = 1"
    bounds = (q.start_ms if q.start_ms is not None else -(2**62),
              q.end_ms if q.end_ms is not None else 2**62)
    newest_first = q.last_n is not None
    limit = q.last_n if q.last_n is not None else q.instance_limit
    order = "DESC" if newest_first else "ASC"
    # (sid, t_ms, hid) is the order of history_by_series: a newest-first LIMIT reads N rows.
    tail = f" ORDER BY {column} {order}, hid {order}" + (" LIMIT ?" if limit is not None else "")
    in_db = history_sql.in_database(q, _SQL_METHODS)
    out_series: dict[str, Series | Aggregated] = {}
    out_instances: dict[str, list[Instance]] = {}
    # By IRI, the order the series came in when they were keyed by it.
    for sid, attr in conn.execute(series_sql + " ORDER BY n.iri", params).fetchall():
        args: tuple[Any, ...] = (sid, *bounds) if limit is None else (sid, *bounds, limit)
        if in_db:
            aggregated = _aggregated(conn, column, where, (sid, *bounds), q)
            if aggregated is not None:
                if aggregated.values:
                    out_series[attr] = aggregated
                continue
        if q.series:
            series = _series(conn, column, f"FROM history WHERE {where} AND deleted = 0{tail}",
                             args, newest_first=newest_first)
            if series.times_ms:
                out_series[attr] = series
            continue
        rows = conn.execute(f"SELECT instance_id, modified_ms, deleted, instance, "  # noqa: S608
                            f"stamps "
                            f"FROM history WHERE {where}{tail}", args).fetchall()
        if newest_first:
            rows.reverse()
        if rows:
            out_instances[attr] = [_instance(*row) for row in rows]
    return out_series if q.series else out_instances


def _series(conn: sqlite3.Connection, column: str, body: str, args: tuple[Any, ...], *,
            newest_first: bool) -> Series:
    """Times (``column``, the query's time property) and values; the history_by_series index
    alone answers for numbers, and only the rows that hold something else are read for their
    JSON."""
    rows = conn.execute(f"SELECT {column}, num, hid {body}", args).fetchall()
    if newest_first:
        rows.reverse()
    values = [r[1] for r in rows]
    others = [r[2] for r in rows if r[1] is None]
    if others:
        docs: dict[int, str] = {}
        for chunk in _chunks(others):
            docs.update(conn.execute(
                f"SELECT hid, instance FROM history WHERE hid IN "  # noqa: S608
                f"({','.join('?' * len(chunk))})", chunk).fetchall())
        values = [value_of(orjson.loads(docs[r[2]])) if r[1] is None else r[1] for r in rows]
    return Series([r[0] for r in rows], values)


def _aggregated(conn: sqlite3.Connection, column: str, where: str, args: tuple[Any, ...],
                q: HistoryQuery) -> Aggregated | None:
    """One attribute's aggregated values computed by SQLite (no values: no points), or None
    when a value in the interval is not a number."""
    assert q.aggregation is not None
    origin = q.start_ms
    if origin is None:  # buckets start at the first point
        first = conn.execute(f"SELECT {column} FROM history WHERE {where} "  # noqa: S608
                             f"AND deleted = 0 ORDER BY {column} LIMIT 1", args).fetchone()
        if first is None:
            return Aggregated({})
        origin = first[0]
    methods, period = q.aggregation.methods, q.aggregation.period
    columns = history_sql.figure_columns(q.aggregation, time=column, num="num", stddev="NULL")
    buckets = history_sql.figures(conn.execute(
        f"SELECT ({column} - ?) / ? AS k, {columns} FROM history "  # noqa: S608
        f"WHERE {where} AND deleted = 0 GROUP BY k ORDER BY k",
        (origin, bucket_step(period), *args)))
    if buckets is None:
        return None
    if not buckets:
        return Aggregated({})
    return Aggregated(from_buckets(buckets, methods, period, origin, q.end_ms))


def _instance(instance_id: str, modified_ms: int, deleted: int, doc: str,
              stamps: int = 0) -> Instance:
    instance: Instance = orjson.loads(doc)
    if stamps:  # put back what _stored_text left to the column, where it was
        time = ms_to_iso(modified_ms)
        if stamps == 2:
            instance["createdAt"] = time
        instance["modifiedAt"] = time
    instance.setdefault("instanceId", instance_id)
    if deleted:
        instance.setdefault("deletedAt", ms_to_iso(modified_ms))
    return instance
