"""Entity look-ups by id, coalesced: the calls made while earlier look-ups are under way are
answered by one statement (``id = ANY(…)``) instead of one round trip each.

A process serving many requests spends most of a look-up on the round trip (the statement, the
wait for the socket, the event loop's bookkeeping) rather than on the row. Calls join the batch
of their tenant that has not been sent yet; a batch is sent as soon as one of ``slots`` is free,
so a lone call is sent at once and a burst shares a few statements. A batch is sent after every
call in it was made, so each caller still sees every change committed before it asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Fetch = Callable[[str, list[str]], Awaitable[dict[str, str]]]


class _Batch:
    __slots__ = ("ids", "task")

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.task: asyncio.Future[dict[str, str]] | None = None


class IdLookups:
    """``await get(tenant, id)``: the stored document's JSON text, or None. ``fetch(tenant,
    ids)`` reads the documents of ``ids`` (id → text; absent ids left out)."""

    def __init__(self, fetch: Fetch, slots: int = 2) -> None:
        self._fetch = fetch
        self._slots = slots
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open: dict[str, _Batch] = {}  # tenant -> the batch not sent yet

    async def get(self, tenant: str, entity_id: str) -> str | None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a store reopened in another event loop starts afresh
            self._loop, self._open = loop, {}
            self._semaphore = asyncio.Semaphore(self._slots)
        batch = self._open.get(tenant)
        if batch is None:
            batch = self._open[tenant] = _Batch()
            batch.task = asyncio.ensure_future(self._send(tenant, batch))
            # Retrieved here so that a batch whose callers all went away warns of nothing.
            batch.task.add_done_callback(_retrieve)
        batch.ids.add(entity_id)
        assert batch.task is not None
        # Shielded: one caller going away must not cancel the others' look-ups.
        found = await asyncio.shield(batch.task)
        return found.get(entity_id)

    async def _send(self, tenant: str, batch: _Batch) -> dict[str, str]:
        assert self._semaphore is not None
        async with self._semaphore:
            if self._open.get(tenant) is batch:
                del self._open[tenant]  # closed: later calls start the next batch
            return await self._fetch(tenant, sorted(batch.ids))


def _retrieve(task: asyncio.Future[dict[str, str]]) -> None:
    if not task.cancelled():
        task.exception()
