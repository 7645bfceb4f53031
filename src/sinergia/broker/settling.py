"""The notifier's bookkeeping, written in batches.

Every notification attempt ends with two writes: its outbox messages are removed or
rescheduled, and its subscription's status counts it. Written one attempt at a time they
would cost a transaction (on SQLite a turn of the single writer, on PostgreSQL a round trip
and a commit) per notification. The :class:`Settler` collects them instead and writes
everything that ended while the previous batch was being written in one
:meth:`Store.settle_outbox` call, so under load one transaction settles many notifications,
and when idle a lone one is written at once.

Nothing is lost by the wait: until a message is settled it stays in the outbox under the
lease of the claim that took it, and a crash meanwhile delivers it again (at-least-once).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import anyio

from sinergia.storage.base import DeliveryNote, Store
from sinergia.storage.wakeups import Latch

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0  # after a failed write (the database is away), before the next one


@dataclass(slots=True)
class Pending:
    """What the next settle_outbox call writes."""

    done: list[int] = field(default_factory=list)
    retry: list[tuple[int, float]] = field(default_factory=list)
    defer: list[tuple[int, float]] = field(default_factory=list)
    notes: dict[tuple[str, str], DeliveryNote] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.done or self.retry or self.defer or self.notes)

    def note(self, tenant: str, subscription_id: str, ok: bool, at: str) -> None:
        self.add_note(DeliveryNote(tenant, subscription_id, 1, 0 if ok else 1,
                                   at if ok else None, None if ok else at))

    def add_note(self, note: DeliveryNote) -> None:
        key = (note.tenant, note.subscription_id)
        old = self.notes.get(key)
        if old is not None:
            note = DeliveryNote(note.tenant, note.subscription_id, old.sent + note.sent,
                                old.failed + note.failed,
                                _later(old.last_success, note.last_success),
                                _later(old.last_failure, note.last_failure))
        self.notes[key] = note

    def absorb(self, other: Pending) -> None:
        """Take back a batch that could not be written, ahead of what came since."""
        self.done[:0] = other.done
        self.retry[:0] = other.retry
        self.defer[:0] = other.defer
        for note in other.notes.values():
            self.add_note(note)


def _later(a: str | None, b: str | None) -> str | None:
    return max(a or "", b or "") or None


class Settler:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._pending = Pending()
        self._wake = Latch()

    def done(self, ids: list[int]) -> None:
        self._pending.done.extend(ids)
        self._wake.ring()

    def retry(self, ids: list[int], due: float) -> None:
        """A failed attempt: counted, tried again from ``due``."""
        self._pending.retry.extend((i, due) for i in ids)
        self._wake.ring()

    def defer(self, ids: list[int], due: float) -> None:
        """Not attempted (the receiver is busy): tried from ``due``, not counted."""
        self._pending.defer.extend((i, due) for i in ids)
        self._wake.ring()

    def defer_each(self, later: list[tuple[int, float]]) -> None:
        """:meth:`defer` of ``(id, due)`` pairs, each with its own due."""
        self._pending.defer.extend(later)
        self._wake.ring()

    def note(self, tenant: str, subscription_id: str, ok: bool, at: str) -> None:
        """Count one attempt in the subscription's status."""
        self._pending.note(tenant, subscription_id, ok, at)
        self._wake.ring()

    async def run(self) -> None:
        """Write batches until cancelled; what is pending then is written before leaving."""
        try:
            while True:
                await self._wake.wait(3600.0)
                while not await self.flush():
                    await anyio.sleep(RETRY_SECONDS)
        finally:
            # At shutdown a database that does not answer must not hold the exit for ever:
            # this last write gets 5 s (the inner shield would make the bound void).
            with anyio.CancelScope(shield=True), anyio.move_on_after(5.0):
                await self.flush(shield=False)

    async def flush(self, *, shield: bool = True) -> bool:
        """Write what is pending in one transaction; False (and kept for the next) if that
        failed."""
        batch, self._pending = self._pending, Pending()
        if not batch:
            return True
        try:
            # Shielded: a write cancelled half-way could not tell what it wrote, and the
            # status counts must be written exactly once.
            with anyio.CancelScope(shield=shield):
                await self.store.settle_outbox(batch.done, batch.retry, batch.defer,
                                               list(batch.notes.values()))
        except Exception as exc:
            log.warning("cannot settle %d notifications (%s); retrying",
                        len(batch.done) + len(batch.retry) + len(batch.defer), exc)
            self._pending.absorb(batch)
            return False
        return True
