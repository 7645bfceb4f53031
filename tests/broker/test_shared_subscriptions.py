"""Several server processes on one database: a subscription made (or deleted) in one process
is matched (or not) by the very next change another process commits, and a notifier never
drops a message because its process has not heard of the subscription yet. Two stores with
their own services on one database stand for two processes; every backend runs this."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import pytest

from sinergia.broker.delivery import Deliverer
from sinergia.broker.entities import EntityService
from sinergia.broker.subscriptions import Notifier, NotifierSettings, SubscriptionService
from sinergia.ngsild.context import ContextResolver
from sinergia.ngsild.entity import parse_entity
from sinergia.storage.base import Store, open_store
from support.receiver import http_receiver

pytestmark = pytest.mark.anyio

SUB_ID = "urn:ngsi-ld:Subscription:shared"


@dataclass
class Process:
    store: Store
    subscriptions: SubscriptionService
    entities: EntityService


@pytest.fixture
async def processes(database_url: str) -> AsyncIterator[tuple[Process, Process]]:
    resolver = ContextResolver(allow_remote=False)
    made: list[Process] = []
    try:
        for _ in range(2):
            store = open_store(database_url, synchronous="normal")
            await store.open()
            process = Process(store, SubscriptionService(store, resolver), EntityService(store))
            made.append(process)
            await process.subscriptions.load()
        yield made[0], made[1]
    finally:
        for process in made:
            await process.store.close()


def subscription(uri: str = "http://127.0.0.1:9/nobody") -> dict[str, Any]:
    return {"id": SUB_ID, "type": "Subscription", "entities": [{"type": "Probe"}],
            "notification": {"endpoint": {"uri": uri}, "format": "keyValues"}}


async def create_probe(process: Process, n: int) -> None:
    core = process.subscriptions.resolver.core
    await process.entities.create("", parse_entity(
        {"id": f"urn:ngsi-ld:Probe:{n}", "type": "Probe",
         "reading": {"type": "Property", "value": n}}, core))


async def test_a_subscription_made_elsewhere_matches_the_next_change_at_once(
        processes: tuple[Process, Process]) -> None:
    one, other = processes
    core = one.subscriptions.resolver.core
    await one.subscriptions.create("", subscription(), core)
    await create_probe(other, 1)  # no wait, no refresh in between
    (item,) = await other.store.claim_outbox(10, lease_seconds=60)
    assert item.subscription_id == SUB_ID
    assert [e["id"] for e in item.payload["entities"]] == ["urn:ngsi-ld:Probe:1"]
    await other.store.settle_outbox([item.id])

    await one.subscriptions.delete("", SUB_ID)
    await create_probe(other, 2)
    assert await other.store.outbox_size() == 0


async def test_a_notifier_delivers_for_a_subscription_it_has_not_heard_of(
        processes: tuple[Process, Process]) -> None:
    one, other = processes
    with http_receiver() as receiver:
        await one.subscriptions.create("", subscription(receiver.url),
                                       one.subscriptions.resolver.core)
        await create_probe(one, 1)  # the message is written by the process that knows
        assert other.subscriptions.index.get("", SUB_ID) is None
        # Only the other process delivers, and it does not refresh by itself in this test.
        notifier = Notifier(other.subscriptions, Deliverer(timeout=10),
                            NotifierSettings(refresh_seconds=3600))
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(notifier.run)
                received = await anyio.to_thread.run_sync(receiver.next, 30.0)
                tg.cancel_scope.cancel()
        finally:
            await notifier.deliverer.aclose()
        assert [e["id"] for e in received.body["data"]] == ["urn:ngsi-ld:Probe:1"]
