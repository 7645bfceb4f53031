"""/sinergia/v1/devices: provisioning records, per tenant, with clear errors for bad ones."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from sinergia.ngsild.errors import ERROR_BASE

DEVICES = "/sinergia/v1/devices"
THERMOMETER: dict[str, Any] = {
    "deviceId": "th-duomo-01", "entityType": "WeatherObserved",
    "entityId": "urn:ngsi-ld:WeatherObserved:Milano-Duomo",
    "attributes": {"t": {"name": "temperature", "unitCode": "CEL"}, "h": {"unitCode": "P1"}},
    "staticAttributes": {"location": {"type": "Point", "coordinates": [9.1916, 45.4641]}},
}


def _problem(response: Any, status: int, name: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    problem = response.json()
    assert problem["type"] == ERROR_BASE + name
    detail: str = problem["detail"]
    return detail


def test_create_read_list_replace_delete(client: TestClient) -> None:
    created = client.post(DEVICES, json=THERMOMETER)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{DEVICES}/th-duomo-01"
    read = client.get(created.headers["location"])
    assert read.status_code == 200
    # A key mapped to a unit only keeps its own name.
    assert read.json() == {**THERMOMETER, "attributes": {
        "t": {"name": "temperature", "unitCode": "CEL"}, "h": {"name": "h", "unitCode": "P1"}}}
    assert [d["deviceId"] for d in client.get(DEVICES).json()] == ["th-duomo-01"]

    replaced = client.put(f"{DEVICES}/th-duomo-01", json={"entityType": "WeatherObserved"})
    assert replaced.status_code == 204, replaced.text
    assert client.get(f"{DEVICES}/th-duomo-01").json() == {
        "deviceId": "th-duomo-01", "entityType": "WeatherObserved"}

    assert client.delete(f"{DEVICES}/th-duomo-01").status_code == 204
    _problem(client.get(f"{DEVICES}/th-duomo-01"), 404, "ResourceNotFound")
    _problem(client.delete(f"{DEVICES}/th-duomo-01"), 404, "ResourceNotFound")
    assert client.get(DEVICES).json() == []


def test_put_creates_a_device_that_does_not_exist(client: TestClient) -> None:
    made = client.put(f"{DEVICES}/counter-7", json={"deviceId": "counter-7"})
    assert made.status_code == 201, made.text
    assert made.headers["location"] == f"{DEVICES}/counter-7"
    assert client.get(f"{DEVICES}/counter-7").json() == {"deviceId": "counter-7"}


def test_a_device_is_provisioned_once(client: TestClient) -> None:
    assert client.post(DEVICES, json=THERMOMETER).status_code == 201
    _problem(client.post(DEVICES, json=THERMOMETER), 409, "AlreadyExists")


def test_devices_belong_to_their_tenant(client: TestClient) -> None:
    milano = {"NGSILD-Tenant": "milano"}
    assert client.post(DEVICES, json=THERMOMETER, headers=milano).status_code == 201
    assert client.get(DEVICES).json() == []
    _problem(client.get(f"{DEVICES}/th-duomo-01"), 404, "ResourceNotFound")
    assert len(client.get(DEVICES, headers=milano).json()) == 1
    # The same id in another tenant is another device.
    assert client.post(DEVICES, json=THERMOMETER).status_code == 201


def test_list_pages_and_counts(client: TestClient) -> None:
    for n in range(5):
        assert client.post(DEVICES, json={"deviceId": f"d{n}"}).status_code == 201
    page = client.get(DEVICES, params={"limit": "2", "offset": "2", "count": "true"})
    assert [d["deviceId"] for d in page.json()] == ["d2", "d3"]
    assert page.headers["ngsild-results-count"] == "5"
    assert 'rel="next"' in page.headers["link"] and 'rel="prev"' in page.headers["link"]
    _problem(client.get(DEVICES, params={"limit": "100000"}), 403, "TooManyResults")
    _problem(client.get(DEVICES, params={"limit": "-1"}), 400, "BadRequestData")


@pytest.mark.parametrize(("body", "complaint"), [
    ({}, "deviceId"),
    ({"deviceId": "has space"}, "deviceId"),
    ({"deviceId": "a/b"}, "deviceId"),
    ({"deviceId": "d", "colour": "red"}, "colour"),
    ({"deviceId": "d", "entityId": "not a uri", "entityType": "Room"}, "entityId"),
    ({"deviceId": "d", "entityId": "urn:ngsi-ld:Room:1"}, "entityType"),
    ({"deviceId": "d", "entityType": "Bad Type"}, "entityType"),
    ({"deviceId": "d", "attributes": ["t"]}, "attributes"),
    ({"deviceId": "d", "attributes": {"t": "temperature"}}, "name and/or unitCode"),
    ({"deviceId": "d", "attributes": {"t": {"unit": "CEL"}}}, "name and/or unitCode"),
    ({"deviceId": "d", "attributes": {"t": {"unitCode": ""}}}, "unitCode"),
    ({"deviceId": "d", "attributes": {"t": {"name": "x"}, "u": {"name": "x"}}}, "['x']"),
    ({"deviceId": "d", "staticAttributes": [1]}, "staticAttributes"),
    ({"deviceId": "d", "staticAttributes": {"location": {"type": "Point",
                                                          "coordinates": "here"}}},
     "staticAttributes"),
    ({"deviceId": "d", "jsonldContext": "not a url"}, "jsonldContext"),
    ([THERMOMETER], "JSON object"),
])
def test_bad_devices_are_refused_with_a_reason(client: TestClient, body: Any,
                                               complaint: str) -> None:
    detail = _problem(client.post(DEVICES, json=body), 400, "BadRequestData")
    assert complaint in detail
    assert client.get(DEVICES).json() == []


def test_the_url_and_the_body_must_name_the_same_device(client: TestClient) -> None:
    detail = _problem(client.put(f"{DEVICES}/one", json={"deviceId": "two"}), 400,
                      "BadRequestData")
    assert "'one'" in detail
    _problem(client.get(f"{DEVICES}/bad%20id"), 400, "BadRequestData")


def test_devices_are_json(client: TestClient) -> None:
    sent = client.post(DEVICES, content=b"deviceId=d1",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    _problem(sent, 415, "UnsupportedMediaType")
    broken = client.post(DEVICES, content=b"{", headers={"Content-Type": "application/json"})
    _problem(broken, 400, "InvalidRequest")


def test_an_unreachable_context_is_refused(client: TestClient) -> None:
    # The test settings forbid remote @contexts: the device's names could never be read.
    body = {"deviceId": "d", "jsonldContext": "https://example.org/never.jsonld"}
    detail = _problem(client.post(DEVICES, json=body), 503, "LdContextNotAvailable")
    assert "never.jsonld" in detail
    assert client.get(DEVICES).json() == []


def test_a_hosted_context_names_the_attributes(client: TestClient) -> None:
    hosted = client.post("/ngsi-ld/v1/jsonldContexts", json={"@context": {
        "temperature": "https://smartdatamodels.org/dataModel.Weather/temperature"}})
    assert hosted.status_code == 201, hosted.text
    body = {"deviceId": "d", "jsonldContext": hosted.headers["location"]}
    assert client.post(DEVICES, json=body).status_code == 201
    assert client.get(f"{DEVICES}/d").json()["jsonldContext"] == hosted.headers["location"]
