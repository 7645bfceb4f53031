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

import anyio


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
