"""BrokerClient: the in-process and the HTTP implementation behave the same — per-entity
reports, @context handling, update vs replace, delete, tenants — and what they write is what
the API reads back."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sinergia.adapters.broker_client import (
    BatchReport,
    BrokerClient,
    BrokerUnavailable,
    HttpBroker,
)

pytestmark = pytest.mark.anyio

BASE = "/ngsi-ld/v1"
SDM = "https://smartdatamodels.org/dataModel.Streetlighting/"
CONTEXT = {"Streetlight": SDM + "Streetlight", "powerState": SDM + "powerState",
           "illuminanceLevel": SDM + "illuminanceLevel"}


def lamp(n: int, **attrs: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Streetlight:MI-{n:04d}", "type": "Streetlight", **attrs}


@pytest.fixture(params=["in-process", "http"])
def broker(request: pytest.FixtureRequest, live_broker: Any) -> BrokerClient:
    if request.param == "in-process":
        return live_broker.in_process
    return live_broker.over_http(chunk_size=2)  # small chunks: several requests per call


async def get(live_broker: Any, entity_id: str, **headers: str) -> httpx.Response:
    return await live_broker.http.get(f"{BASE}/entities/{entity_id}",
                                      params={"options": "keyValues"}, headers=headers)


async def test_upsert_reports_every_id_and_the_api_reads_them_back(broker: BrokerClient,
                                                                   live_broker: Any) -> None:
    entities = [lamp(n, powerState={"type": "Property", "value": "on"}) for n in range(1, 6)]
    report = await broker.upsert(entities)
    assert report.ok
    assert sorted(report.succeeded) == sorted(e["id"] for e in entities)
    response = await get(live_broker, entities[4]["id"])
    assert response.status_code == 200
    assert response.json()["powerState"] == "on"


async def test_one_bad_entity_fails_alone(broker: BrokerClient, live_broker: Any) -> None:
    good = lamp(1, powerState="on")
    bad_value = lamp(2, powerState=None)
    bad_id = {"id": "not a uri", "type": "Streetlight"}
    report = await broker.upsert([good, bad_value, bad_id])
    assert report.succeeded == [good["id"]]
    failures = {f.entity_id: f for f in report.failed}
    assert set(failures) == {bad_value["id"], "not a uri"}
    assert "null" in failures[bad_value["id"]].detail
    assert failures[bad_value["id"]].problem_type.endswith("BadRequestData")
    assert (await get(live_broker, good["id"])).status_code == 200
    assert (await get(live_broker, bad_value["id"])).status_code == 404


async def test_context_given_once_expands_every_entity(broker: BrokerClient,
                                                       live_broker: Any) -> None:
    report = await broker.upsert([lamp(1, powerState="off"), lamp(2, illuminanceLevel=0.5)],
                                 context=CONTEXT)
    assert report.ok
    response = await live_broker.http.get(
        f"{BASE}/entities", params={"type": SDM + "Streetlight", "options": "keyValues"})
    entities = {e["id"]: e for e in response.json()}
    assert entities[lamp(1)["id"]][SDM + "powerState"] == "off"
    assert entities[lamp(2)["id"]][SDM + "illuminanceLevel"] == 0.5


async def test_entities_with_their_own_context_keep_it(broker: BrokerClient,
                                                       live_broker: Any) -> None:
    own = {**lamp(1, powerState="on"), "@context": CONTEXT}
    plain = lamp(2, powerState="on")  # no context: the default vocabulary
    report = await broker.upsert([own, plain])
    assert report.ok
    first = (await get(live_broker, own["id"])).json()
    second = (await get(live_broker, plain["id"])).json()
    assert first["type"] == SDM + "Streetlight" and SDM + "powerState" in first
    assert second["type"] == "Streetlight" and second["powerState"] == "on"


async def test_an_unavailable_context_fails_the_entities_that_need_it(
        broker: BrokerClient, live_broker: Any) -> None:
    report = await broker.upsert([lamp(1, powerState="on")],
                                 context="https://example.invalid/missing.jsonld")
    assert report.succeeded == []
    assert [f.entity_id for f in report.failed] == [lamp(1)["id"]]
    assert (await get(live_broker, lamp(1)["id"])).status_code == 404


async def test_update_merges_and_replace_replaces(broker: BrokerClient,
                                                  live_broker: Any) -> None:
    await broker.upsert([lamp(1, powerState="on", illuminanceLevel=1.0)])
    assert (await broker.upsert([lamp(1, powerState="off")], update=True)).ok
    merged = (await get(live_broker, lamp(1)["id"])).json()
    assert merged["powerState"] == "off" and merged["illuminanceLevel"] == 1.0
    assert (await broker.upsert([lamp(1, powerState="on")])).ok
    replaced = (await get(live_broker, lamp(1)["id"])).json()
    assert replaced["powerState"] == "on" and "illuminanceLevel" not in replaced


async def test_delete_reports_unknown_ids(broker: BrokerClient, live_broker: Any) -> None:
    await broker.upsert([lamp(1), lamp(2)])
    report = await broker.delete([lamp(1)["id"], lamp(9)["id"], lamp(2)["id"]])
    assert sorted(report.succeeded) == [lamp(1)["id"], lamp(2)["id"]]
    assert [f.entity_id for f in report.failed] == [lamp(9)["id"]]
    assert report.failed[0].problem_type.endswith("ResourceNotFound")
    assert (await get(live_broker, lamp(1)["id"])).status_code == 404


async def test_tenants_are_kept_apart(broker: BrokerClient, live_broker: Any) -> None:
    assert (await broker.upsert([lamp(1, powerState="on")], tenant="comune_b")).ok
    assert (await get(live_broker, lamp(1)["id"], **{"NGSILD-Tenant": "comune_b"})
            ).status_code == 200
    assert (await get(live_broker, lamp(1)["id"])).status_code == 404


async def test_http_broker_sends_a_url_context_as_a_link_header(live_broker: Any) -> None:
    hosted = await live_broker.http.post(f"{BASE}/jsonldContexts",
                                         json={"@context": CONTEXT})
    url = hosted.headers["Location"]
    seen: list[httpx.Request] = []

    async def spy(request: httpx.Request) -> None:
        seen.append(request)

    live_broker.http.event_hooks["request"].append(spy)
    report = await live_broker.over_http().upsert([lamp(1, powerState="on")], context=url)
    assert report.ok
    assert seen[0].headers["content-type"] == "application/json"
    assert url in seen[0].headers["link"]
    entity = (await get(live_broker, lamp(1)["id"])).json()
    assert entity["type"] == SDM + "Streetlight"


async def test_http_broker_reads_a_whole_request_error_as_failures_of_every_entity(
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(413, json={"type": "https://uri.etsi.org/ngsi-ld/errors/"
                                                 "PayloadTooLarge",
                                         "title": "The request body is too large",
                                         "detail": "11 MB > 10 MB"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://b")
    async with HttpBroker(client=client) as broker:
        report = await broker.upsert([lamp(1), lamp(2)])
    await client.aclose()
    assert report.succeeded == []
    assert [(f.entity_id, f.detail) for f in report.failed] == [
        (lamp(1)["id"], "11 MB > 10 MB"), (lamp(2)["id"], "11 MB > 10 MB")]


async def test_http_broker_raises_when_the_broker_cannot_be_reached() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(refuse), base_url="http://b")
    with pytest.raises(BrokerUnavailable, match="cannot reach"):
        await HttpBroker(client=client).upsert([lamp(1)])
    await client.aclose()


def test_reports_add_up() -> None:
    total = BatchReport(succeeded=["a"])
    other = BatchReport(succeeded=["b"])
    other.fail_all(["c"], "title", "detail")
    total.add(other)
    assert total.succeeded == ["a", "b"]
    assert [f.entity_id for f in total.failed] == ["c"] and not total.ok
