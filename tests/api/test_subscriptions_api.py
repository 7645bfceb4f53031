"""Subscriptions through the HTTP API, with notifications delivered to a real HTTP receiver."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from support.receiver import Receiver, http_receiver

BASE = "/ngsi-ld/v1"
SUB = "urn:ngsi-ld:Subscription:traffic"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as r:
        yield r


def flow(n: int, intensity: int) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:TrafficFlowObserved:{n}", "type": "TrafficFlowObserved",
            "intensity": {"type": "Property", "value": intensity},
            "location": {"type": "GeoProperty",
                         "value": {"type": "Point", "coordinates": [9.19, 45.46]}}}


def subscribe(client: TestClient, receiver: Receiver, **extra: Any) -> None:
    body = {"id": SUB, "type": "Subscription",
            "entities": [{"type": "TrafficFlowObserved"}],
            "notification": {"endpoint": {"uri": receiver.url}, "format": "keyValues"}}
    body.update(extra)
    response = client.post(f"{BASE}/subscriptions", json=body)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"{BASE}/subscriptions/{SUB}"


def test_change_is_notified(client: TestClient, receiver: Receiver) -> None:
    subscribe(client, receiver, watchedAttributes=["intensity"])
    assert client.post(f"{BASE}/entities", json=flow(1, 10)).status_code == 201
    note = receiver.next()
    assert note.body["type"] == "Notification" and note.body["subscriptionId"] == SUB
    assert note.body["data"] == [{"id": "urn:ngsi-ld:TrafficFlowObserved:1",
                                  "type": "TrafficFlowObserved", "intensity": 10,
                                  "location": {"type": "Point", "coordinates": [9.19, 45.46]}}]
    assert "rel=\"http://www.w3.org/ns/json-ld#context\"" in note.headers["link"]
    response = client.patch(f"{BASE}/entities/urn:ngsi-ld:TrafficFlowObserved:1/attrs",
                            json={"intensity": {"type": "Property", "value": 11}})
    assert response.status_code == 204
    assert receiver.next().body["data"][0]["intensity"] == 11


def test_q_filters_notifications(client: TestClient, receiver: Receiver) -> None:
    subscribe(client, receiver, q="intensity>100")
    client.post(f"{BASE}/entities", json=flow(1, 10))
    client.post(f"{BASE}/entities", json=flow(2, 500))
    assert receiver.next().body["data"][0]["id"] == "urn:ngsi-ld:TrafficFlowObserved:2"
    assert receiver.nothing_within(0.5)


def test_batch_notifies_each_entity(client: TestClient, receiver: Receiver) -> None:
    subscribe(client, receiver)
    response = client.post(f"{BASE}/entityOperations/upsert",
                           json=[flow(n, n) for n in range(5)])
    assert response.status_code in (201, 204), response.text
    ids = {entity["id"] for entity in receiver.entities(5)}
    assert ids == {f"urn:ngsi-ld:TrafficFlowObserved:{n}" for n in range(5)}


def test_status_counts_deliveries(client: TestClient, receiver: Receiver) -> None:
    subscribe(client, receiver)
    client.post(f"{BASE}/entities", json=flow(1, 10))
    receiver.next()
    # the counters are written right after the receiver answered; poll the API briefly
    for _ in range(100):
        body = client.get(f"{BASE}/subscriptions/{SUB}").json()
        if body["notification"].get("timesSent") == 1:
            break
        receiver.nothing_within(0.02)
    assert body["notification"]["timesSent"] == 1
    assert body["notification"]["status"] == "ok"
    assert body["status"] == "active"
    assert "lastSuccess" in body["notification"]


def test_crud(client: TestClient, receiver: Receiver) -> None:
    subscribe(client, receiver)
    again = client.post(f"{BASE}/subscriptions", json={
        "id": SUB, "type": "Subscription", "entities": [{"type": "X"}],
        "notification": {"endpoint": {"uri": receiver.url}}})
    assert again.status_code == 409
    listed = client.get(f"{BASE}/subscriptions", params={"count": "true"})
    assert [s["id"] for s in listed.json()] == [SUB]
    assert listed.headers["ngsild-results-count"] == "1"
    assert client.patch(f"{BASE}/subscriptions/{SUB}", json={"isActive": False}).status_code == 204
    assert client.get(f"{BASE}/subscriptions/{SUB}").json()["status"] == "paused"
    client.post(f"{BASE}/entities", json=flow(1, 10))
    assert receiver.nothing_within(0.5)  # paused
    assert client.delete(f"{BASE}/subscriptions/{SUB}").status_code == 204
    assert client.get(f"{BASE}/subscriptions/{SUB}").status_code == 404
    assert client.delete(f"{BASE}/subscriptions/{SUB}").status_code == 404


def test_invalid_subscription_is_refused(client: TestClient) -> None:
    response = client.post(f"{BASE}/subscriptions", json={
        "type": "Subscription", "entities": [{"type": "X"}],
        "notification": {"endpoint": {"uri": "ftp://nowhere"}}})
    assert response.status_code == 400
    assert client.get(f"{BASE}/subscriptions").json() == []


def test_tenants_do_not_share_subscriptions(client: TestClient, receiver: Receiver) -> None:
    subscribe(client, receiver)
    other = {"NGSILD-Tenant": "other"}
    client.post(f"{BASE}/entities", json=flow(1, 10), headers=other)
    assert receiver.nothing_within(0.5)
    assert client.get(f"{BASE}/subscriptions", headers=other).json() == []


def test_subscriptions_survive_restart(settings: Any, receiver: Receiver) -> None:
    from sinergia.api.app import create_app

    with TestClient(create_app(settings)) as first:
        subscribe(first, receiver)
    with TestClient(create_app(settings)) as second:
        second.post(f"{BASE}/entities", json=flow(1, 10))
        assert receiver.next().body["subscriptionId"] == SUB


def test_a_hanging_receiver_does_not_hold_up_the_others(client: TestClient,
                                                        receiver: Receiver) -> None:
    import socket

    hanging = socket.socket()  # accepts connections (kernel backlog) but never answers
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(1024)
    try:
        port = hanging.getsockname()[1]
        for name, uri in (("stuck", f"http://127.0.0.1:{port}/notify"), ("ok", receiver.url)):
            response = client.post(f"{BASE}/subscriptions", json={
                "id": f"urn:ngsi-ld:Subscription:{name}", "type": "Subscription",
                "entities": [{"type": "TrafficFlowObserved"}],
                "notification": {"endpoint": {"uri": uri}, "format": "keyValues"}})
            assert response.status_code == 201
        client.post(f"{BASE}/entities", json=flow(1, 0))
        for n in range(1, 60):
            client.patch(f"{BASE}/entities/urn:ngsi-ld:TrafficFlowObserved:1/attrs",
                         json={"intensity": {"type": "Property", "value": n}})
        # every update reaches the healthy receiver while the other one hangs
        got = {entity["intensity"] for entity in receiver.entities(60, timeout=15)}
        assert got == set(range(60))
    finally:
        hanging.close()
