"""BrokerClient histories: add_history records every instance with its observedAt (and moves
the current state to the latest), temporal_query reads a period back whole — across the
broker's entity pages and its 206 Content-Range pages — the same in-process and over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sinergia.adapters import broker_client
from sinergia.adapters.broker_client import (
    BrokerClient,
    BrokerUnavailable,
    HttpBroker,
    QueryRefused,
)
from sinergia.settings import Settings

pytestmark = pytest.mark.anyio

BASE = "/ngsi-ld/v1"
SDM = "https://smartdatamodels.org/dataModel.Energy/"
CONTEXT = [{"Meter": SDM + "Meter", "energy": SDM + "energy", "power": SDM + "power"}]
T0 = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Three instances per attribute per answer: every history below comes in several pages.
    return Settings(database_url=database_url, sqlite_synchronous="normal",
                    allow_remote_contexts=False, max_history_instances=3)


@pytest.fixture(params=["in-process", "http"])
def broker(request: pytest.FixtureRequest, live_broker: Any,
           monkeypatch: pytest.MonkeyPatch) -> BrokerClient:
    monkeypatch.setattr(broker_client, "TEMPORAL_PAGE", 2)  # several entity pages too
    if request.param == "in-process":
        return live_broker.in_process
    return live_broker.over_http()


def at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def meter(n: int, readings: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Meter:{n}", "type": "Meter",
            "energy": [{"type": "Property", "value": float(n * 100 + k), "observedAt": at(15 * k)}
                       for k in range(readings)], **extra}


async def test_add_history_records_every_instance_and_moves_the_current_state(
        broker: BrokerClient, live_broker: Any) -> None:
    report = await broker.add_history([meter(1, 5)], context=CONTEXT)
    assert report.ok and report.succeeded == ["urn:ngsi-ld:Meter:1"]
    current = await live_broker.http.get(f"{BASE}/entities/urn:ngsi-ld:Meter:1",
                                         params={"options": "keyValues"})
    assert current.status_code == 200, current.text
    assert current.json()["https://smartdatamodels.org/dataModel.Energy/energy"] == 104.0
    history = await live_broker.http.get(
        f"{BASE}/temporal/entities/urn:ngsi-ld:Meter:1",
        params={"timerel": "after", "timeAt": "2026-11-20T00:15:00Z", "lastN": "3"})
    assert history.status_code == 200, history.text
    values = [i["value"] for i in history.json()[SDM + "energy"]]
    assert values == [102.0, 103.0, 104.0]
    every = await broker.temporal_query("Meter", T0, T0 + timedelta(days=1), context=CONTEXT)
    assert [i["value"] for i in every[0]["energy"]] == [100.0, 101.0, 102.0, 103.0, 104.0]


async def test_one_bad_temporal_entity_fails_alone(broker: BrokerClient) -> None:
    no_time = {"id": "urn:ngsi-ld:Meter:9", "type": "Meter",
               "energy": [{"type": "Property", "value": 1.0}]}
    report = await broker.add_history([meter(1, 2), no_time, meter(2, 2)], context=CONTEXT)
    assert sorted(report.succeeded) == ["urn:ngsi-ld:Meter:1", "urn:ngsi-ld:Meter:2"]
    (failure,) = report.failed
    assert failure.entity_id == "urn:ngsi-ld:Meter:9"
    assert "observedAt" in failure.detail


async def test_temporal_query_reads_a_long_period_whole(broker: BrokerClient) -> None:
    # 5 meters (3 entity pages of 2) by 8 readings (3 history pages of 3), plus power.
    entities = [meter(n, 8, power=[{"type": "Property", "value": n, "observedAt": at(0)}])
                for n in range(1, 6)]
    assert (await broker.add_history(entities, context=CONTEXT)).ok
    found = await broker.temporal_query("Meter", T0, T0 + timedelta(hours=3),
                                        context=CONTEXT)
    by_id = {e["id"]: e for e in found}
    assert sorted(by_id) == [f"urn:ngsi-ld:Meter:{n}" for n in range(1, 6)]
    for n in range(1, 6):
        entity = by_id[f"urn:ngsi-ld:Meter:{n}"]
        assert entity["type"] == "Meter"
        assert [i["value"] for i in entity["energy"]] == [float(n * 100 + k) for k in range(8)]
        assert [i["observedAt"] for i in entity["energy"]] == [
            (T0 + timedelta(minutes=15 * k)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            for k in range(8)]
        assert [i["value"] for i in entity["power"]] == [n]


async def test_temporal_query_keeps_to_the_half_open_period(broker: BrokerClient) -> None:
    assert (await broker.add_history([meter(1, 8), meter(2, 1)], context=CONTEXT)).ok
    # [00:30, 01:15): readings 2, 3 and 4 of meter 1; meter 2 has nothing then
    found = await broker.temporal_query("Meter", T0 + timedelta(minutes=30),
                                        T0 + timedelta(minutes=75), context=CONTEXT)
    assert [e["id"] for e in found] == ["urn:ngsi-ld:Meter:1"]
    assert [i["value"] for i in found[0]["energy"]] == [102.0, 103.0, 104.0]


async def test_temporal_query_of_nothing_is_empty(broker: BrokerClient) -> None:
    assert await broker.temporal_query("Meter", T0, T0 + timedelta(days=1),
                                       context=CONTEXT) == []


@pytest.mark.parametrize(("entity_type", "tenant", "message"), [
    ("Meter", "nowhere", "tenant"),
    ("Bad Type!", "", "type"),
])
async def test_refused_queries_raise(broker: BrokerClient, entity_type: str, tenant: str,
                                     message: str) -> None:
    with pytest.raises(QueryRefused) as refused:
        await broker.temporal_query(entity_type, T0, T0 + timedelta(hours=1), tenant=tenant)
    assert message in str(refused.value).lower()


async def test_naive_or_empty_periods_are_refused(broker: BrokerClient) -> None:
    with pytest.raises(ValueError, match="aware"):
        await broker.temporal_query("Meter", datetime(2026, 1, 1), T0)
    with pytest.raises(QueryRefused, match="later"):
        await broker.temporal_query("Meter", T0, T0)


async def test_an_unreachable_broker_is_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse),
                                 base_url="http://broker") as client:
        broker = HttpBroker(client=client)
        with pytest.raises(BrokerUnavailable):
            await broker.add_history([meter(1, 1)], context=CONTEXT)
        with pytest.raises(BrokerUnavailable):
            await broker.temporal_query("Meter", T0, T0 + timedelta(hours=1))


async def test_a_206_without_content_range_is_not_taken_for_the_whole() -> None:
    def partial(request: httpx.Request) -> httpx.Response:
        return httpx.Response(206, json=[{"id": "urn:x:1", "type": "Meter"}])

    async with httpx.AsyncClient(transport=httpx.MockTransport(partial),
                                 base_url="http://broker") as client:
        with pytest.raises(BrokerUnavailable, match="Content-Range"):
            await HttpBroker(client=client).temporal_query("Meter", T0,
                                                           T0 + timedelta(hours=1))
