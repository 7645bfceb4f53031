"""GET /entities/{id} answered by the ASGI shortcut is byte for byte what the endpoint gives:
same status, headers and body, for every request the shortcut takes or passes on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from sinergia.api import render_cache
from sinergia.api.entity_shortcut import EntityByIdShortcut
from sinergia.storage.base import StoredText

BASE = "/ngsi-ld/v1"
CTX_URL = "https://example.org/lighting.jsonld"
LAMP = {"id": "urn:ngsi-ld:Lamp:1", "type": "Lamp",
        "brightness": {"type": "Property", "value": 0.5, "unitCode": "P1"},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [9.1, 45.4]}}}
LINK = f'<{CTX_URL}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'

REQUESTS: list[tuple[str, dict[str, str]]] = [
    ("urn:ngsi-ld:Lamp:1", {}),
    ("urn:ngsi-ld:Lamp:1", {"Accept": "application/ld+json"}),
    ("urn:ngsi-ld:Lamp:1", {"Accept": "application/json, */*;q=0.5"}),
    ("urn:ngsi-ld:Lamp:1", {"Accept": "application/geo+json"}),
    ("urn:ngsi-ld:Lamp:1", {"Accept": "text/html"}),                 # 406
    ("urn:ngsi-ld:Lamp:1", {"Link": LINK}),
    ("urn:ngsi-ld:Lamp:1", {"Link": "<>; rel=\"http://www.w3.org/ns/json-ld#context\""}),
    ("urn:ngsi-ld:Lamp:1", {"NGSILD-Tenant": "other"}),              # no such tenant
    ("urn:ngsi-ld:Lamp:1", {"NGSILD-Tenant": "bad tenant!"}),        # 400
    ("urn:ngsi-ld:Lamp:2", {}),                                      # 404
    ("not-a-uri", {}),                                               # 400
    ("urn:ngsi-ld:Lamp:1/attrs", {}),
    ("urn:ngsi-ld:Lamp:1?options=keyValues", {}),
]


@pytest.fixture
def lamp_client(client: TestClient) -> TestClient:
    context = {"@context": {"brightness": "https://example.org/lighting#brightness"}}
    assert client.post(f"{BASE}/jsonldContexts", json=context).status_code == 201
    assert client.post(f"{BASE}/entities", json=LAMP).status_code == 201
    return client


@pytest.fixture
def shortcut_answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Whether the shortcut answered each request (True) or passed it on (False)."""
    seen: list[bool] = []
    original = EntityByIdShortcut._answer

    async def spy(self: EntityByIdShortcut, scope: Any, entity_id: str) -> Any:
        answer = await original(self, scope, entity_id)
        seen.append(answer is not None)
        return answer

    monkeypatch.setattr(EntityByIdShortcut, "_answer", spy)
    yield seen


def fetch(client: TestClient, path: str, headers: dict[str, str]) -> tuple[Any, ...]:
    response = client.get(f"{BASE}/entities/{path}", headers=headers)
    return response.status_code, sorted(response.headers.items()), response.content


def without_shortcut(monkeypatch: pytest.MonkeyPatch) -> None:
    async def pass_on(self: EntityByIdShortcut, scope: Any, entity_id: str) -> None:
        return None

    monkeypatch.setattr(EntityByIdShortcut, "_answer", pass_on)


@pytest.mark.parametrize(("path", "headers"), REQUESTS)
def test_shortcut_answers_exactly_as_the_endpoint(
        lamp_client: TestClient, shortcut_answers: list[bool], monkeypatch: pytest.MonkeyPatch,
        path: str, headers: dict[str, str]) -> None:
    if "Link" in headers and CTX_URL in headers["Link"]:
        hosted = lamp_client.get(f"{BASE}/jsonldContexts").json()[0]
        headers = {"Link": LINK.replace(CTX_URL, hosted)}
    render_cache.clear()
    fast = fetch(lamp_client, path, headers)
    again = fetch(lamp_client, path, headers)   # rendered from the cache this time
    without_shortcut(monkeypatch)
    render_cache.clear()
    slow = fetch(lamp_client, path, headers)
    assert fast == again == slow
    keeps_text = isinstance(lamp_client.app.state.runtime.store, StoredText)  # type: ignore[attr-defined]
    if path == "urn:ngsi-ld:Lamp:1" and fast[0] == 200 and "geo" not in str(headers):
        # a store without the text leaves every request to the endpoint
        assert shortcut_answers[:2] == [keeps_text, keeps_text]


def test_shortcut_sees_a_change_at_once(lamp_client: TestClient) -> None:
    before = lamp_client.get(f"{BASE}/entities/urn:ngsi-ld:Lamp:1").json()
    patch = {"brightness": {"type": "Property", "value": 0.9}}
    assert lamp_client.patch(f"{BASE}/entities/urn:ngsi-ld:Lamp:1/attrs",
                             json=patch).status_code == 204
    after = lamp_client.get(f"{BASE}/entities/urn:ngsi-ld:Lamp:1").json()
    assert before["brightness"]["value"] == 0.5 and after["brightness"]["value"] == 0.9


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entity_id=st.text(alphabet="urn:gsiLamp1%/#?é ", min_size=1, max_size=24))
def test_any_id_gets_the_endpoint_answer(lamp_client: TestClient, entity_id: str) -> None:
    fast = fetch(lamp_client, entity_id, {})
    with pytest.MonkeyPatch.context() as monkeypatch:
        without_shortcut(monkeypatch)
        slow = fetch(lamp_client, entity_id, {})
    assert fast == slow
