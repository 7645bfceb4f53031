"""How many notifications the notifier has in flight for one subscription: a burst gets as many
senders as it fills notifications, up to the endpoint's slots, and no idle extra ones."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import anyio
import orjson
import pytest

from sinergia.broker.delivery import Deliverer, DeliveryOutcome, Render
from sinergia.broker.subscriptions import (
    Backlog,
    Notifier,
    NotifierSettings,
    SubscriptionService,
)
from sinergia.ngsild.context import ContextResolver
from sinergia.storage.base import OutboxItem, open_store

pytestmark = pytest.mark.anyio

SUB_ID = "urn:ngsi-ld:Subscription:burst"
PROBE = "https://uri.etsi.org/ngsi-ld/default-context/Probe"


@dataclass
class HeldDeliverer(Deliverer):
    """Records each notification's entity ids and holds it until ``release`` is set."""

    sent: list[list[str]] = field(default_factory=list)
    release: anyio.Event = field(default_factory=anyio.Event)
    in_flight: int = 0
    most_in_flight: int = 0

    def __post_init__(self) -> None:
        super().__init__(timeout=10, per_endpoint=4)

    async def deliver_rendered(self, endpoint_uri: str, render: Render, *,
                               notifier_info: Mapping[str, str] | None = None
                               ) -> DeliveryOutcome:
        _, body = render()
        self.sent.append([entity["id"] for entity in orjson.loads(body)["data"]])
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await self.release.wait()
        self.in_flight -= 1
        return DeliveryOutcome(True, status=200)


@pytest.fixture
async def notifier(run_notifier: Callable[[Notifier], AbstractAsyncContextManager[None]]
                   ) -> AsyncIterator[tuple[Notifier, HeldDeliverer]]:
    store = open_store("sqlite:///:memory:", synchronous="normal")
    await store.open()
    service = SubscriptionService(store, ContextResolver(allow_remote=False))
    await service.load()
    await service.create("", {
        "id": SUB_ID, "type": "Subscription", "entities": [{"type": "Probe"}],
        "notification": {"endpoint": {"uri": "http://receiver.test/n"},
                         "format": "keyValues"}}, service.resolver.core)
    deliverer = HeldDeliverer()
    notifier = Notifier(service, deliverer,
                        NotifierSettings(max_entities_per_notification=10,
                                         refresh_seconds=3600, poll_seconds=3600))
    try:
        async with run_notifier(notifier):
            yield notifier, deliverer
            deliverer.release.set()
    finally:
        await store.close()


def burst(first: int, entities: list[int]) -> list[OutboxItem]:
    return [OutboxItem(first + n, "", SUB_ID,
                       {"trigger": "entityUpdated",
                        "entities": [{"id": f"urn:ngsi-ld:Probe:{e}", "type": [PROBE],
                                      "attrs": {}}]}, 0)
            for n, e in enumerate(entities)]


async def test_a_burst_gets_a_sender_per_notification_it_fills(
        notifier: tuple[Notifier, HeldDeliverer]) -> None:
    service, deliverer = notifier
    started: list[tuple[str, str]] = []
    send = service._send

    async def counted(key: tuple[str, str], backlog: Backlog) -> None:
        started.append(key)
        await send(key, backlog)

    service._send = counted  # type: ignore[method-assign]
    service._dispatch(burst(1, list(range(25))))
    await anyio.wait_all_tasks_blocked()
    # 25 distinct entities, 10 a notification: three at once, and no sender started idle.
    assert [len(ids) for ids in deliverer.sent] == [10, 10, 5]
    assert deliverer.in_flight == 3 and len(started) == 3


async def test_the_slots_bound_the_senders_and_the_rest_waits_for_them(
        notifier: tuple[Notifier, HeldDeliverer]) -> None:
    service, deliverer = notifier
    service._dispatch(burst(1, [7] * 6))   # one entity six times: one notification each
    await anyio.wait_all_tasks_blocked()
    assert deliverer.sent == [["urn:ngsi-ld:Probe:7"]] * 4 and deliverer.in_flight == 4
    service._dispatch(burst(100, [8]))   # all four slots are busy: it waits too
    await anyio.wait_all_tasks_blocked()
    assert len(deliverer.sent) == 4
    deliverer.release.set()
    await anyio.wait_all_tasks_blocked()
    assert Counter(e for ids in deliverer.sent for e in ids) == {
        "urn:ngsi-ld:Probe:7": 6, "urn:ngsi-ld:Probe:8": 1}
    assert deliverer.most_in_flight == 4
    assert ("", SUB_ID) not in service._backlogs   # all sent: nothing left running

