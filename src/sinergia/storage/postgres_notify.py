"""LISTEN/NOTIFY between the processes that share one PostgreSQL database.

Every process keeps one dedicated connection LISTENing on two channels, ``sinergia_outbox``
(notifications are waiting in the outbox) and ``sinergia_records`` (the payload names a kind
of records that changed), and rings the store's wake-up latches when an announcement arrives.
When that connection breaks, it is opened again with exponential backoff, and once it is back
every latch is rung: whatever was announced in between is lost. A ``SELECT 1`` after
``heartbeat`` seconds of silence notices a connection that died without a word.

Announcements are sent *after* the writing transaction committed, from a pooled connection,
coalesced (at most one batch in flight, everything asked for meanwhile goes in the next). A
NOTIFY inside the writing transaction would be simpler, but PostgreSQL serialises the commits
of all notifying transactions on one database-wide lock, which would take group commit away
from the write path. Announcing later loses nothing: an announcement only spares the other
processes the wait until their next periodic look (the outbox rows and the record generations
are the truth), and the committing process rings its own latches at once.

The channels belong to the database, not to a schema: processes serving other schemas of the
same database hear each other's announcements, which costs them one look each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import anyio
import psycopg
from psycopg_pool import AsyncConnectionPool

from sinergia.storage.wakeups import Wakeups

log = logging.getLogger(__name__)

OUTBOX_CHANNEL = "sinergia_outbox"
RECORDS_CHANNEL = "sinergia_records"
_FIRST_BACKOFF = 0.1


class ChangeSignals:
    """The LISTEN connection and the announcer of one store (so: of one process)."""

    def __init__(self, url: str, connect_kwargs: dict[str, Any], wakeups: Wakeups, *,
                 heartbeat: float = 30.0, max_backoff: float = 10.0) -> None:
        self._url = url
        name = str(connect_kwargs.get("application_name") or "sinergia")
        # Its own application name, so an operator (or a test) can tell it from the pool's.
        self._listen_kwargs = {**connect_kwargs, "application_name": f"{name}:listen"}
        self._wakeups = wakeups
        self._heartbeat = heartbeat
        self._max_backoff = max_backoff
        self._pool: AsyncConnectionPool[Any] | None = None
        self._pending: set[tuple[str, str]] = set()
        self._ready: asyncio.Event | None = None
        self._listening: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, pool: AsyncConnectionPool[Any], *, wait: float) -> None:
        """Start listening and announcing; wait up to ``wait`` seconds for the LISTEN."""
        self._pool = pool
        self._ready, self._listening = asyncio.Event(), asyncio.Event()
        self._tasks = [asyncio.create_task(self._listen(), name="sinergia-listen"),
                       asyncio.create_task(self._announce(), name="sinergia-announce")]
        with anyio.move_on_after(wait):
            await self._listening.wait()
        if not self._listening.is_set():
            log.warning("Not listening for other processes' changes yet; they are seen by "
                        "polling until the connection succeeds")

    async def stop(self) -> None:
        """Stop both tasks, then send what is still to be announced."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with anyio.move_on_after(5.0):
            await self._send()
        self._pool = None

    def outbox_changed(self) -> None:
        """This process committed outbox messages: wake its notifier, tell the others."""
        self._wakeups.outbox.ring()
        self._ask(OUTBOX_CHANNEL, "")

    def records_changed(self, kind: str) -> None:
        self._wakeups.records(kind).ring()
        self._ask(RECORDS_CHANNEL, kind)

    # -- announcing ---------------------------------------------------------------------------

    def _ask(self, channel: str, payload: str) -> None:
        self._pending.add((channel, payload))
        if self._ready is not None:
            self._ready.set()

    async def _announce(self) -> None:
        assert self._ready is not None
        while True:
            await self._ready.wait()
            self._ready.clear()
            await self._send()

    async def _send(self) -> None:
        notes, self._pending = self._pending, set()
        if not notes or self._pool is None:
            return
        try:
            async with self._pool.connection() as conn:
                await conn.execute("SELECT pg_notify(n.c, n.p) FROM unnest(%s::text[], "
                                   "%s::text[]) AS n(c, p)",
                                   ([c for c, _ in notes], [p for _, p in notes]))
        except psycopg.Error as exc:  # the database is away: the others will look by themselves
            log.debug("could not announce %s: %s", sorted(notes), exc)

    # -- listening ----------------------------------------------------------------------------

    async def _listen(self) -> None:
        assert self._listening is not None
        backoff = _FIRST_BACKOFF
        failing = False
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._url, **self._listen_kwargs)
            except psycopg.Error as exc:
                if not failing:
                    log.warning("Cannot LISTEN for other processes' changes (%s); retrying",
                                _first_line(exc))
                failing = True
            else:
                try:
                    await conn.execute(f"LISTEN {OUTBOX_CHANNEL}; LISTEN {RECORDS_CHANNEL}")
                    if failing:
                        log.warning("Listening for other processes' changes again")
                    failing, backoff = False, _FIRST_BACKOFF
                    self._listening.set()
                    self._wakeups.ring_all()  # announcements made while away are lost: look
                    await self._receive(conn)
                except (psycopg.Error, TimeoutError) as exc:
                    log.warning("Lost the LISTEN connection (%s); reconnecting", _first_line(exc))
                    failing = True
                finally:
                    self._listening.clear()
                    await conn.close()
            await anyio.sleep(backoff)
            backoff = min(2 * backoff, self._max_backoff)

    async def _receive(self, conn: psycopg.AsyncConnection[Any]) -> None:
        while True:
            async for note in conn.notifies(timeout=self._heartbeat):
                if note.channel == OUTBOX_CHANNEL:
                    self._wakeups.outbox.ring()
                elif note.channel == RECORDS_CHANNEL:
                    self._wakeups.records(note.payload).ring()
            with anyio.fail_after(self._heartbeat):
                await conn.execute("SELECT 1")  # silence: is the connection still alive?


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
