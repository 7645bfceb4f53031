"""Entity lists are served from a cache of rendered entities: what comes out is exactly what a
fresh rendering gives, for every representation, context and media type, and a change to an
entity is seen at once."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from sinergia.api import render_cache

BASE = "/ngsi-ld/v1"
CTX = {"brightness": "https://example.org/lighting#brightness"}


def lamp(n: int, level: float) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Lamp:{n}", "type": "Lamp",
            "brightness": {"type": "Property", "value": level, "unitCode": "P1"},
            "location": {"type": "GeoProperty", "value": {"type": "Point",
                                                          "coordinates": [9.1, 45.4 + n]}},
            "label": {"type": "LanguageProperty", "languageMap": {"en": "lamp", "it": "lampione"}}}


REQUESTS: list[tuple[dict[str, str], dict[str, str]]] = [
    ({}, {}),
    ({"options": "keyValues"}, {}),
    ({"options": "concise,sysAttrs"}, {}),
    ({"attrs": "brightness"}, {}),
    ({"lang": "it"}, {}),
    ({}, {"Accept": "application/ld+json"}),
    ({"options": "keyValues"}, {"Accept": "application/ld+json"}),
]


def fetch(client: TestClient, params: dict[str, str], headers: dict[str, str]) -> Any:
    response = client.get(f"{BASE}/entities", params={"type": "Lamp", **params},
                          headers=headers)
    assert response.status_code == 200, response.text
    return response.headers.get("content-type"), response.headers.get("link"), response.content


@pytest.mark.parametrize(("params", "headers"), REQUESTS)
def test_cached_lists_are_byte_for_byte_what_a_fresh_rendering_gives(
        client: TestClient, params: dict[str, str], headers: dict[str, str]) -> None:
    for n in range(3):
        assert client.post(f"{BASE}/entities", json=lamp(n, n / 10)).status_code == 201
    render_cache.clear()
    fresh = fetch(client, params, headers)
    again = fetch(client, params, headers)   # from the cache
    assert again == fresh
    render_cache.clear()
    assert fetch(client, params, headers) == fresh
    body = orjson.loads(fresh[2])
    assert [e["id"] for e in body] == [f"urn:ngsi-ld:Lamp:{n}" for n in range(3)]
    if headers.get("Accept") == "application/ld+json":
        assert all("@context" in e for e in body)


def test_the_request_context_and_entity_changes_are_seen(client: TestClient) -> None:
    assert client.post(f"{BASE}/entities", json=lamp(1, 0.5)).status_code == 201
    plain = orjson.loads(fetch(client, {}, {})[2])
    assert plain[0]["brightness"]["value"] == 0.5
    assert "brightness" in plain[0]
    # Another context, where "brightness" names another IRI, compacts the same stored
    # entity differently; the default context still gets its own rendering.
    hosted = client.post(f"{BASE}/jsonldContexts", json={"@context": CTX})
    assert hosted.status_code == 201, hosted.text
    other = orjson.loads(fetch(client, {}, {
        "Link": f'<{hosted.headers["location"]}>; rel="http://www.w3.org/ns/json-ld#context"; '
                'type="application/ld+json"'})[2])
    assert "brightness" not in other[0]
    assert other[0]["ngsi-ld:default-context/brightness"]["value"] == 0.5
    assert orjson.loads(fetch(client, {}, {})[2]) == plain
    patch = client.patch(f"{BASE}/entities/urn:ngsi-ld:Lamp:1/attrs",
                         json={"brightness": {"type": "Property", "value": 0.9}})
    assert patch.status_code == 204
    assert orjson.loads(fetch(client, {}, {})[2])[0]["brightness"]["value"] == 0.9


def test_texts_that_share_their_first_characters_are_told_apart(client: TestClient) -> None:
    # An id longer than the cache's key prefix: every version of the entity shares it.
    entity = {**lamp(1, 0.5), "id": "urn:ngsi-ld:Lamp:" + "x" * 300}
    assert client.post(f"{BASE}/entities", json=entity).status_code == 201
    assert orjson.loads(fetch(client, {}, {})[2])[0]["brightness"]["value"] == 0.5
    for level in (0.7, 0.9):
        patch = client.patch(f"{BASE}/entities/{entity['id']}/attrs",
                             json={"brightness": {"type": "Property", "value": level}})
        assert patch.status_code == 204
        assert orjson.loads(fetch(client, {}, {})[2])[0]["brightness"]["value"] == level
