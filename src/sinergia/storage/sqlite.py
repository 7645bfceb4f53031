"""The embedded SQLite backend of the Store protocol.

WAL mode; one writer thread that groups concurrent writes into few commits
(:mod:`sinergia.storage.sqlite_writer`); point reads on the event loop's own connection (a
primary-key look-up costs less than a hop to a thread); queries on a small pool of reader
threads so a long scan never stalls the server (a geo-query's documents are then parsed and
tested on the event loop: :mod:`sinergia.storage.sqlite_geo`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import orjson

from sinergia.ngsild.errors import InternalError, NgsiLdError
from sinergia.ngsild.geo import geometry_bbox
from sinergia.ngsild.history import HistoryInstance, without_id
from sinergia.ngsild.model import GEOPROPERTY, Entity, now_iso
from sinergia.ngsild.query import EntityQuery, QueryResult
from sinergia.storage import sqlite_filters, sqlite_geo, sqlite_history, sqlite_values
from sinergia.storage.base import (
    PARKED,
    AttributeInfo,
    ChangeListener,
    DeliveryNote,
    DeliveryStatus,
    Edit,
    EditResult,
    HistoryQuery,
    HistoryResult,
    OutboxConsumer,
    OutboxItem,
    OutboxMessage,
    Record,
    RecordsView,
    TypeInfo,
    payload_texts,
)
from sinergia.storage.sqlite_coalesce import Coalescer
from sinergia.storage.sqlite_queries import count_sql, select_sql
from sinergia.storage.sqlite_schema import migrate
from sinergia.storage.sqlite_writer import Writer
from sinergia.storage.wakeups import OutboxHandoff, Wakeups

log = logging.getLogger(__name__)

# One call of SQLiteStore.apply: tenant, edits, the listener view's (kind, generation) to check.
_ApplyCall = tuple[str, list[Edit], tuple[str, int | None] | None]
_ApplyOutcome = tuple[list[EditResult], list[OutboxItem]] | BaseException | None


# Page cache of each reader connection, in KiB.
_READER_CACHE_KIB = 32 * 1024


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
                 write_batch_max: int = 512, history: bool = True, **_: Any) -> None:
        self.url = url
        self._history = history
        self._listener: ChangeListener | None = None
        self._view: RecordsView | None = None
        # Rung after this process's own commits; other processes sharing the file are seen
        # when the waiters' timeouts make them look anyway.
        self._wakeups = Wakeups()
        self._handoff = OutboxHandoff(self._wakeups.outbox.ring)
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
        self._attr_ids = sqlite_values.AttrIds()
        self._writer = Writer(self._connect_writer, batch_max=write_batch_max,
                              on_rollback=self._attr_ids.forget)
        self._applies: Coalescer[_ApplyCall, _ApplyOutcome] = Coalescer(self._writer,
                                                                         self._apply_calls)
        self._local = threading.local()
        self._keepalive: sqlite3.Connection | None = None
        self._all_readers: list[sqlite3.Connection] = []
        # Connections of the reader threads, taken and given back per query: anyio retires
        # idle worker threads, so a connection per thread would pile up (each with its own
        # page cache) as threads come and go. The limiter keeps at most ``readers`` in use.
        self._idle_readers: list[sqlite3.Connection] = []
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

    def _new_reader(self) -> sqlite3.Connection:
        conn = self._connect()
        conn.execute("PRAGMA query_only = ON")
        # Readers are several (the pool and each event loop's own): each with the writer's
        # 64 MiB page cache and 256 MiB map, a big database read at random would make the
        # server's memory several times that. A map is per connection, and every page it has
        # touched counts as the process's own; copies from the OS page cache cost little more.
        conn.execute(f"PRAGMA cache_size = -{_READER_CACHE_KIB}")
        conn.execute("PRAGMA mmap_size = 0")
        with self._lock:
            self._all_readers.append(conn)
        return conn

    def _reader(self) -> sqlite3.Connection:
        """The calling thread's own connection, for reads inline on an event loop thread."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._new_reader()
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
            self._idle_readers.clear()
        self._local = threading.local()
        if self._keepalive is not None:
            self._keepalive.close()
            self._keepalive = None

    def _take_reader(self) -> sqlite3.Connection:
        with self._lock:
            conn = self._idle_readers.pop() if self._idle_readers else None
        return self._new_reader() if conn is None else conn

    def _give_back(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            self._idle_readers.append(conn)

    async def _read(self, fn: Any, *args: Any) -> Any:
        def run() -> Any:
            conn = self._take_reader()
            try:
                return fn(conn, *args)
            finally:
                self._give_back(conn)

        return await anyio.to_thread.run_sync(run, limiter=self._readers)

    # -- writes --------------------------------------------------------------------------

    def set_change_listener(self, listener: ChangeListener | None,
                            view: RecordsView | None = None) -> None:
        self._listener, self._view = listener, view

    async def apply(self, tenant: str, edits: Sequence[Edit]) -> list[EditResult]:
        view = self._view
        # (kind, generation) the listener's view must still have, or None: no check. After one
        # refresh, begun after this call was, the view knows every change made before it.
        check = None if view is None else (view.kind, view.generation)
        call = (tenant, list(edits), check)
        outcome = await self._applies.submit(call)
        while outcome is None:
            assert view is not None
            await view.refresh()
            outcome = await self._applies.submit((call[0], call[1], None))
        if isinstance(outcome, BaseException):
            raise outcome
        results, queued = outcome
        self._handoff.committed(queued)
        return results

    def _apply_calls(self, conn: sqlite3.Connection,
                     calls: list[_ApplyCall]) -> list[_ApplyOutcome]:
        """The writer's side of :meth:`apply` for the calls of one batch, in order: None for a
        call whose listener view is out of date (nothing written: refresh and rerun), else
        its results and the notifications it queued, or the error that stopped it.
        Consecutive calls of one tenant are applied together."""
        outcomes: list[_ApplyOutcome] = [None] * len(calls)
        generations: dict[str, int | None] = {}
        runs: list[tuple[str, list[int]]] = []
        for index, (tenant, _, check) in enumerate(calls):
            if check is not None:
                if check[0] not in generations:
                    generations[check[0]] = _generation(conn, check[0])
                if generations[check[0]] != check[1]:
                    continue
            if runs and runs[-1][0] == tenant:
                runs[-1][1].append(index)
            else:
                runs.append((tenant, [index]))
        for tenant, indexes in runs:
            try:
                self._in_savepoint(conn, tenant, calls, indexes, outcomes)
            except Exception:
                # Again one by one, so that whatever failed fails only the call it belongs to.
                for index in indexes:
                    try:
                        self._in_savepoint(conn, tenant, calls, [index], outcomes)
                    except Exception as exc:
                        log.exception("SQLite write failed")
                        outcomes[index] = exc
        return outcomes

    def _in_savepoint(self, conn: sqlite3.Connection, tenant: str, calls: list[_ApplyCall],
                      indexes: list[int], outcomes: list[_ApplyOutcome]) -> None:
        conn.execute("SAVEPOINT apply_run")
        try:
            self._apply_run(conn, tenant, calls, indexes, outcomes)
        except BaseException:
            conn.execute("ROLLBACK TO apply_run")
            conn.execute("RELEASE apply_run")
            self._attr_ids.forget()  # ids assigned inside the savepoint are gone
            raise
        conn.execute("RELEASE apply_run")

    def _apply_run(self, conn: sqlite3.Connection, tenant: str, calls: list[_ApplyCall],
                   indexes: list[int], outcomes: list[_ApplyOutcome]) -> None:
        edits = [edit for index in indexes for edit in calls[index][1]]
        results = _apply_edits(conn, tenant, edits, self._attr_ids)
        ok = [r for r in results if r.error is None and r.after is not r.before]
        queued: list[OutboxItem] = []
        if ok:
            if self._history:
                sqlite_history.record_changes(
                    conn, tenant, self._attr_ids, [r for r, e in zip(results, edits, strict=True)
                                   if e.history and r.error is None], now_iso())
            listener = self._listener
            messages = listener(tenant, ok) if listener is not None else ()
            queued = _enqueue(conn, tenant, messages, self._handoff.due(time.time()))
        start = 0
        for index in indexes:
            end = start + len(calls[index][1])
            # The run's notifications are handed over once, by its first call.
            outcomes[index] = (results[start:end], queued if index == indexes[0] else [])
            start = end

    # -- outbox ----------------------------------------------------------------------------

    async def wait_outbox(self, timeout: float) -> bool:
        """True when this process committed new outbox messages, False after ``timeout``
        (other processes sharing the file are seen by the waiter's next look)."""
        return await self._wakeups.outbox.wait(timeout)

    def set_outbox_consumer(self, consumer: OutboxConsumer | None,
                            lease_seconds: float = 0.0) -> None:
        self._handoff.set(consumer, lease_seconds)

    async def enqueue(self, tenant: str, messages: Sequence[OutboxMessage]) -> None:
        def job(conn: sqlite3.Connection) -> list[OutboxItem]:
            return _enqueue(conn, tenant, messages, self._handoff.due(time.time()))

        self._handoff.committed(await self._writer.submit(job))

    async def claim_outbox(self, limit: int, lease_seconds: float) -> list[OutboxItem]:
        def job(conn: sqlite3.Connection) -> list[OutboxItem]:
            now = time.time()
            rows = conn.execute(
                "SELECT id, tenant, subscription_id, payload, attempts FROM outbox "
                "WHERE due <= ? ORDER BY due, id LIMIT ?", (now, limit)).fetchall()
            conn.executemany("UPDATE outbox SET due = ? WHERE id = ?",
                             [(now + lease_seconds, row[0]) for row in rows])
            return [OutboxItem(i, t, s, orjson.loads(p), a) for i, t, s, p, a in rows]

        items: list[OutboxItem] = await self._writer.submit(job)
        return items

    async def settle_outbox(self, done: Sequence[int],
                            retry: Sequence[tuple[int, float]] = (),
                            defer: Sequence[tuple[int, float]] = (),
                            notes: Sequence[DeliveryNote] = ()) -> None:
        def job(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM outbox WHERE id BETWEEN ? AND ?", id_runs(done))
            conn.executemany("UPDATE outbox SET due = ?, attempts = attempts + 1 WHERE id = ?",
                             [(due, i) for i, due in retry])
            conn.executemany("UPDATE outbox SET due = ? WHERE id = ?",
                             [(due, i) for i, due in defer])
            # Times compare as strings (ISO 8601, all UTC, same precision): the latest wins
            # even when notes of other processes land out of order; max() of SQLite is
            # NULL when either side is, hence the coalesce to '' and back.
            conn.executemany(
                "INSERT INTO delivery_status (tenant, subscription_id, times_sent, times_failed,"
                " last_notification, last_success, last_failure) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (tenant, subscription_id) DO UPDATE SET "
                "times_sent = times_sent + excluded.times_sent, "
                "times_failed = times_failed + excluded.times_failed, "
                "last_notification = nullif(max(coalesce(last_notification, ''), "
                "coalesce(excluded.last_notification, '')), ''), "
                "last_success = nullif(max(coalesce(last_success, ''), "
                "coalesce(excluded.last_success, '')), ''), "
                "last_failure = nullif(max(coalesce(last_failure, ''), "
                "coalesce(excluded.last_failure, '')), '')",
                [(n.tenant, n.subscription_id, n.sent, n.failed, n.last_notification,
                  n.last_success, n.last_failure) for n in notes])

        await self._writer.submit(job)

    async def claim_parked(self, tenant: str, subscription_id: str, limit: int,
                           lease_seconds: float) -> list[OutboxItem]:
        def job(conn: sqlite3.Connection) -> list[OutboxItem]:
            rows = conn.execute(
                "SELECT id, tenant, subscription_id, payload, attempts FROM outbox "
                "WHERE due >= 1e12 AND tenant = ? AND subscription_id = ? ORDER BY id LIMIT ?",
                (tenant, subscription_id, limit)).fetchall()
            leased = time.time() + lease_seconds
            conn.executemany("UPDATE outbox SET due = ? WHERE id = ?",
                             [(leased, row[0]) for row in rows])
            return [OutboxItem(i, t, s, orjson.loads(p), a) for i, t, s, p, a in rows]

        items: list[OutboxItem] = await self._writer.submit(job)
        return items

    async def sweep_parked(self, now: float) -> tuple[int, list[tuple[str, str]]]:
        def job(conn: sqlite3.Connection) -> tuple[int, list[tuple[str, str]]]:
            dropped = conn.execute("DELETE FROM outbox WHERE due >= ? AND due <= ?",
                                   (PARKED, PARKED + now)).rowcount
            rest = conn.execute("SELECT DISTINCT tenant, subscription_id FROM outbox "
                                "WHERE due >= 1e12").fetchall()
            return dropped, [(t, s) for t, s in rest]

        swept: tuple[int, list[tuple[str, str]]] = await self._writer.submit(job)
        return swept

    async def outbox_size(self) -> int:
        (size,) = self._reader().execute("SELECT count(*) FROM outbox").fetchone()
        return int(size)

    async def delivery_status(self, tenant: str, subscription_id: str) -> DeliveryStatus:
        row = self._reader().execute(
            "SELECT times_sent, times_failed, last_notification, last_success, last_failure "
            "FROM delivery_status WHERE tenant = ? AND subscription_id = ?",
            (tenant, subscription_id)).fetchone()
        return DeliveryStatus() if row is None else DeliveryStatus(*row)

    # -- history ---------------------------------------------------------------------------

    async def add_history(self, tenant: str, entity_id: str, types: Sequence[str],
                          instances: Sequence[HistoryInstance]) -> None:
        def job(conn: sqlite3.Connection) -> None:
            _ensure_tenant(conn, tenant)
            sqlite_history.add_many(conn, tenant, self._attr_ids,
                                    [(entity_id, types, [without_id(i) for i in instances])])

        await self._writer.submit(job)

    async def query_history(self, tenant: str, query: HistoryQuery) -> HistoryResult:
        result: HistoryResult = await self._read(sqlite_history.query, tenant, query)
        return result

    async def delete_history(self, tenant: str, entity_id: str, attr: str | None = None,
                             instance_id: str | None = None) -> int:
        def job(conn: sqlite3.Connection) -> int:
            return sqlite_history.delete_history(conn, tenant, entity_id, attr, instance_id)

        gone: int = await self._writer.submit(job)
        return gone

    async def replace_history_instance(self, tenant: str, entity_id: str, attr: str,
                                       instance: HistoryInstance) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            return sqlite_history.replace_instance(conn, tenant, entity_id, attr, instance)

        replaced: bool = await self._writer.submit(job)
        return replaced

    async def purge_history(self, older_than_ms: int, limit: int = 10_000) -> int:
        def job(conn: sqlite3.Connection) -> int:
            return sqlite_history.purge(conn, older_than_ms, limit)

        gone: int = await self._writer.submit(job)
        return gone

    # -- reads ---------------------------------------------------------------------------

    async def get_entity(self, tenant: str, entity_id: str) -> Entity | None:
        doc = await self.get_document(tenant, entity_id)
        return None if doc is None else orjson.loads(doc)

    async def get_document(self, tenant: str, entity_id: str) -> str | None:
        # Inline on the calling thread: one indexed look-up is cheaper than a thread hop.
        row = self._reader().execute(
            "SELECT doc FROM entities WHERE tenant = ? AND id = ?", (tenant, entity_id)
        ).fetchone()
        return None if row is None else str(row[0])

    async def query_entities(self, tenant: str, query: EntityQuery) -> QueryResult:
        if query.geo is not None:
            # Reads on a worker thread, tests on this one (see sqlite_geo): the connection
            # and a reader's place are held in between.
            async with self._readers:
                conn = self._take_reader()
                try:
                    return await sqlite_geo.geo_query(conn, tenant, query)
                finally:
                    self._give_back(conn)
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

    # -- per-tenant records ---------------------------------------------------------------

    async def put_record(self, kind: str, tenant: str, record_id: str, record: dict[str, Any],
                         *, only_if_absent: bool = False) -> bool:
        doc = orjson.dumps(record).decode()
        verb = "INSERT OR IGNORE" if only_if_absent else "INSERT OR REPLACE"

        def job(conn: sqlite3.Connection) -> bool:
            _ensure_tenant(conn, tenant)
            cursor = conn.execute(f"{verb} INTO records (kind, tenant, id, record) "
                                  "VALUES (?, ?, ?, ?)", (kind, tenant, record_id, doc))
            return _record_changed(conn, kind, cursor.rowcount > 0)

        stored: bool = await self._writer.submit(job)
        if stored:
            self._wakeups.records(kind).ring()
        return stored

    async def get_record(self, kind: str, tenant: str, record_id: str) -> dict[str, Any] | None:
        row = self._reader().execute(
            "SELECT record FROM records WHERE kind = ? AND tenant = ? AND id = ?",
            (kind, tenant, record_id)).fetchone()
        return None if row is None else orjson.loads(row[0])

    async def list_records(self, kind: str, tenant: str | None = None) -> list[Record]:
        sql = "SELECT tenant, id, record FROM records WHERE kind = ?"
        params: tuple[str, ...] = (kind,)
        if tenant is not None:
            sql += " AND tenant = ?"
            params = (kind, tenant)
        rows = self._reader().execute(sql + " ORDER BY tenant, id", params).fetchall()
        return [Record(t, i, orjson.loads(r)) for t, i, r in rows]

    async def delete_record(self, kind: str, tenant: str, record_id: str) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute("DELETE FROM records WHERE kind = ? AND tenant = ? AND id = ?",
                                  (kind, tenant, record_id))
            return _record_changed(conn, kind, cursor.rowcount > 0)

        deleted: bool = await self._writer.submit(job)
        if deleted:
            self._wakeups.records(kind).ring()
        return deleted

    async def records_generation(self, kind: str) -> int:
        generation = _generation(self._reader(), kind)
        if generation is None:  # start counting this kind's changes
            def job(conn: sqlite3.Connection) -> int | None:
                conn.execute("INSERT OR IGNORE INTO record_generations (kind, generation) "
                             "VALUES (?, 0)", (kind,))
                return _generation(conn, kind)

            generation = await self._writer.submit(job)
        return generation or 0

    async def wait_records(self, kind: str, timeout: float) -> bool:
        return await self._wakeups.records(kind).wait(timeout)


# -- work done inside the writer's transaction ----------------------------------------------


def _ensure_tenant(conn: sqlite3.Connection, tenant: str) -> None:
    conn.execute("INSERT OR IGNORE INTO tenants (name, created_at) VALUES (?, ?)",
                 (tenant, now_iso()))


def _generation(conn: sqlite3.Connection, kind: str) -> int | None:
    row = conn.execute("SELECT generation FROM record_generations WHERE kind = ?",
                       (kind,)).fetchone()
    return None if row is None else int(row[0])


def _record_changed(conn: sqlite3.Connection, kind: str, changed: bool) -> bool:
    """Count a change of a record of ``kind`` (when its changes are counted)."""
    if changed:
        conn.execute("UPDATE record_generations SET generation = generation + 1 "
                     "WHERE kind = ?", (kind,))
    return changed


def id_runs(ids: Sequence[int]) -> list[tuple[int, int]]:
    """The ids as runs of consecutive ones, ``(first, last)``: the messages a change causes
    have consecutive ids and are mostly done together, and deleting a run costs one
    statement and one descent of the table instead of one per message."""
    runs: list[tuple[int, int]] = []
    for i in sorted(ids):
        if runs and i <= runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], max(i, runs[-1][1]))
        else:
            runs.append((i, i))
    return runs


def _enqueue(conn: sqlite3.Connection, tenant: str, messages: Sequence[OutboxMessage],
             due: float) -> list[OutboxItem]:
    if not messages:
        return []
    conn.executemany(
        "INSERT INTO outbox (tenant, subscription_id, payload, due) VALUES (?, ?, ?, ?)",
        [(tenant, m.subscription_id, text, due)
         for m, text in zip(messages, payload_texts(messages), strict=True)])
    # Inside the writer's transaction nobody else inserts, and a new rowid is one more than
    # the largest: the messages got the consecutive ids that end at the last one.
    (last,) = conn.execute("SELECT last_insert_rowid()").fetchone()
    first = last - len(messages) + 1
    return [OutboxItem(first + n, tenant, m.subscription_id, m.payload, 0)
            for n, m in enumerate(messages)]


def _apply_edits(conn: sqlite3.Connection, tenant: str, edits: list[Edit],
                 attr_ids: sqlite_values.AttrIds | None = None) -> list[EditResult]:
    """Compute every edit against the current state (edits of one call see each other's
    effects, in order), then write the net changes with a few ``executemany`` calls."""
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
    if any(result.error is None for result in results):
        # A tenant is created by its first successful write; a failed one changes nothing.
        _ensure_tenant(conn, tenant)
    _write_state(conn, tenant, stored, state, attr_ids or sqlite_values.AttrIds())
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
                 state: dict[str, Entity | None], attr_ids: sqlite_values.AttrIds) -> None:
    deleted: list[tuple[int]] = []
    updated: list[tuple[str, int]] = []
    inserted: list[tuple[int, str, str, str]] = []
    retyped: list[tuple[int]] = []    # rows whose entity_types must be rewritten
    relocated: list[tuple[int]] = []  # rows whose geo index entries must be rewritten
    (next_rid,) = conn.execute("SELECT coalesce(max(rid), 0) + 1 FROM entities").fetchone()
    types: list[tuple[str, str, int]] = []
    geo: list[tuple[int, str, tuple[float, float, float, float]]] = []
    values: list[tuple[int, Entity | None, Entity | None]] = []
    for entity_id, entity in state.items():
        old = stored.get(entity_id)
        if old is not None and entity is old[1]:
            continue  # untouched (every edit failed or returned its input)
        if entity is None:
            if old is not None:
                deleted.append((old[0],))
                retyped.append((old[0],))
                relocated.append((old[0],))
                values.append((old[0], old[1], None))
            continue
        doc = orjson.dumps(entity).decode()
        geometries = _geometries(entity)
        if old is None:
            rid = next_rid
            next_rid += 1
            inserted.append((rid, tenant, entity_id, doc))
            new_types, new_geo = True, True
        else:
            rid = old[0]
            updated.append((doc, rid))
            # Most updates change values, not types or places: leave those indexes alone.
            new_types = old[1].get("type") != entity["type"]
            new_geo = _geometries(old[1]) != geometries
            if new_types:
                retyped.append((rid,))
            if new_geo:
                relocated.append((rid,))
        values.append((rid, None if old is None else old[1], entity))
        if new_types:
            types.extend((tenant, t, rid) for t in entity["type"])
        if new_geo:
            geo.extend((rid, attr, geometry_bbox(value)) for attr, value in geometries)
    if retyped:
        conn.executemany("DELETE FROM entity_types WHERE rid = ?", retyped)
    if relocated:
        conn.executemany(
            "DELETE FROM geo_index WHERE gid IN (SELECT gid FROM geo_refs WHERE rid = ?)",
            relocated)
        conn.executemany("DELETE FROM geo_refs WHERE rid = ?", relocated)
    if deleted:
        conn.executemany("DELETE FROM entities WHERE rid = ?", deleted)
    if updated:
        conn.executemany("UPDATE entities SET doc = ? WHERE rid = ?", updated)
    if inserted:
        conn.executemany("INSERT INTO entities (rid, tenant, id, doc) VALUES (?, ?, ?, ?)",
                         inserted)
    sqlite_values.sync_values(conn, attr_ids, values)
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


def _geometries(entity: Entity) -> list[tuple[str, Any]]:
    """(attribute, geometry) of every GeoProperty instance: what the geo index holds."""
    return [(attr, instance["value"]) for attr, instances in entity.get("attrs", {}).items()
            for instance in instances
            if instance.get("type") == GEOPROPERTY and isinstance(instance.get("value"), dict)]


# -- work done on a reader thread -------------------------------------------------------------


def _query(conn: sqlite3.Connection, tenant: str, query: EntityQuery) -> QueryResult:
    assert query.geo is None  # see sqlite_geo
    documents: list[str] = []
    if query.limit > 0:
        sql, params = select_sql(tenant, query)
        documents = [doc for (doc,) in conn.execute(sql, params)]
    count = None
    if query.count:
        sql, params = count_sql(tenant, query)
        (count,) = conn.execute(sql, params).fetchone()
    # Parsed only if someone looks: the API renders from a cache keyed by the text.
    return QueryResult(count=count, documents=documents)


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
