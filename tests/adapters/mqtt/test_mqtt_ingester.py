"""The ingester on its own, against an embedded broker this test starts and stops: it rides
out a broker restart and a database that fails for a while, losing nothing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiomqtt
import anyio
import orjson
import pytest
from mqtt_harness import DEADLINE, free_port

from sinergia.adapters.broker_client import BatchReport, BrokerUnavailable, InProcessBroker
from sinergia.adapters.mqtt.embedded import EmbeddedBroker, EmbeddedBrokerError
from sinergia.adapters.mqtt.ingest import IngestConfig, MqttIngester
from sinergia.adapters.mqtt.service import MqttService
from sinergia.api.app import build_runtime
from sinergia.api.runtime import Runtime
from sinergia.settings import Settings

pytestmark = pytest.mark.anyio
PREFIX = "sinergia"


async def eventually(check: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {DEADLINE} s")
        await anyio.sleep(0.02)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    rt = build_runtime(settings)
    await rt.store.open()
    try:
        yield rt
    finally:
        await rt.store.close()


class FlakyBroker:
    """The in-process broker, unavailable for its first ``failures`` writes."""

    def __init__(self, inner: InProcessBroker, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    async def upsert(self, entities: Sequence[Mapping[str, Any]], **options: Any
                     ) -> BatchReport:
        if self.failures:
            self.failures -= 1
            raise BrokerUnavailable("the database is down")
        return await self.inner.upsert(entities, **options)


@dataclass
class Running:
    ingester: MqttIngester
    port: int

    async def publish(self, device: str, body: dict[str, Any]) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port) as client:
            await client.publish(f"{PREFIX}//Room/{device}/attrs", orjson.dumps(body), qos=1)


def _ingester(rt: Runtime, port: int, broker: Any) -> MqttIngester:
    config = IngestConfig(host="127.0.0.1", port=port, prefix=PREFIX, protocol="3.1.1",
                          persistent=False, batch_ms=1.0)
    return MqttIngester(config, broker, rt.devices, min_backoff=0.05, max_backoff=0.2)


async def test_the_ingester_reconnects_when_the_broker_comes_back(runtime: Runtime) -> None:
    port = free_port()
    ingester = _ingester(runtime, port, InProcessBroker(runtime.entities, runtime.contexts))
    mqtt = EmbeddedBroker("127.0.0.1", port)
    await mqtt.start()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(ingester.run)
        await eventually(lambda: ingester.status.connected, "connected")
        await mqtt.stop()
        await eventually(lambda: not ingester.status.connected, "disconnected")
        assert ingester.status.last_error
        await mqtt.start()
        await eventually(lambda: ingester.status.connected, "reconnected")
        await Running(ingester, port).publish("r1", {"temperature": 20})
        await eventually(lambda: ingester.status.written == 1, "written")
        tasks.cancel_scope.cancel()
    await mqtt.stop()
    entity = await runtime.entities.retrieve("", "urn:ngsi-ld:Room:r1")
    assert [i["value"] for i in next(iter(entity["attrs"].values()))] == [20]


async def test_a_failing_database_delays_messages_but_loses_none(runtime: Runtime) -> None:
    port = free_port()
    flaky = FlakyBroker(InProcessBroker(runtime.entities, runtime.contexts), failures=2)
    service = MqttService(_ingester(runtime, port, flaky), EmbeddedBroker("127.0.0.1", port))
    async with anyio.create_task_group() as tasks:
        await tasks.start(service.run)  # the embedded broker is up once started
        ingester = service.ingester
        await eventually(lambda: ingester.status.connected, "connected")
        await Running(ingester, port).publish("r1", {"temperature": 20})
        await eventually(lambda: ingester.status.written == 1, "written after the retries")
        assert flaky.failures == 0
        assert ingester.status.malformed == 0
        assert "the database is down" in (ingester.status.last_error or "")
        tasks.cancel_scope.cancel()
    assert await runtime.entities.retrieve("", "urn:ngsi-ld:Room:r1")


async def test_a_taken_port_stops_the_service_from_starting(runtime: Runtime) -> None:
    port = free_port()
    first = EmbeddedBroker("127.0.0.1", port)
    await first.start()
    try:
        service = MqttService(_ingester(runtime, port, None),
                              EmbeddedBroker("127.0.0.1", port))
        with pytest.raises(ExceptionGroup) as raised:
            async with anyio.create_task_group() as tasks:
                await tasks.start(service.run)
        assert raised.group_contains(EmbeddedBrokerError, match="cannot listen on")
    finally:
        await first.stop()
