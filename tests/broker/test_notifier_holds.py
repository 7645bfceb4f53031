"""A receiver that is down: its subscription is held, its messages parked, one probe a retry
period tries it; success releases everything parked, and messages are still given up once
their attempts are spent (the subscription then shows failed), and a restart forgets no
parked message."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio
import orjson
import psycopg
import pytest

from sinergia.broker.delivery import Deliverer, DeliveryOutcome, Render, RetryPolicy
from sinergia.broker.holds import Holds
from sinergia.broker.subscriptions import Notifier, NotifierSettings, SubscriptionService
from sinergia.ngsild.context import ContextResolver
from sinergia.storage.base import PARKED, OutboxMessage, Store, open_store
from sinergia.storage.sqlite import path_from_url

pytestmark = pytest.mark.anyio

SUB_ID = "urn:ngsi-ld:Subscription:down"
KEY = ("", SUB_ID)


class SwitchDeliverer(Deliverer):
    """A receiver that refuses every attempt while ``down``, and records what reaches it."""

    def __init__(self) -> None:
        super().__init__(timeout=0.2, per_endpoint=4)
        self.down = True
        self.attempts = 0
        self.received: list[str] = []

    async def deliver_rendered(self, endpoint_uri: str, render: Render, *,
                               notifier_info: Mapping[str, str] | None = None
                               ) -> DeliveryOutcome:
        self.attempts += 1
        if self.down:
            return DeliveryOutcome(False, retryable=True, error="connection refused")
        _, body = render()
        self.received += [entity["id"] for entity in orjson.loads(body)["data"]]
        return DeliveryOutcome(True, status=200)


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait for a condition the notifier brings about in the background."""
    with anyio.fail_after(timeout):
        while not await condition():
            await anyio.sleep(0.01)


def parked(database_url: str) -> int:
    """Messages parked in the outbox (a look inside the store, for the test only)."""
    sql = "SELECT count(*) FROM outbox WHERE due >= 1e12"
    if database_url.startswith("sqlite:"):
        with sqlite3.connect(path_from_url(database_url)) as conn:
            (count,) = conn.execute(sql).fetchone()
    else:
        with psycopg.connect(database_url) as pg:
            (count,) = pg.execute(sql).fetchone() or (0,)
    return int(count)


Running = Callable[..., AbstractAsyncContextManager[tuple[Store, "SwitchDeliverer"]]]


def message(n: int) -> OutboxMessage:
    return OutboxMessage(SUB_ID, {"trigger": "entityUpdated", "entities": [
        {"id": f"urn:ngsi-ld:Probe:{n}", "type": ["https://example.org/Probe"], "attrs": {}}]})


@pytest.fixture
def running(database_url: str,
            run_notifier: Callable[[Notifier], AbstractAsyncContextManager[None]]) -> Running:
    """A server process's notifier on the test database, delivering to ``deliverer`` (by
    default a :class:`SwitchDeliverer` of its own, down or up), with the retry policy given."""

    @asynccontextmanager
    async def run(retry: RetryPolicy, *, down: bool = True, subscribe: bool = True,
                  deliverer: SwitchDeliverer | None = None
                  ) -> AsyncIterator[tuple[Store, SwitchDeliverer]]:
        store = open_store(database_url, synchronous="normal")
        await store.open()
        service = SubscriptionService(store, ContextResolver(allow_remote=False))
        await service.load()
        if subscribe:
            await service.create("", {
                "id": SUB_ID, "type": "Subscription", "entities": [{"type": "Probe"}],
                "notification": {"endpoint": {"uri": "http://receiver.test/n"}}},
                service.resolver.core)
        if deliverer is None:
            deliverer = SwitchDeliverer()
            deliverer.down = down
        notifier = Notifier(service, deliverer, NotifierSettings(
            retry=retry, refresh_seconds=3600, probe_tick_seconds=0.01, sweep_seconds=0.2))
        try:
            async with run_notifier(notifier):
                yield store, deliverer
        finally:
            await store.close()

    return run


async def test_a_down_receiver_costs_one_attempt_a_period_and_gets_everything_back(
        running: Running, database_url: str) -> None:
    retry = RetryPolicy(max_attempts=1000, backoff_base=0.4, backoff_cap=0.4)
    async with running(retry) as (store, deliverer):
        await store.enqueue("", [message(0)])

        async def failed_once() -> bool:
            return deliverer.attempts >= 1

        await until(failed_once)
        began = time.monotonic()
        for n in range(1, 301):   # one change at a time, as a busy city makes them
            await store.enqueue("", [message(n)])

        async def all_parked() -> bool:
            return parked(database_url) == 301

        await until(all_parked)
        elapsed = time.monotonic() - began
        # Attempts follow the clock (one probe per period of at least 0.2 s), not the 300
        # messages: the old notifier tried each as it came.
        assert deliverer.attempts <= 2 + elapsed / 0.2
        assert deliverer.attempts < 50
        assert deliverer.received == []
        assert not (await store.delivery_status(*KEY)).ok

        deliverer.down = False

        async def all_delivered() -> bool:
            return await store.outbox_size() == 0

        await until(all_delivered)
        assert sorted(deliverer.received) == sorted(f"urn:ngsi-ld:Probe:{n}"
                                                    for n in range(301))
        assert (await store.delivery_status(*KEY)).ok


async def test_parked_messages_are_given_up_on_schedule_and_the_subscription_recovers(
        running: Running) -> None:
    retry = RetryPolicy(max_attempts=3, backoff_base=0.05, backoff_cap=0.1)
    async with running(retry) as (store, deliverer):
        for n in range(20):
            await store.enqueue("", [message(n)])

        async def all_given_up() -> bool:
            return await store.outbox_size() == 0

        await until(all_given_up)
        status = await store.delivery_status(*KEY)
        assert not status.ok and status.times_failed == status.times_sent >= 1
        assert deliverer.received == []

        deliverer.down = False
        await store.enqueue("", [message(99)])

        async def recovered() -> bool:
            return (await store.delivery_status(*KEY)).ok

        await until(recovered)
        assert deliverer.received == ["urn:ngsi-ld:Probe:99"]
        assert await store.outbox_size() == 0


async def test_messages_parked_before_a_restart_are_delivered_after_it(
        running: Running, database_url: str) -> None:
    retry = RetryPolicy(max_attempts=1000, backoff_base=30.0, backoff_cap=60.0)
    async with running(retry) as (store, _):
        for n in range(150):
            await store.enqueue("", [message(n)])

        async def all_parked() -> bool:
            return parked(database_url) == 150

        await until(all_parked)
    async with running(retry, down=False, subscribe=False) as (store, up):
        async def all_delivered() -> bool:
            return await store.outbox_size() == 0

        await until(all_delivered)
    assert sorted(up.received) == sorted(f"urn:ngsi-ld:Probe:{n}" for n in range(150))


async def test_two_processes_park_and_deliver_everything_when_the_receiver_returns(
        running: Running, database_url: str) -> None:
    receiver = SwitchDeliverer()
    retry = RetryPolicy(max_attempts=1000, backoff_base=0.4, backoff_cap=0.4)
    async with running(retry, deliverer=receiver) as (first, _), \
            running(retry, deliverer=receiver, subscribe=False) as (second, _):
        for n in range(200):
            await (first, second)[n % 2].enqueue("", [message(n)])

        async def all_parked() -> bool:
            return parked(database_url) == 200

        await until(all_parked)
        assert receiver.received == [] and receiver.attempts < 20
        receiver.down = False

        async def all_delivered() -> bool:
            return await first.outbox_size() == 0

        await until(all_delivered)
    assert sorted(set(receiver.received)) == sorted(f"urn:ngsi-ld:Probe:{n}"
                                                    for n in range(200))


def test_a_hold_grows_with_failed_probes_only() -> None:
    holds = Holds(RetryPolicy(max_attempts=8, backoff_base=1.0, backoff_cap=4.0), grace=1.0,
                  rand=lambda: 0.0)
    assert not holds.held(KEY, 0.0)
    holds.failed(KEY, 10.0, probe=False)
    assert holds.held(KEY, 10.5) and not holds.held(KEY, 11.0)
    holds.failed(KEY, 10.5, probe=False)   # in flight before the hold: no longer
    assert not holds.held(KEY, 11.0)
    assert holds.due(10.5) == [] and holds.due(11.0) == [KEY]
    assert holds.held(KEY, 100.0)          # probing: the others wait for its outcome
    holds.failed(KEY, 11.0, probe=True)
    assert holds.held(KEY, 12.9) and not holds.held(KEY, 13.0)
    holds.failed(KEY, 13.0, probe=False)   # over, and failed again: longer still
    assert holds.held(KEY, 16.9) and not holds.held(KEY, 17.0)
    # parked messages wait at least for the next probe, else for their own retries
    assert holds.park_due(KEY, 0, 13.0) == PARKED + 13.0 + (1 + 2 + 4 + 4 + 4 + 4 + 4)
    assert holds.park_due(KEY, 7, 13.0) == PARKED + 17.0 + 1.0
    assert holds.reached(KEY) and not holds.reached(KEY) and not holds.held(KEY, 13.0)


def test_a_subscription_given_another_endpoint_is_probed_at_once() -> None:
    holds = Holds(RetryPolicy(backoff_base=60.0, backoff_cap=60.0), grace=1.0,
                  rand=lambda: 0.0)
    holds.failed(KEY, 0.0, probe=False, endpoint="http://old.test/n")
    assert holds.due(1.0, lambda key: "http://old.test/n") == []
    assert holds.due(1.0, lambda key: None) == []   # not known here (yet): keep waiting
    assert holds.due(1.0, lambda key: "http://new.test/n") == [KEY]


def test_a_hold_over_for_long_is_forgotten_and_orphans_are_probed_at_once() -> None:
    holds = Holds(RetryPolicy(backoff_base=1.0, backoff_cap=4.0), grace=1.0, rand=lambda: 0.0)
    holds.failed(KEY, 0.0, probe=False)
    assert holds.due(100.0) == [] and KEY not in holds
    holds.adopt(KEY, 5.0)
    assert holds.due(5.0) == [KEY]
    holds.probe_ended(KEY)
    assert not holds.held(KEY, 5.0)
