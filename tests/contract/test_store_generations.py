"""The part of the Store contract that lets several processes share one database: record
generations, the check of the change listener's view in the write transaction, and the
sticky wake-ups. Two stores opened on one database stand for two server processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from sinergia.storage.base import Edit, EditResult, OutboxMessage, Store, open_store

pytestmark = pytest.mark.anyio

KIND = "subscription"


@pytest.fixture
async def stores(database_url: str) -> AsyncIterator[tuple[Store, Store]]:
    first = open_store(database_url, synchronous="normal")
    second = open_store(database_url, synchronous="normal")
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await second.close()
        await first.close()


def probe(n: int) -> Edit:
    entity = {"id": f"urn:ngsi-ld:Probe:{n}", "type": ["https://example.org/Probe"],
              "attrs": {}, "createdAt": "2026-01-01T00:00:00.000Z",
              "modifiedAt": "2026-01-01T00:00:00.000Z"}
    return Edit(entity["id"], lambda current: entity)


class View:
    """A change listener's copy of the subscriptions, as SubscriptionService keeps it."""

    kind = KIND

    def __init__(self, store: Store) -> None:
        self.store = store
        self.generation = -1
        self.ids: set[str] = set()
        self.refreshes = 0

    async def refresh(self) -> None:
        self.refreshes += 1
        self.generation = await self.store.records_generation(KIND)
        self.ids = {r.id for r in await self.store.list_records(KIND)}

    def __call__(self, tenant: str, results: Sequence[EditResult]) -> list[OutboxMessage]:
        return [OutboxMessage(sub, {"entity": r.entity_id}) for r in results
                for sub in sorted(self.ids)]


async def test_every_change_of_a_record_changes_the_generation(stores: tuple[Store, Store]
                                                               ) -> None:
    first, second = stores
    start = await first.records_generation(KIND)
    assert await second.records_generation(KIND) == start  # one number for the database
    assert await first.put_record(KIND, "", "s1", {"v": 1})
    after_put = await second.records_generation(KIND)
    assert after_put != start
    assert not await first.put_record(KIND, "", "s1", {"v": 2}, only_if_absent=True)
    assert await second.records_generation(KIND) == after_put  # nothing changed
    assert await first.put_record(KIND, "", "s1", {"v": 3})
    after_replace = await second.records_generation(KIND)
    assert after_replace not in (start, after_put)
    assert not await first.delete_record(KIND, "", "missing")
    assert await second.records_generation(KIND) == after_replace
    assert await first.delete_record(KIND, "", "s1")
    assert await second.records_generation(KIND) not in (start, after_put, after_replace)


async def test_other_kinds_are_counted_from_the_first_question(stores: tuple[Store, Store]
                                                               ) -> None:
    first, second = stores
    await first.put_record("context", "", "c1", {})  # nobody counts contexts yet
    start = await second.records_generation("context")
    assert await first.records_generation("context") == start
    await first.put_record("context", "", "c2", {})
    assert await second.records_generation("context") != start
    unchanged = await second.records_generation(KIND)
    await first.put_record("context", "", "c3", {})
    assert await second.records_generation(KIND) == unchanged  # kinds are counted apart


async def test_a_stale_view_is_refreshed_before_the_change_is_matched(
        stores: tuple[Store, Store]) -> None:
    first, second = stores
    view = View(second)
    await view.refresh()
    second.set_change_listener(view, view)
    # Another process makes a subscription; this one has not heard of it ...
    assert await first.put_record(KIND, "", "urn:sub:new", {})
    assert view.ids == set()
    # ... yet the next change it commits is matched against it.
    await second.apply("", [probe(1)])
    assert view.ids == {"urn:sub:new"}
    assert view.refreshes == 2
    (item,) = await second.claim_outbox(10, lease_seconds=60)
    assert (item.subscription_id, item.payload["entity"]) == ("urn:sub:new",
                                                              "urn:ngsi-ld:Probe:1")
    await second.settle_outbox([item.id])
    # Current again: no further refresh; a deletion elsewhere is seen the same way.
    await second.apply("", [probe(2)])
    assert view.refreshes == 2
    assert await first.delete_record(KIND, "", "urn:sub:new")
    await second.apply("", [probe(3)])
    assert view.refreshes == 3
    assert await second.outbox_size() == 1  # probe 2 only: probe 3 matched nothing


async def test_a_change_wakes_the_waiter_even_if_it_was_not_waiting_yet(
        stores: tuple[Store, Store]) -> None:
    first, _ = stores
    await first.put_record(KIND, "", "s1", {})
    await first.enqueue("", [OutboxMessage("s1", {})])
    # Rung before anybody waited: kept, so no wait is needed (a timeout of 0 would say False).
    assert await first.wait_records(KIND, 0)
    assert await first.wait_outbox(0)
