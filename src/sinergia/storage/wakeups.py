"""Wake-up calls from a store to the background loops that wait on it: the notifier (new
outbox messages) and the caches of records (subscriptions changed). Every backend uses these:
SQLite rings them after its own commits, PostgreSQL also when another process announces a
change (LISTEN/NOTIFY, :mod:`sinergia.storage.postgres_notify`).

A wake-up is *sticky*: rung while nobody waits, it is kept for the next wait, so a change that
lands while the waiter is busy (claiming, refreshing) is never missed. Each latch serves one
waiter (one notifier, one cache per record kind); a spurious wake-up costs the waiter one
cheap look and is always allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from sinergia.storage.base import OutboxConsumer, OutboxItem


class Latch:
    def __init__(self) -> None:
        self._rung = False
        self._event: anyio.Event | None = None  # created by the waiter, inside the event loop

    def ring(self) -> None:
        self._rung = True
        if self._event is not None:
            self._event.set()

    async def wait(self, timeout: float) -> bool:
        """Return True as soon as the latch was rung (at once if it was since the last wait),
        False after ``timeout`` seconds without."""
        if not self._rung:
            self._event = event = anyio.Event()
            try:
                with anyio.move_on_after(timeout):
                    await event.wait()
            finally:
                self._event = None
        rung, self._rung = self._rung, False
        return rung


class Wakeups:
    """The latches of one store: one for the outbox, one per kind of records."""

    def __init__(self) -> None:
        self.outbox = Latch()
        self._records: dict[str, Latch] = {}

    def records(self, kind: str) -> Latch:
        latch = self._records.get(kind)
        if latch is None:
            latch = self._records[kind] = Latch()
        return latch

    def ring_all(self) -> None:
        """Wake every waiter: after a reconnection, changes may have gone unannounced."""
        self.outbox.ring()
        for latch in self._records.values():
            latch.ring()


class OutboxHandoff:
    """This process's notifier, if it takes its own messages straight after the commit (see
    ``Store.set_outbox_consumer``); shared by the backends so they behave alike."""

    def __init__(self, announce: Callable[[], None]) -> None:
        self._announce = announce  # new messages for claim_outbox: wake whoever claims
        self._consumer: OutboxConsumer | None = None
        self._lease = 0.0

    def set(self, consumer: OutboxConsumer | None, lease_seconds: float) -> None:
        self._consumer, self._lease = consumer, lease_seconds

    def due(self, now: float) -> float:
        """When a message committed now may be claimed: after the lease if it is handed
        over, at once if not."""
        return now + self._lease if self._consumer is not None else now

    def committed(self, items: list[OutboxItem]) -> None:
        """Right after the commit of ``items``, on the event loop."""
        if not items:
            return
        consumer = self._consumer
        if consumer is None:
            # Nobody takes them here (or the consumer left since they were written, and
            # they wait for their lease): whoever claims is told.
            self._announce()
        else:
            consumer(items)
