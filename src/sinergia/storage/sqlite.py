"""The embedded SQLite backend of the Store protocol.

WAL mode; one writer thread that groups concurrent writes into few commits
(:mod:`sinergia.storage.sqlite_writer`); point reads on the event loop's own connection (a
primary-key look-up costs less than a hop to a thread); queries on a small pool of reader
threads so a long scan never stalls the server.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import orjson

from sinergia.ngsild.errors import InternalError, NgsiLdError
from sinergia.ngsild.geo import geometry_bbox, make_predicate
from sinergia.ngsild.model import GEOPROPERTY, Entity, now_iso
from sinergia.ngsild.query import EntityQuery, QueryResult
from sinergia.storage import sqlite_filters
from sinergia.storage.base import AttributeInfo, Edit, EditResult, TypeInfo
from sinergia.storage.sqlite_queries import count_sql, select_sql
from sinergia.storage.sqlite_schema import migrate
from sinergia.storage.sqlite_writer import Writer

log = logging.getLogger(__name__)


def path_from_url(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:``."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"SQLite URLs look like sqlite:///path/to/file.db, got {url!r}")
    path = url[len("sqlite:///"):]
    if not path:
        raise ValueError(f"SQLite URL {url!r} names no file")
    return path


class SQLiteStore:
    def __init__(self, url: str, *, synchronous: str = "full", readers: int = 4,
                 write_batch_max: int = 512, **_: Any) -> None:
        self.url = url
        path = path_from_url(url)
        if path == ":memory:":
            # A private shared-cache memory database, so the writer and readers see one DB.
            self._target = f"file:sinergia-{id(self)}?mode=memory&cache=shared"
            self._uri = True
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._target, self._uri = path, False
        if synchronous.lower() not in {"full", "normal", "extra"}:
            raise ValueError("sqlite_synchronous must be full, normal or extra")
        self._synchronous = synchronous.upper()
        self._readers = anyio.CapacityLimiter(max(1, readers))
        self._writer = Writer(self._connect_writer, batch_max=write_batch_max)
        self._local = threading.local()
        self._keepalive: sqlite3.Connection | None = None
        self._all_readers: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    # -- connections ---------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._target, uri=self._uri, isolation_level=None,
                               check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA cache_size = -65536")  # 64 MiB page cache per connection
        conn.execute("PRAGMA mmap_size = 268435456")
        sqlite_filters.register_functions(conn)
        return conn

    def _connect_writer(self) -> sqlite3.Connection:
        conn = self._connect()
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        migrate(conn)
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._lock:
                self._all_readers.append(conn)
        return conn

    async def open(self) -> None:
        if self._uri:  # keep the shared memory database alive while the store is open
            self._keepalive = self._connect()
        self._writer.start()

    async def close(self) -> None:
        self._writer.stop()
        with self._lock:
            for conn in self._all_readers:
                conn.close()
            self._all_readers.clear()
        self._local = threading.local()
        if self._keepalive is not None:
            self._keepalive.close()
            self._keepalive = None

    async def _read(self, fn: Any, *args: Any) -> Any:
        def run() -> Any:
            return fn(self._reader(), *args)

        return await anyio.to_thread.run_sync(run, limiter=self._readers)

    # -- writes --------------------------------------------------------------------------

    async def apply(self, tenant: str, edits: Sequence[Edit]) -> list[EditResult]:
        edits = list(edits)
        results: list[EditResult] = await self._writer.submit(
            lambda conn: _apply_edits(conn, tenant, edits))
        return results

    # -- reads ---------------------------------------------------------------------------

    async def get_entity(self, tenant: str, entity_id: str) -> Entity | None:
        # Inline on the calling thread: one indexed look-up is cheaper than a thread hop.
        row = self._reader().execute(
            "SELECT doc FROM entities WHERE tenant = ? AND id = ?", (tenant, entity_id)
        ).fetchone()
        return None if row is None else orjson.loads(row[0])

    async def query_entities(self, tenant: str, query: EntityQuery) -> QueryResult:
        result: QueryResult = await self._read(_query, tenant, query)
        return result

    async def tenant_exists(self, tenant: str) -> bool:
        if tenant == "":
            return True
        row = self._reader().execute("SELECT 1 FROM tenants WHERE name = ?",
                                     (tenant,)).fetchone()
        return row is not None

    async def list_tenants(self) -> list[str]:
        rows = self._reader().execute("SELECT name FROM tenants ORDER BY name").fetchall()
        return [name for (name,) in rows]

    async def entity_types(self, tenant: str) -> list[TypeInfo]:
        infos: list[TypeInfo] = await self._read(_entity_types, tenant)
        return infos

    async def attributes(self, tenant: str) -> list[AttributeInfo]:
        infos: list[AttributeInfo] = await self._read(_attributes, tenant)
        return infos

    # -- @context records ------------------------------------------------------------------

    async def put_context(self, tenant: str, context_id: str, record: dict[str, Any]) -> None:
        doc = orjson.dumps(record).decode()

        def job(conn: sqlite3.Connection) -> None:
            _ensure_tenant(conn, tenant)
            conn.execute("INSERT OR REPLACE INTO contexts (tenant, id, record) VALUES (?, ?, ?)",
                         (tenant, context_id, doc))

        await self._writer.submit(job)

    async def get_context(self, tenant: str, context_id: str) -> dict[str, Any] | None:
        row = self._reader().execute(
            "SELECT record FROM contexts WHERE tenant = ? AND id = ?", (tenant, context_id)
        ).fetchone()
        return None if row is None else orjson.loads(row[0])

    async def list_contexts(self, tenant: str) -> list[dict[str, Any]]:
        rows = self._reader().execute(
            "SELECT record FROM contexts WHERE tenant = ? ORDER BY id", (tenant,)).fetchall()
        return [orjson.loads(record) for (record,) in rows]

    async def delete_context(self, tenant: str, context_id: str) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute("DELETE FROM contexts WHERE tenant = ? AND id = ?",
                                  (tenant, context_id))
            return cursor.rowcount > 0

        deleted: bool = await self._writer.submit(job)
        return deleted


# -- work done inside the writer's transaction ----------------------------------------------


def _ensure_tenant(conn: sqlite3.Connection, tenant: str) -> None:
    conn.execute("INSERT OR IGNORE INTO tenants (name, created_at) VALUES (?, ?)",
                 (tenant, now_iso()))


def _apply_edits(conn: sqlite3.Connection, tenant: str, edits: list[Edit]) -> list[EditResult]:
    """Compute every edit against the current state (edits of one call see each other's
    effects, in order), then write the net changes with a few ``executemany`` calls."""
    _ensure_tenant(conn, tenant)
    ids = list(dict.fromkeys(edit.entity_id for edit in edits))
    stored = _load_many(conn, tenant, ids)            # id -> (rid, doc)
    state: dict[str, Entity | None] = {i: (stored[i][1] if i in stored else None) for i in ids}
    results: list[EditResult] = []
    for edit in edits:
        before = state[edit.entity_id]
        try:
            after = edit.fn(before)
        except NgsiLdError as exc:
            results.append(EditResult(edit.entity_id, before, before, exc))
            continue
        except Exception as exc:  # a bug in an update rule must not take the batch down
            log.exception("update rule failed for %s", edit.entity_id)
            results.append(EditResult(edit.entity_id, before, before,
                                      InternalError(f"{type(exc).__name__}: {exc}")))
            continue
        state[edit.entity_id] = after
        results.append(EditResult(edit.entity_id, before, after))
    _write_state(conn, tenant, stored, state)
    return results


def _load_many(conn: sqlite3.Connection, tenant: str,
               ids: list[str]) -> dict[str, tuple[int, Entity]]:
    found: dict[str, tuple[int, Entity]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT rid, id, doc FROM entities WHERE tenant = ? AND id IN ({marks})",  # noqa: S608
            (tenant, *chunk))
        for rid, entity_id, doc in rows:
            found[entity_id] = (rid, orjson.loads(doc))
    return found


def _write_state(conn: sqlite3.Connection, tenant: str, stored: dict[str, tuple[int, Entity]],
                 state: dict[str, Entity | None]) -> None:
    deleted: list[tuple[int]] = []
    updated: list[tuple[str, int]] = []
    inserted: list[tuple[int, str, str, str]] = []
    reindexed: list[int] = []
    (next_rid,) = conn.execute("SELECT coalesce(max(rid), 0) + 1 FROM entities").fetchone()
    types: list[tuple[str, str, int]] = []
    geo: list[tuple[int, str, tuple[float, float, float, float]]] = []
    for entity_id, entity in state.items():
        old = stored.get(entity_id)
        if old is not None and entity is old[1]:
            continue  # untouched (every edit failed or returned its input)
        if entity is None:
            if old is not None:
                deleted.append((old[0],))
                reindexed.append(old[0])
            continue
        doc = orjson.dumps(entity).decode()
        if old is None:
            rid = next_rid
            next_rid += 1
            inserted.append((rid, tenant, entity_id, doc))
        else:
            rid = old[0]
            updated.append((doc, rid))
            reindexed.append(rid)
        types.extend((tenant, t, rid) for t in entity["type"])
        for attr, instances in entity.get("attrs", {}).items():
            for instance in instances:
                if instance.get("type") == GEOPROPERTY and isinstance(instance.get("value"), dict):
                    geo.append((rid, attr, geometry_bbox(instance["value"])))
    if reindexed:
        marks = [(rid,) for rid in reindexed]
        conn.executemany("DELETE FROM entity_types WHERE rid = ?", marks)
        conn.executemany(
            "DELETE FROM geo_index WHERE gid IN (SELECT gid FROM geo_refs WHERE rid = ?)", marks)
        conn.executemany("DELETE FROM geo_refs WHERE rid = ?", marks)
    if deleted:
        conn.executemany("DELETE FROM entities WHERE rid = ?", deleted)
    if updated:
        conn.executemany("UPDATE entities SET doc = ? WHERE rid = ?", updated)
    if inserted:
        conn.executemany("INSERT INTO entities (rid, tenant, id, doc) VALUES (?, ?, ?, ?)",
                         inserted)
    if types:
        conn.executemany("INSERT OR IGNORE INTO entity_types (tenant, type, rid) VALUES (?, ?, ?)",
                         types)
    if geo:
        (next_gid,) = conn.execute("SELECT coalesce(max(gid), 0) + 1 FROM geo_refs").fetchone()
        refs, boxes = [], []
        for offset, (rid, attr, (minx, miny, maxx, maxy)) in enumerate(geo):
            gid = next_gid + offset
            refs.append((gid, rid, attr))
            boxes.append((gid, minx, maxx, miny, maxy))
        conn.executemany("INSERT INTO geo_refs (gid, rid, attr) VALUES (?, ?, ?)", refs)
        conn.executemany("INSERT INTO geo_index (gid, minx, maxx, miny, maxy) "
                         "VALUES (?, ?, ?, ?, ?)", boxes)


# -- work done on a reader thread -------------------------------------------------------------


def _query(conn: sqlite3.Connection, tenant: str, query: EntityQuery) -> QueryResult:
    if query.geo is not None:
        return _geo_query(conn, tenant, query)
    entities: list[dict[str, object]] = []
    if query.limit > 0:
        sql, params = select_sql(tenant, query)
        entities = [orjson.loads(doc) for (doc,) in conn.execute(sql, params)]
    count = None
    if query.count:
        sql, params = count_sql(tenant, query)
        (count,) = conn.execute(sql, params).fetchone()
    return QueryResult(entities, count)


def _geo_query(conn: sqlite3.Connection, tenant: str, query: EntityQuery) -> QueryResult:
    """Index prefilter (R*Tree box) in SQL, exact predicate in Python, then paginate."""
    assert query.geo is not None
    predicate = make_predicate(query.geo)
    attr = query.geo.geoproperty
    sql, params = select_sql(tenant, query, paginate=False)
    matches: list[dict[str, object]] = []
    wanted = query.offset + query.limit
    count = 0
    for (doc,) in conn.execute(sql, params):
        entity = orjson.loads(doc)
        if any(predicate(instance["value"]) for instance in entity["attrs"].get(attr, ())
               if isinstance(instance.get("value"), dict)):
            count += 1
            if len(matches) < wanted:
                matches.append(entity)
            elif not query.count:
                break
    return QueryResult(matches[query.offset:wanted], count if query.count else None)


def _entity_types(conn: sqlite3.Connection, tenant: str) -> list[TypeInfo]:
    infos = []
    rows = conn.execute("SELECT type, count(*) FROM entity_types WHERE tenant = ? "
                        "GROUP BY type ORDER BY type", (tenant,)).fetchall()
    for type_iri, count in rows:
        attrs = conn.execute(
            "SELECT DISTINCT j.key FROM entity_types t JOIN entities e ON e.rid = t.rid, "
            "json_each(e.doc, '$.attrs') j WHERE t.tenant = ? AND t.type = ? ORDER BY j.key",
            (tenant, type_iri)).fetchall()
        infos.append(TypeInfo(type_iri, count, tuple(a for (a,) in attrs)))
    return infos


def _attributes(conn: sqlite3.Connection, tenant: str) -> list[AttributeInfo]:
    rows = conn.execute(
        "SELECT j.key, count(DISTINCT e.rid), group_concat(DISTINCT json_extract(j.value, "
        "'$[0].type')) FROM entities e, json_each(e.doc, '$.attrs') j WHERE e.tenant = ? "
        "GROUP BY j.key ORDER BY j.key", (tenant,)).fetchall()
    infos = []
    for attr, count, kinds in rows:
        types = conn.execute(
            "SELECT DISTINCT t.type FROM entities e JOIN entity_types t ON t.rid = e.rid "
            "WHERE e.tenant = ? AND json_type(e.doc, ?) IS NOT NULL ORDER BY t.type",
            (tenant, _attr_path(attr))).fetchall()
        infos.append(AttributeInfo(attr, count, tuple(sorted((kinds or "").split(","))),
                                   tuple(t for (t,) in types)))
    return infos


def _attr_path(attr: str) -> str:
    return '$.attrs."' + attr.replace('"', '\\"') + '"'
