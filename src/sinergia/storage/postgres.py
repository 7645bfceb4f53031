"""The PostgreSQL (+ PostGIS) backend of the Store protocol.

psycopg 3 with a bounded pool of autocommit connections (``psycopg_pool``); every statement
runs under ``statement_timeout``. Writes are one transaction each: the touched entities are
locked (``SELECT … FOR UPDATE``, in id order so concurrent writers cannot deadlock on them),
the edits run in Python against the locked state exactly as on SQLite, and the net changes,
their history and their notifications go out in one pipelined round trip of set-based
statements (:mod:`sinergia.storage.postgres_writes`, arrays bound in binary). Look-ups by id
made at the same time share one statement (:mod:`sinergia.storage.postgres_lookups`); queries run
as :mod:`sinergia.storage.postgres_queries` plans them. PostgreSQL already shares one WAL
flush between transactions that commit together, so concurrent ``apply`` calls need no extra
grouping to commit cheaply.

Several processes may serve one database: LISTEN/NOTIFY wakes them on each other's changes
(:mod:`sinergia.storage.postgres_notify`), and every write transaction checks that the
listener's copy of the subscriptions is current (``record_generations``).

Failures: a lost connection or a database that does not answer is
:class:`~sinergia.ngsild.errors.ServiceUnavailable` (503); the pool replaces broken
connections by itself, and a statement that failed because its connection had died is run once
more on a fresh one (a write only if it had not reached COMMIT). Write conflicts (two writers
creating the same entity, a deadlock) are retried transparently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
from psycopg import AsyncConnection, errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from sinergia.ngsild.errors import (
    InternalError,
    NgsiLdError,
    ServiceUnavailable,
    TooComplexQuery,
)
from sinergia.ngsild.model import Entity, now_iso
from sinergia.ngsild.query import EntityQuery, QueryResult
from sinergia.storage import postgres_history as pg_history
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
from sinergia.storage.postgres_arrays import TextArray
from sinergia.storage.postgres_lookups import IdLookups
from sinergia.storage.postgres_notify import ChangeSignals
from sinergia.storage.postgres_queries import plan, run_query
from sinergia.storage.postgres_schema import migrate
from sinergia.storage.postgres_writes import Changes, changes_of, serialise, write_state
from sinergia.storage.wakeups import OutboxHandoff, Wakeups

if TYPE_CHECKING:
    from sinergia.ngsild.history import HistoryInstance

log = logging.getLogger(__name__)

Conn = AsyncConnection[Any]
T = TypeVar("T")
_MAX_CONFLICT_RETRIES = 20


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class PostgresStore:
    def __init__(self, url: str, *, history: bool = True, pool_size: int = 10,
                 statement_timeout: float = 30.0, connect_timeout: float = 5.0,
                 migrate: str = "online", **_: Any) -> None:
        self.url = url
        self._history = history
        self._listener: ChangeListener | None = None
        self._view: RecordsView | None = None
        self._pool_size = max(1, pool_size)
        self._statement_timeout = statement_timeout
        self._connect_timeout = connect_timeout
        if migrate not in ("online", "all", "none"):
            raise ValueError("migrate must be online, all or none")
        self._migrate = migrate
        params = conninfo_to_dict(url)
        # JIT compilation pays off only for long analytical queries; for a broker's short
        # statements it costs far more than it saves (seconds once a 1,000-entity batch or a
        # query over millions of rows crosses jit_above_cost). Generic plans for the statements
        # psycopg prepares (those run five times on a connection): the statements' shape, not
        # their values, decides their plans (the query planner in postgres_queries chooses the
        # driving index), and PostgreSQL's default keeps re-planning a prepared q query for
        # each execution when it guesses a custom plan cheaper — measured at 1M entities,
        # re-planning cost a third of the query's CPU time. Both before the URL's own options,
        # which may change them back.
        options = " ".join(filter(None, (
            "-c jit=off -c plan_cache_mode=force_generic_plan", str(params.get("options") or ""),
            f"-c statement_timeout={max(0, round(statement_timeout * 1000))}")))
        self._connect_kwargs: dict[str, Any] = {
            "autocommit": True, "options": options,
            "connect_timeout": max(1, round(connect_timeout)),
            "application_name": str(params.get("application_name") or "sinergia")}
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._wakeups = Wakeups()
        self._signals = ChangeSignals(url, self._connect_kwargs, self._wakeups)
        self._handoff = OutboxHandoff(self._signals.outbox_changed)
        self._partitions = pg_history.Partitions()
        self._tenants: set[str] = set()  # known to exist: no INSERT needed
        self._lookups = IdLookups(self._documents)

    # -- connections ---------------------------------------------------------------------

    @staticmethod
    async def _configure(conn: Conn) -> None:
        set_json_loads(orjson.loads, conn)

    async def open(self) -> None:
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self.url, min_size=1, max_size=self._pool_size, kwargs=self._connect_kwargs,
            configure=self._configure, open=False, timeout=self._connect_timeout,
            # Give up a connection slot after this long without the database (new requests
            # start fresh attempts), so recovery never waits on a long back-off.
            reconnect_timeout=max(30.0, 2 * self._connect_timeout), name="sinergia")
        try:
            await pool.open(wait=True, timeout=self._connect_timeout)
            async with pool.connection() as conn:
                if self._migrate != "none":
                    await conn.execute("SET statement_timeout = 0")  # migrations take long
                    try:
                        await migrate(conn, allow_offline=self._migrate == "all")
                    finally:
                        await conn.execute("RESET statement_timeout")
                await self._partitions.load(conn)
                if self._history:
                    await self._partitions.create_ahead(conn, int(time.time() * 1000))
        except PoolTimeout as exc:
            await pool.close()
            raise ServiceUnavailable(f"Cannot connect to the database at {safe_url(self.url)} "
                                     f"within {self._connect_timeout:g} s") from exc
        except BaseException:
            await pool.close()
            raise
        self._pool = pool
        await self._signals.start(pool, wait=self._connect_timeout)

    async def close(self) -> None:
        if self._pool is not None:
            await self._signals.stop()
            await self._pool.close()
            self._pool = None

    def _unavailable(self, exc: BaseException, *, unknown_outcome: bool = False) -> NgsiLdError:
        where = safe_url(self.url)
        if isinstance(exc, errors.QueryCanceled):
            return ServiceUnavailable(f"The database did not answer within "
                                      f"{self._statement_timeout:g} s; try again later")
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        message = (f"The database at {where} is unavailable ({detail}); Sinergia reconnects "
                   "by itself when it returns")
        if unknown_outcome:
            message += ". The connection broke while committing: the change may or may not " \
                       "have been saved"
        return ServiceUnavailable(message)

    def _pool_or_fail(self) -> AsyncConnectionPool[Conn]:
        if self._pool is None:
            raise ServiceUnavailable("The PostgreSQL store is not open")
        return self._pool

    async def _read(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        """Run ``work`` on a pooled connection; once more on a fresh one if the connection
        turned out to be dead."""
        pool = self._pool_or_fail()
        for attempt in (1, 2):
            conn: Conn | None = None
            try:
                async with pool.connection() as conn:
                    return await work(conn)
            except PoolTimeout as exc:
                raise self._unavailable(exc) from None
            except (errors.ProgramLimitExceeded, errors.InvalidRegularExpression) as exc:
                raise TooComplexQuery(f"The database cannot run this query: {exc}") from None
            except psycopg.OperationalError as exc:
                if attempt == 1 and _lost(conn, exc):
                    await pool.check()
                    continue
                raise self._unavailable(exc) from None
        raise AssertionError("unreachable")

    async def _write(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        """Run ``work`` in one transaction, again after a conflict, after creating missing
        history partitions, or once after a connection that died before COMMIT."""
        pool = self._pool_or_fail()
        conflicts = lost = 0
        while True:
            conn: Conn | None = None
            committing = False
            repair: Awaitable[None] | None = None
            try:
                async with pool.connection() as conn:
                    async with conn.transaction():
                        result = await work(conn)
                        committing = True
                    return result
            except pg_history.MissingPartitions as missing:
                repair = self._on_connection(pool, partial(self._partitions.create,
                                                           months=missing.months))
            except errors.CheckViolation as exc:
                conflicts += 1
                if "no partition" not in str(exc) or conflicts > _MAX_CONFLICT_RETRIES:
                    raise
                # another process dropped a partition this one believed in: look again
                repair = self._on_connection(pool, self._partitions.load)
            except (errors.SerializationFailure, errors.DeadlockDetected,
                    errors.UniqueViolation) as exc:
                conflicts += 1
                if conflicts > _MAX_CONFLICT_RETRIES:
                    raise ServiceUnavailable("Too many concurrent changes to the same "
                                             "entities; try again") from exc
            except PoolTimeout as exc:
                raise self._unavailable(exc) from None
            except psycopg.OperationalError as exc:
                if committing or lost or not _lost(conn, exc):
                    raise self._unavailable(exc, unknown_outcome=committing) from None
                lost += 1
                repair = pool.check()  # drop the dead connections: the retry gets a live one
            if repair is not None:
                try:
                    await repair
                except (PoolTimeout, psycopg.OperationalError) as exc:
                    raise self._unavailable(exc) from None

    @staticmethod
    async def _on_connection(pool: AsyncConnectionPool[Conn],
                             action: Callable[[Conn], Awaitable[None]]) -> None:
        async with pool.connection() as conn:
            await action(conn)

    # -- writes --------------------------------------------------------------------------

    def set_change_listener(self, listener: ChangeListener | None,
                            view: RecordsView | None = None) -> None:
        self._listener, self._view = listener, view

    async def apply(self, tenant: str, edits: Sequence[Edit]) -> list[EditResult]:
        edits = list(edits)
        listener, view, keep_history = self._listener, self._view, self._history
        # (kind, generation) the listener's view must still have, or None: no check. After one
        # refresh, begun after this call was, the view knows every change made before it.
        check = None if view is None else (view.kind, view.generation)

        async def work(conn: Conn) -> tuple[list[EditResult], list[OutboxItem]] | None:
            edited = await self._apply_edits(conn, tenant, edits, check)
            if edited is None:
                return None  # the view is out of date: nothing written, refresh and rerun
            results, changes = edited
            ok = [r for r in results if r.error is None and r.after is not r.before]
            rows = []
            if ok and keep_history:
                rows = pg_history.rows_for_changes(
                    [r for r, e in zip(results, edits, strict=True) if e.history], now_iso())
            messages = listener(tenant, ok) if ok and listener is not None else ()
            # The new state, its history and its notifications in one round trip.
            async with conn.pipeline():
                if any(r.error is None for r in results) and tenant not in self._tenants:
                    # A tenant is created by its first successful write; a failed one
                    # changes nothing.
                    await conn.execute("INSERT INTO tenants (tenant) VALUES (%s) "
                                       "ON CONFLICT DO NOTHING", (tenant,))
                await write_state(conn, tenant, changes)
                await pg_history.write_rows(conn, tenant, rows, self._partitions)
                queued = await _enqueue(conn, tenant, messages,
                                        self._handoff.due(time.time()))
            return results, await queued()

        while (outcome := await self._write(work)) is None:
            assert view is not None
            await view.refresh()
            check = None
        results, queued = outcome
        if any(r.error is None for r in results):
            self._tenants.add(tenant)
        self._handoff.committed(queued)
        return results

    async def _apply_edits(self, conn: Conn, tenant: str, edits: list[Edit],
                           check: tuple[str, int] | None
                           ) -> tuple[list[EditResult], Changes] | None:
        """Run every edit against the locked current state (edits of one call see each
        other's effects, in order); return the results and the net changes to write (the
        new entities' rids already drawn). None when ``check`` (kind, generation) is no
        longer the records' generation."""
        ids = list(dict.fromkeys(edit.entity_id for edit in edits))
        async with conn.pipeline():  # one round trip for the check and the locking read
            generation = None if check is None else await conn.execute(
                "SELECT generation FROM record_generations WHERE kind = %s", (check[0],))
            cur = await conn.execute(
                "SELECT id, rid, doc FROM entities WHERE tenant = %s AND id = ANY(%b::text[]) "
                "ORDER BY id FOR UPDATE", (tenant, TextArray([i for i in ids if "\x00" not in i])))
        if generation is not None and check is not None:
            row = await generation.fetchone()
            if (0 if row is None else row[0]) != check[1]:
                return None
        stored: dict[str, tuple[int, Entity]] = {i: (rid, doc)
                                                 for i, rid, doc in await cur.fetchall()}
        state: dict[str, Entity | None] = {i: (stored[i][1] if i in stored else None)
                                           for i in ids}
        docs: dict[str, str] = {}
        results: list[EditResult] = []
        for edit in edits:
            before = state[edit.entity_id]
            try:
                after = edit.fn(before)
                if after is not None and after is not before:
                    docs[edit.entity_id] = serialise(edit.entity_id, after)
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
        changes = changes_of(stored, state, docs)
        if changes.inserted_ids:
            cur = await conn.execute("SELECT nextval('entity_rid') FROM generate_series(1, %s)",
                                     (len(changes.inserted_ids),))
            changes.inserted_rids = sorted(rid for (rid,) in await cur.fetchall())
        return results, changes

    # -- outbox ----------------------------------------------------------------------------

    async def wait_outbox(self, timeout: float) -> bool:
        """True when any process sharing the database committed outbox messages (this one
        rings at once, the others through LISTEN), False after ``timeout``."""
        return await self._wakeups.outbox.wait(timeout)

    def set_outbox_consumer(self, consumer: OutboxConsumer | None,
                            lease_seconds: float = 0.0) -> None:
        self._handoff.set(consumer, lease_seconds)

    async def enqueue(self, tenant: str, messages: Sequence[OutboxMessage]) -> None:
        async def work(conn: Conn) -> list[OutboxItem]:
            queued = await _enqueue(conn, tenant, messages, self._handoff.due(time.time()))
            return await queued()

        self._handoff.committed(await self._write(work))

    async def claim_outbox(self, limit: int, lease_seconds: float) -> list[OutboxItem]:
        async def work(conn: Conn) -> list[OutboxItem]:
            now = time.time()
            cur = await conn.execute(
                "WITH due AS (SELECT tenant, id, due FROM outbox WHERE due <= %s "
                "ORDER BY due, id LIMIT %s FOR UPDATE SKIP LOCKED) "
                "UPDATE outbox o SET due = %s FROM due WHERE o.tenant = due.tenant "
                "AND o.id = due.id RETURNING due.due, o.id, o.tenant, o.subscription_id, "
                "o.payload, o.attempts", (now, limit, now + lease_seconds))
            rows = sorted(await cur.fetchall(), key=lambda row: (row[0], row[1]))
            return [OutboxItem(i, t, s, orjson.loads(p), a) for _, i, t, s, p, a in rows]

        return await self._write(work)

    async def settle_outbox(self, done: Sequence[int],
                            retry: Sequence[tuple[int, float]] = (),
                            defer: Sequence[tuple[int, float]] = (),
                            notes: Sequence[DeliveryNote] = ()) -> None:
        async def work(conn: Conn) -> None:
            if done:
                await conn.execute("DELETE FROM outbox WHERE id = ANY(%b::bigint[])",
                                   (list(done),))
            for later, counted in ((retry, 1), (defer, 0)):
                if later:
                    await conn.execute(
                        "UPDATE outbox o SET due = v.due, attempts = o.attempts + %s FROM "
                        "unnest(%b::bigint[], %b::float8[]) AS v(id, due) WHERE o.id = v.id",
                        (counted, [i for i, _ in later], [due for _, due in later]))
            if notes:
                # greatest() skips NULLs; times compare as strings (ISO 8601, all UTC).
                await conn.execute(
                    "INSERT INTO delivery_status AS d (tenant, subscription_id, times_sent, "
                    "times_failed, last_notification, last_success, last_failure) "
                    "SELECT * FROM unnest(%b::text[], %b::text[], %b::int[], %b::int[], "
                    "%b::text[], %b::text[], %b::text[]) "
                    "ON CONFLICT (tenant, subscription_id) DO UPDATE SET "
                    "times_sent = d.times_sent + excluded.times_sent, "
                    "times_failed = d.times_failed + excluded.times_failed, "
                    "last_notification = greatest(d.last_notification, "
                    "excluded.last_notification), "
                    "last_success = greatest(d.last_success, excluded.last_success), "
                    "last_failure = greatest(d.last_failure, excluded.last_failure)",
                    ([n.tenant for n in notes], [n.subscription_id for n in notes],
                     [n.sent for n in notes], [n.failed for n in notes],
                     [n.last_notification for n in notes], [n.last_success for n in notes],
                     [n.last_failure for n in notes]))

        await self._write(work)

    async def claim_parked(self, tenant: str, subscription_id: str, limit: int,
                           lease_seconds: float) -> list[OutboxItem]:
        async def work(conn: Conn) -> list[OutboxItem]:
            cur = await conn.execute(
                "WITH parked AS (SELECT tenant, id FROM outbox WHERE due >= 1e12 AND "
                "tenant = %s AND subscription_id = %s ORDER BY id LIMIT %s "
                "FOR UPDATE SKIP LOCKED) "
                "UPDATE outbox o SET due = %s FROM parked WHERE o.tenant = parked.tenant "
                "AND o.id = parked.id RETURNING o.id, o.tenant, o.subscription_id, "
                "o.payload, o.attempts",
                (tenant, subscription_id, limit, time.time() + lease_seconds))
            rows = sorted(await cur.fetchall())
            return [OutboxItem(i, t, s, orjson.loads(p), a) for i, t, s, p, a in rows]

        return await self._write(work)

    async def sweep_parked(self, now: float) -> tuple[int, list[tuple[str, str]]]:
        async def work(conn: Conn) -> tuple[int, list[tuple[str, str]]]:
            cur = await conn.execute("DELETE FROM outbox WHERE due >= %s AND due <= %s",
                                     (PARKED, PARKED + now))
            dropped = cur.rowcount
            cur = await conn.execute("SELECT DISTINCT tenant, subscription_id FROM outbox "
                                     "WHERE due >= 1e12")
            return dropped, [(t, s) for t, s in await cur.fetchall()]

        return await self._write(work)

    async def outbox_size(self) -> int:
        return int(await self._scalar("SELECT count(*) FROM outbox", ()))

    async def delivery_status(self, tenant: str, subscription_id: str) -> DeliveryStatus:
        async def work(conn: Conn) -> DeliveryStatus:
            cur = await conn.execute(
                "SELECT times_sent, times_failed, last_notification, last_success, "
                "last_failure FROM delivery_status WHERE tenant = %s AND subscription_id = %s",
                (tenant, subscription_id))
            row = await cur.fetchone()
            return DeliveryStatus() if row is None else DeliveryStatus(*row)

        return await self._read(work)

    # -- history ---------------------------------------------------------------------------

    async def add_history(self, tenant: str, entity_id: str, types: Sequence[str],
                          instances: Sequence[HistoryInstance]) -> None:
        rows = pg_history.rows_for_instances(entity_id, types, instances)

        async def work(conn: Conn) -> None:
            if tenant not in self._tenants:
                await conn.execute("INSERT INTO tenants (tenant) VALUES (%s) "
                                   "ON CONFLICT DO NOTHING", (tenant,))
            await pg_history.write_rows(conn, tenant, rows, self._partitions)

        await self._write(work)
        self._tenants.add(tenant)

    async def query_history(self, tenant: str, query: HistoryQuery) -> HistoryResult:
        return await self._read(lambda conn: pg_history.query(conn, tenant, query))

    async def delete_history(self, tenant: str, entity_id: str, attr: str | None = None,
                             instance_id: str | None = None) -> int:
        return await self._write(lambda conn: pg_history.delete_history(
            conn, tenant, entity_id, attr, instance_id))

    async def replace_history_instance(self, tenant: str, entity_id: str, attr: str,
                                       instance: HistoryInstance) -> bool:
        return await self._write(lambda conn: pg_history.replace_instance(
            conn, tenant, entity_id, attr, instance, partitions=self._partitions))

    async def purge_history(self, older_than_ms: int, limit: int = 10_000) -> int:
        """Drop the partitions wholly older than the cut-off (a whole partition goes at once,
        however many rows it holds: that is cheap) until ``limit`` rows are gone, then delete
        rows one by one up to ``limit``; then make sure the coming months have partitions."""
        pool = self._pool_or_fail()
        try:
            async with pool.connection() as conn:
                await self._partitions.load(conn)
                gone = 0
                while gone < limit:
                    dropped = await self._partitions.drop_older(conn, older_than_ms)
                    if dropped is None:
                        gone += await pg_history.purge_rows(conn, older_than_ms, limit - gone)
                        break
                    gone += dropped
                await self._partitions.create_ahead(conn, int(time.time() * 1000))
                return gone
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise self._unavailable(exc) from None

    # -- reads ---------------------------------------------------------------------------

    async def _scalar(self, sql: str, params: Sequence[object]) -> Any:
        async def work(conn: Conn) -> Any:
            cur = await conn.execute(sql, params)
            row = await cur.fetchone()
            return None if row is None else row[0]

        return await self._read(work)

    async def get_entity(self, tenant: str, entity_id: str) -> Entity | None:
        doc = await self.get_document(tenant, entity_id)
        return None if doc is None else orjson.loads(doc)  # a copy of its own for each caller

    async def get_document(self, tenant: str, entity_id: str) -> str | None:
        # The text PostgreSQL printed for the stored JSONB (doc_text, kept at write): the same
        # for as long as the entity does not change, so the API can key its cache of rendered
        # entities on it.
        if "\x00" in entity_id:
            return None
        return await self._lookups.get(tenant, entity_id)

    async def _documents(self, tenant: str, ids: list[str]) -> dict[str, str]:
        async def work(conn: Conn) -> dict[str, str]:
            cur = await conn.execute("SELECT id, doc_text FROM entities WHERE tenant = %s "
                                     "AND id = ANY(%b::text[])", (tenant, TextArray(ids)))
            return dict(await cur.fetchall())

        return await self._read(work)

    async def query_entities(self, tenant: str, query: EntityQuery) -> QueryResult:
        how = plan(tenant, query)
        return await self._read(lambda conn: run_query(conn, how, query))

    async def tenant_exists(self, tenant: str) -> bool:
        if tenant == "":
            return True
        if "\x00" in tenant:
            return False
        found = await self._scalar("SELECT 1 FROM tenants WHERE tenant = %s", (tenant,))
        return found is not None

    async def list_tenants(self) -> list[str]:
        async def work(conn: Conn) -> list[str]:
            cur = await conn.execute('SELECT tenant FROM tenants ORDER BY tenant COLLATE "C"')
            return [name for (name,) in await cur.fetchall()]

        return await self._read(work)

    async def entity_types(self, tenant: str) -> list[TypeInfo]:
        async def work(conn: Conn) -> list[TypeInfo]:
            cur = await conn.execute(
                "SELECT type, count(*) FROM entity_types WHERE tenant = %s GROUP BY type",
                (tenant,))
            counts = dict(await cur.fetchall())
            cur = await conn.execute(
                "SELECT DISTINCT t.type, k.key FROM entity_types t JOIN entities e "
                "ON e.tenant = t.tenant AND e.rid = t.rid, jsonb_object_keys(CASE WHEN "
                "jsonb_typeof(e.doc -> 'attrs') = 'object' THEN e.doc -> 'attrs' END) AS k(key) "
                "WHERE t.tenant = %s", (tenant,))
            attrs: dict[str, list[str]] = {}
            for type_iri, attr in await cur.fetchall():
                attrs.setdefault(type_iri, []).append(attr)
            return [TypeInfo(t, counts[t], tuple(sorted(attrs.get(t, []))))
                    for t in sorted(counts)]

        return await self._read(work)

    async def attributes(self, tenant: str) -> list[AttributeInfo]:
        async def work(conn: Conn) -> list[AttributeInfo]:
            cur = await conn.execute(
                "SELECT k.key, count(*), array_agg(DISTINCT k.value -> 0 ->> 'type') FILTER "
                "(WHERE k.value -> 0 ->> 'type' IS NOT NULL) FROM entities e, jsonb_each(CASE "
                "WHEN jsonb_typeof(e.doc -> 'attrs') = 'object' THEN e.doc -> 'attrs' END) "
                "AS k(key, value) WHERE e.tenant = %s GROUP BY k.key", (tenant,))
            rows = await cur.fetchall()
            cur = await conn.execute(
                "SELECT DISTINCT k.key, t.type FROM entities e, jsonb_object_keys(CASE WHEN "
                "jsonb_typeof(e.doc -> 'attrs') = 'object' THEN e.doc -> 'attrs' END) AS k(key),"
                " jsonb_array_elements_text(CASE WHEN jsonb_typeof(e.doc -> 'type') = 'array' "
                "THEN e.doc -> 'type' END) AS t(type) WHERE e.tenant = %s", (tenant,))
            types: dict[str, list[str]] = {}
            for attr, type_iri in await cur.fetchall():
                types.setdefault(attr, []).append(type_iri)
            # Python sorts str by code point, as SQLite does.
            return [AttributeInfo(attr, count, tuple(sorted(kinds or [""])),
                                  tuple(sorted(types.get(attr, []))))
                    for attr, count, kinds in sorted(rows, key=lambda r: str(r[0]))]

        return await self._read(work)

    # -- per-tenant records ---------------------------------------------------------------

    async def put_record(self, kind: str, tenant: str, record_id: str, record: dict[str, Any],
                         *, only_if_absent: bool = False) -> bool:
        doc = orjson.dumps(record).decode()
        action = "NOTHING" if only_if_absent else "UPDATE SET record = excluded.record"

        async def work(conn: Conn) -> bool:
            if tenant not in self._tenants:
                await conn.execute("INSERT INTO tenants (tenant) VALUES (%s) "
                                   "ON CONFLICT DO NOTHING", (tenant,))
            cur = await conn.execute(
                "INSERT INTO records (kind, tenant, id, record) VALUES (%s, %s, %s, %s) "  # noqa: S608
                f"ON CONFLICT (kind, tenant, id) DO {action}", (kind, tenant, record_id, doc))
            return await _record_changed(conn, kind, cur.rowcount > 0)

        stored = await self._write(work)
        self._tenants.add(tenant)
        if stored:
            self._signals.records_changed(kind)
        return stored

    async def get_record(self, kind: str, tenant: str, record_id: str) -> dict[str, Any] | None:
        if "\x00" in record_id:
            return None
        record: str | None = await self._scalar(
            "SELECT record FROM records WHERE kind = %s AND tenant = %s AND id = %s",
            (kind, tenant, record_id))
        return None if record is None else orjson.loads(record)

    async def list_records(self, kind: str, tenant: str | None = None) -> list[Record]:
        async def work(conn: Conn) -> list[Record]:
            sql = "SELECT tenant, id, record FROM records WHERE kind = %s"
            params: tuple[str, ...] = (kind,)
            if tenant is not None:
                sql += " AND tenant = %s"
                params = (kind, tenant)
            cur = await conn.execute(sql + ' ORDER BY tenant COLLATE "C", id COLLATE "C"',
                                     params)
            return [Record(t, i, orjson.loads(r)) for t, i, r in await cur.fetchall()]

        return await self._read(work)

    async def delete_record(self, kind: str, tenant: str, record_id: str) -> bool:
        if "\x00" in record_id:
            return False

        async def work(conn: Conn) -> bool:
            cur = await conn.execute(
                "DELETE FROM records WHERE kind = %s AND tenant = %s AND id = %s",
                (kind, tenant, record_id))
            return await _record_changed(conn, kind, cur.rowcount > 0)

        deleted = await self._write(work)
        if deleted:
            self._signals.records_changed(kind)
        return deleted

    async def records_generation(self, kind: str) -> int:
        sql = "SELECT generation FROM record_generations WHERE kind = %s"
        generation = await self._scalar(sql, (kind,))
        if generation is None:  # start counting this kind's changes
            async def work(conn: Conn) -> Any:
                await conn.execute("INSERT INTO record_generations (kind, generation) "
                                   "VALUES (%s, 0) ON CONFLICT (kind) DO NOTHING", (kind,))
                cur = await conn.execute(sql, (kind,))
                row = await cur.fetchone()
                return None if row is None else row[0]

            generation = await self._write(work)
        return int(generation or 0)

    async def wait_records(self, kind: str, timeout: float) -> bool:
        return await self._wakeups.records(kind).wait(timeout)


# -- helpers ------------------------------------------------------------------------------------


def _lost(conn: Conn | None, exc: BaseException) -> bool:
    """Whether ``exc`` means the connection itself died (then a fresh one may succeed)."""
    if isinstance(exc, errors.QueryCanceled):
        return False
    return conn is None or conn.closed or conn.broken


async def _record_changed(conn: Conn, kind: str, changed: bool) -> bool:
    """Count a change of a record of ``kind`` (when its changes are counted)."""
    if changed:
        await conn.execute("UPDATE record_generations SET generation = generation + 1 "
                           "WHERE kind = %s", (kind,))
    return changed


async def _enqueue(conn: Conn, tenant: str, messages: Sequence[OutboxMessage],
                   due: float) -> Callable[[], Awaitable[list[OutboxItem]]]:
    """Send the insert (maybe inside a pipeline); the returned function reads the messages
    back with their ids once the results are in."""
    if not messages:
        async def none() -> list[OutboxItem]:
            return []

        return none
    # The ids are drawn in a CTE that is evaluated once (nextval is volatile) and read twice:
    # by the insert and, in message order, by the final select.
    cur = await conn.execute(
        "WITH v AS (SELECT nextval('outbox_id') AS id, s, p, n FROM unnest(%b::text[], "
        "%b::text[]) WITH ORDINALITY AS u(s, p, n)), "
        "ins AS (INSERT INTO outbox (tenant, id, subscription_id, payload, due) "
        "SELECT %s, id, s, p, %s FROM v) SELECT id FROM v ORDER BY n",
        (TextArray([m.subscription_id for m in messages]),
         TextArray(payload_texts(messages)), tenant, due))

    async def read() -> list[OutboxItem]:
        ids = [row[0] for row in await cur.fetchall()]
        return [OutboxItem(i, tenant, m.subscription_id, m.payload, 0)
                for i, m in zip(ids, messages, strict=True)]

    return read
