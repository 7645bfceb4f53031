"""The notifier's batched bookkeeping: outcomes and status counts that pile up while one
write is under way go out together in the next, and nothing is dropped when a write fails."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import anyio
import pytest

from sinergia.broker.settling import Settler
from sinergia.storage.base import DeliveryNote, Store

pytestmark = pytest.mark.anyio


class RecordingStore:
    """settle_outbox only: records each call; fails while ``failures`` is above zero."""

    def __init__(self, failures: int = 0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.failures = failures
        self.entered = anyio.Event()
        self.release = anyio.Event()
        self.hold = False

    async def settle_outbox(self, done: Sequence[int], retry: Sequence[tuple[int, float]] = (),
                            defer: Sequence[tuple[int, float]] = (),
                            notes: Sequence[DeliveryNote] = ()) -> None:
        if self.hold:
            self.entered.set()
            await self.release.wait()
            self.hold = False
        if self.failures:
            self.failures -= 1
            raise OSError("database away")
        self.calls.append({"done": list(done), "retry": list(retry), "defer": list(defer),
                           "notes": sorted(notes, key=lambda n: n.subscription_id)})


def settler_on(store: RecordingStore) -> Settler:
    return Settler(cast(Store, store))


async def test_notes_of_one_subscription_add_up() -> None:
    store = RecordingStore()
    settler = settler_on(store)
    settler.note("t", "s", True, "2026-01-01T00:00:01.000Z")
    settler.note("t", "s", False, "2026-01-01T00:00:03.000Z")
    settler.note("t", "s", True, "2026-01-01T00:00:02.000Z")  # finished out of order
    settler.note("t", "other", False, "2026-01-01T00:00:00.000Z")
    settler.done([1, 2])
    settler.retry([3], 10.0)
    settler.defer([4], 20.0)
    assert await settler.flush()
    (call,) = store.calls
    assert call["done"] == [1, 2] and call["retry"] == [(3, 10.0)]
    assert call["defer"] == [(4, 20.0)]
    assert call["notes"] == [
        DeliveryNote("t", "other", 1, 1, None, "2026-01-01T00:00:00.000Z"),
        DeliveryNote("t", "s", 3, 1, "2026-01-01T00:00:02.000Z", "2026-01-01T00:00:03.000Z")]
    assert call["notes"][1].last_notification == "2026-01-01T00:00:03.000Z"
    assert await settler.flush() and len(store.calls) == 1  # nothing pending: no write


async def test_what_ends_during_a_write_goes_in_the_next_one() -> None:
    store = RecordingStore()
    settler = settler_on(store)
    async with anyio.create_task_group() as tg:
        tg.start_soon(settler.run)
        store.hold = True
        settler.done([1])
        await store.entered.wait()
        settler.done([2])
        settler.done([3])
        settler.note("t", "s", True, "2026-01-01T00:00:00.000Z")
        store.release.set()
        with anyio.fail_after(5):
            while len(store.calls) < 2:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert [call["done"] for call in store.calls] == [[1], [2, 3]]


async def test_a_failed_write_is_kept_for_the_next() -> None:
    store = RecordingStore(failures=1)
    settler = settler_on(store)
    settler.done([1])
    settler.note("t", "s", True, "2026-01-01T00:00:00.000Z")
    assert not await settler.flush()
    settler.done([2])
    settler.note("t", "s", False, "2026-01-01T00:00:01.000Z")
    assert await settler.flush()
    (call,) = store.calls
    assert call["done"] == [1, 2]
    assert call["notes"] == [DeliveryNote("t", "s", 2, 1, "2026-01-01T00:00:00.000Z",
                                          "2026-01-01T00:00:01.000Z")]


async def test_pending_outcomes_are_written_when_the_notifier_stops() -> None:
    store = RecordingStore()
    settler = settler_on(store)
    async with anyio.create_task_group() as tg:
        tg.start_soon(settler.run)
        await anyio.sleep(0)
        store.hold = True
        settler.done([1])
        await store.entered.wait()
        settler.done([2])  # arrives while the first write is under way
        tg.cancel_scope.cancel()
        store.release.set()
    assert [call["done"] for call in store.calls] == [[1], [2]]
