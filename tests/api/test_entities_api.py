"""The NGSI-LD entity API end to end, in process (ASGI client), on every storage backend."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from sinergia.ngsild.model import CORE_CONTEXT_URL

BASE = "/ngsi-ld/v1"
CTX_REL = 'rel="http://www.w3.org/ns/json-ld#context"'


def light(n: int = 1, **extra: Any) -> dict[str, Any]:
    entity = {
        "id": f"urn:ngsi-ld:Streetlight:MI-{n:04d}",
        "type": "Streetlight",
        "powerState": {"type": "Property", "value": "on", "observedAt": "2026-11-21T18:00:00Z"},
        "illuminanceLevel": {"type": "Property", "value": n / 10, "unitCode": "C62"},
        "refGroup": {"type": "Relationship", "object": "urn:ngsi-ld:StreetlightGroup:G1"},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [round(9.19 + n / 1000, 6), 45.46]}},
    }
    entity.update(extra)
    return entity


def create(client: TestClient, entity: dict[str, Any], **headers: str) -> None:
    response = client.post(f"{BASE}/entities", json=entity, headers=headers)
    assert response.status_code == 201, response.text


def problem(response: Any, status: int, name: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://uri.etsi.org/ngsi-ld/errors/{name}", body
    assert body["title"] and body["detail"]
    return body


# -- create / retrieve -----------------------------------------------------------------------


def test_create_then_retrieve_normalized(client: TestClient) -> None:
    response = client.post(f"{BASE}/entities", json=light())
    assert response.status_code == 201
    assert response.headers["location"] == f"{BASE}/entities/urn:ngsi-ld:Streetlight:MI-0001"
    got = client.get(f"{BASE}/entities/urn:ngsi-ld:Streetlight:MI-0001")
    assert got.status_code == 200
    assert CTX_REL in got.headers["link"] and CORE_CONTEXT_URL in got.headers["link"]
    body = got.json()
    assert body["type"] == "Streetlight"
    assert body["powerState"] == {"type": "Property", "value": "on",
                                  "observedAt": "2026-11-21T18:00:00.000Z"}
    assert body["illuminanceLevel"]["unitCode"] == "C62"
    assert body["refGroup"] == {"type": "Relationship",
                                "object": "urn:ngsi-ld:StreetlightGroup:G1"}
    assert "createdAt" not in body


def test_create_twice_is_409(client: TestClient) -> None:
    create(client, light())
    problem(client.post(f"{BASE}/entities", json=light()), 409, "AlreadyExists")


def test_retrieve_missing_is_404(client: TestClient) -> None:
    problem(client.get(f"{BASE}/entities/urn:ngsi-ld:X:nope"), 404, "ResourceNotFound")


def test_representations(client: TestClient) -> None:
    create(client, light())
    url = f"{BASE}/entities/urn:ngsi-ld:Streetlight:MI-0001"
    kv = client.get(url, params={"options": "keyValues"}).json()
    assert kv["powerState"] == "on" and kv["refGroup"] == "urn:ngsi-ld:StreetlightGroup:G1"
    assert kv["location"] == {"type": "Point", "coordinates": [9.191, 45.46]}
    assert client.get(url, params={"format": "simplified"}).json() == kv
    concise = client.get(url, params={"format": "concise"}).json()
    assert concise["refGroup"] == {"object": "urn:ngsi-ld:StreetlightGroup:G1"}
    sys_attrs = client.get(url, params={"options": "sysAttrs"}).json()
    assert sys_attrs["createdAt"].endswith("Z") and sys_attrs["powerState"]["modifiedAt"]
    picked = client.get(url, params={"pick": "id,powerState"}).json()
    assert set(picked) == {"id", "powerState"}
    omitted = client.get(url, params={"omit": "location,refGroup"}).json()
    assert "location" not in omitted and "powerState" in omitted
    attrs = client.get(url, params={"attrs": "powerState"}).json()
    assert set(attrs) == {"id", "type", "powerState"}


def test_geojson_representation(client: TestClient) -> None:
    create(client, light())
    feature = client.get(f"{BASE}/entities/urn:ngsi-ld:Streetlight:MI-0001",
                         headers={"Accept": "application/geo+json"})
    assert feature.status_code == 200
    assert feature.headers["content-type"].startswith("application/geo+json")
    body = feature.json()
    assert body["type"] == "Feature" and body["geometry"]["type"] == "Point"
    collection = client.get(f"{BASE}/entities", params={"type": "Streetlight"},
                            headers={"Accept": "application/geo+json"}).json()
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 1


def test_concise_input_is_accepted(client: TestClient) -> None:
    create(client, {"id": "urn:ngsi-ld:Sensor:1", "type": "Sensor", "temperature": 21.5,
                    "owner": {"object": "urn:ngsi-ld:Org:1"},
                    "location": {"type": "Point", "coordinates": [9.0, 45.0]}})
    body = client.get(f"{BASE}/entities/urn:ngsi-ld:Sensor:1").json()
    assert body["temperature"] == {"type": "Property", "value": 21.5}
    assert body["owner"]["type"] == "Relationship"
    assert body["location"]["type"] == "GeoProperty"


def test_all_attribute_kinds_round_trip(client: TestClient) -> None:
    entity = {
        "id": "urn:ngsi-ld:Thing:kinds", "type": "Thing",
        "name": {"type": "LanguageProperty", "languageMap": {"it": "Duomo", "en": "Cathedral"}},
        "category": {"type": "VocabProperty", "vocab": "monument"},
        "config": {"type": "JsonProperty", "json": {"a": [1, 2, {"b": None}]}},
        "readings": {"type": "ListProperty", "valueList": [1, 2, 3]},
        "neighbours": {"type": "ListRelationship",
                       "objectList": [{"object": "urn:ngsi-ld:Thing:a"},
                                      {"object": "urn:ngsi-ld:Thing:b"}]},
        "temperature": {"type": "Property", "value": 20,
                        "accuracy": {"type": "Property", "value": 0.5}},
    }
    create(client, entity)
    body = client.get(f"{BASE}/entities/urn:ngsi-ld:Thing:kinds").json()
    for name in ("name", "category", "config", "readings", "neighbours", "temperature"):
        assert body[name] == entity[name], name
    italian = client.get(f"{BASE}/entities/urn:ngsi-ld:Thing:kinds", params={"lang": "it"})
    assert italian.json()["name"]["value"] == "Duomo"


def test_multi_instance_attributes_by_dataset_id(client: TestClient) -> None:
    create(client, {"id": "urn:ngsi-ld:Sensor:m", "type": "Sensor", "speed": [
        {"type": "Property", "value": 50},
        {"type": "Property", "value": 48, "datasetId": "urn:ngsi-ld:Dataset:radar"}]})
    body = client.get(f"{BASE}/entities/urn:ngsi-ld:Sensor:m").json()
    assert isinstance(body["speed"], list) and len(body["speed"]) == 2
    only_radar = client.get(f"{BASE}/entities/urn:ngsi-ld:Sensor:m",
                            params={"datasetId": "urn:ngsi-ld:Dataset:radar"}).json()
    assert only_radar["speed"]["value"] == 48
    response = client.delete(f"{BASE}/entities/urn:ngsi-ld:Sensor:m/attrs/speed",
                             params={"datasetId": "urn:ngsi-ld:Dataset:radar"})
    assert response.status_code == 204
    assert client.get(f"{BASE}/entities/urn:ngsi-ld:Sensor:m").json()["speed"]["value"] == 50


# -- JSON-LD contexts --------------------------------------------------------------------------


def test_ld_json_body_context_and_compaction(client: TestClient) -> None:
    ctx = {"Streetlight": "https://smartdatamodels.org/dataModel.Streetlighting/Streetlight",
           "powerState": "https://smartdatamodels.org/dataModel.Streetlighting/powerState"}
    body = {**light(), "@context": [ctx, CORE_CONTEXT_URL]}
    response = client.post(f"{BASE}/entities", content=orjson.dumps(body),
                           headers={"Content-Type": "application/ld+json"})
    assert response.status_code == 201, response.text
    # without the context, names come back as full IRIs
    plain = client.get(f"{BASE}/entities/urn:ngsi-ld:Streetlight:MI-0001").json()
    assert plain["type"] == ctx["Streetlight"]
    assert ctx["powerState"] in plain
    # querying by the short name needs the context: the same entity is found through it
    none = client.get(f"{BASE}/entities", params={"type": "Streetlight"}).json()
    assert none == []
    ld = client.post(f"{BASE}/entityOperations/query",
                     content=orjson.dumps({"type": "Query", "entities": [{"type": "Streetlight"}],
                                           "@context": [ctx, CORE_CONTEXT_URL]}),
                     headers={"Content-Type": "application/ld+json",
                              "Accept": "application/ld+json"})
    assert ld.status_code == 200, ld.text
    (found,) = ld.json()
    assert found["type"] == "Streetlight" and "powerState" in found
    assert found["@context"] == [ctx, CORE_CONTEXT_URL]


def test_ld_json_without_context_is_400(client: TestClient) -> None:
    response = client.post(f"{BASE}/entities", content=orjson.dumps(light()),
                           headers={"Content-Type": "application/ld+json"})
    problem(response, 400, "BadRequestData")


def test_ld_json_with_link_header_is_400(client: TestClient) -> None:
    body = {**light(), "@context": CORE_CONTEXT_URL}
    response = client.post(f"{BASE}/entities", content=orjson.dumps(body), headers={
        "Content-Type": "application/ld+json",
        "Link": f'<{CORE_CONTEXT_URL}>; {CTX_REL}; type="application/ld+json"'})
    problem(response, 400, "BadRequestData")


def test_unknown_remote_context_is_503_without_network(client: TestClient) -> None:
    response = client.get(f"{BASE}/entities", params={"type": "T"}, headers={
        "Link": f'<https://contexts.example.invalid/ctx.jsonld>; {CTX_REL}'})
    problem(response, 503, "LdContextNotAvailable")


def test_hosted_context_resolves_without_fetching(client: TestClient) -> None:
    doc = {"@context": {"Lamp": "https://example.org/city#Lamp",
                        "lux": "https://example.org/city#lux"}}
    added = client.post(f"{BASE}/jsonldContexts", json=doc)
    assert added.status_code == 201
    url = added.headers["location"]
    link = f'<{url}>; {CTX_REL}; type="application/ld+json"'
    create(client, {"id": "urn:ngsi-ld:Lamp:1", "type": "Lamp", "lux": 12}, Link=link)
    full = client.get(f"{BASE}/entities/urn:ngsi-ld:Lamp:1").json()
    assert full["type"] == "https://example.org/city#Lamp"
    short = client.get(f"{BASE}/entities/urn:ngsi-ld:Lamp:1", headers={"Link": link})
    assert short.json()["type"] == "Lamp" and short.json()["lux"]["value"] == 12
    assert url in short.headers["link"]
    local_id = url.rsplit("/", 1)[1]
    served = client.get(f"{BASE}/jsonldContexts/{local_id}")
    assert served.status_code == 200 and served.json() == doc
    assert url in client.get(f"{BASE}/jsonldContexts").json()
    assert client.delete(f"{BASE}/jsonldContexts/{local_id}").status_code == 204
    problem(client.get(f"{BASE}/jsonldContexts/{local_id}"), 404, "ResourceNotFound")


# -- updates -----------------------------------------------------------------------------------


def test_append_update_and_partial_update(client: TestClient) -> None:
    create(client, light())
    url = f"{BASE}/entities/urn:ngsi-ld:Streetlight:MI-0001"
    appended = client.post(f"{url}/attrs", json={"dimming": {"type": "Property", "value": 0.4}})
    assert appended.status_code == 204
    kept = client.post(f"{url}/attrs", params={"options": "noOverwrite"},
                       json={"dimming": {"type": "Property", "value": 0.9},
                             "faults": {"type": "Property", "value": 0}})
    assert kept.status_code == 207
    assert kept.json()["notUpdated"][0]["attributeName"] == "dimming"
    updated = client.patch(f"{url}/attrs", json={"dimming": {"type": "Property", "value": 0.5},
                                                  "unknownAttr": {"type": "Property",
                                                                  "value": 1}})
    assert updated.status_code == 207
    assert [n["attributeName"] for n in updated.json()["notUpdated"]] == ["unknownAttr"]
    partial = client.patch(f"{url}/attrs/powerState", json={"value": "off"})
    assert partial.status_code == 204
    body = client.get(url, params={"options": "keyValues"}).json()
    assert body["dimming"] == 0.5 and body["faults"] == 0 and body["powerState"] == "off"


def test_merge_patch_deletes_with_null_uri(client: TestClient) -> None:
    create(client, light())
    url = f"{BASE}/entities/urn:ngsi-ld:Streetlight:MI-0001"
    response = client.patch(url, json={"powerState": "off", "refGroup": "urn:ngsi-ld:null"})
    assert response.status_code == 204, response.text
    body = client.get(url, params={"options": "keyValues"}).json()
    assert body["powerState"] == "off" and "refGroup" not in body


def test_replace_entity_and_attribute(client: TestClient) -> None:
    create(client, light())
    url = f"{BASE}/entities/urn:ngsi-ld:Streetlight:MI-0001"
    replaced = client.put(url, json={"type": "Streetlight", "powerState": "off"})
    assert replaced.status_code == 204, replaced.text
    assert set(client.get(url).json()) == {"id", "type", "powerState"}
    attr = client.put(f"{url}/attrs/powerState", json={"type": "Property", "value": "on"})
    assert attr.status_code == 204
    assert client.get(url, params={"options": "keyValues"}).json()["powerState"] == "on"
    problem(client.put(f"{url}/attrs/missing", json={"type": "Property", "value": 1}),
            404, "ResourceNotFound")


def test_delete_entity_and_attribute(client: TestClient) -> None:
    create(client, light())
    url = f"{BASE}/entities/urn:ngsi-ld:Streetlight:MI-0001"
    assert client.delete(f"{url}/attrs/refGroup").status_code == 204
    assert "refGroup" not in client.get(url).json()
    problem(client.delete(f"{url}/attrs/refGroup"), 404, "ResourceNotFound")
    assert client.delete(url).status_code == 204
    problem(client.get(url), 404, "ResourceNotFound")
    problem(client.delete(url), 404, "ResourceNotFound")


def test_timestamps_are_kept_by_the_broker(client: TestClient) -> None:
    create(client, light())
    url = f"{BASE}/entities/urn:ngsi-ld:Streetlight:MI-0001"
    first = client.get(url, params={"options": "sysAttrs"}).json()
    client.patch(f"{url}/attrs/powerState", json={"value": "off"})
    second = client.get(url, params={"options": "sysAttrs"}).json()
    assert second["createdAt"] == first["createdAt"]
    assert second["modifiedAt"] >= first["modifiedAt"]
    assert second["powerState"]["createdAt"] == first["powerState"]["createdAt"]


# -- queries -----------------------------------------------------------------------------------


def test_query_needs_a_selector(client: TestClient) -> None:
    problem(client.get(f"{BASE}/entities"), 400, "BadRequestData")


@pytest.mark.parametrize(("params", "expected"), [
    ({"type": "Streetlight", "q": "illuminanceLevel>0.25"}, [3, 4, 5]),
    ({"type": "Streetlight", "q": "illuminanceLevel==0.2..0.3"}, [2, 3]),
    ({"type": "Streetlight", "q": 'powerState=="on";illuminanceLevel<0.2'}, [1]),
    ({"type": "Streetlight", "q": "illuminanceLevel<0.2|illuminanceLevel>0.45"}, [1, 5]),
    ({"type": "Streetlight", "q": "refGroup==urn:ngsi-ld:StreetlightGroup:G1"}, [1, 2, 3, 4, 5]),
    ({"type": "Streetlight", "q": "illuminanceLevel.unitCode==\"C62\""}, [1, 2, 3, 4, 5]),
    ({"type": "Streetlight", "q": "powerState.observedAt>2026-11-20T00:00:00Z"},
     [1, 2, 3, 4, 5]),
    ({"idPattern": ".*MI-000[24]$"}, [2, 4]),
    ({"id": "urn:ngsi-ld:Streetlight:MI-0003,urn:ngsi-ld:Streetlight:MI-0005"}, [3, 5]),
    ({"attrs": "illuminanceLevel", "q": "illuminanceLevel>=0.5"}, [5]),
    ({"type": "Streetlight", "georel": "near;maxDistance==100", "geometry": "Point",
      "coordinates": "[9.192,45.46]"}, [1, 2, 3]),
])
def test_query_selectors(client: TestClient, params: dict[str, str], expected: list[int]) -> None:
    for n in range(1, 6):
        create(client, light(n))
    response = client.get(f"{BASE}/entities", params=params)
    assert response.status_code == 200, response.text
    ids = [e["id"] for e in response.json()]
    assert ids == [f"urn:ngsi-ld:Streetlight:MI-{n:04d}" for n in expected]


def test_pagination_count_and_links(client: TestClient) -> None:
    batch = [light(n) for n in range(1, 26)]
    assert client.post(f"{BASE}/entityOperations/create", json=batch).status_code == 201
    first = client.get(f"{BASE}/entities", params={"type": "Streetlight", "limit": 10,
                                                    "count": "true"})
    assert first.headers["ngsild-results-count"] == "25"
    assert 'rel="next"' in first.headers["link"] and "offset=10" in first.headers["link"]
    last = client.get(f"{BASE}/entities", params={"type": "Streetlight", "limit": 10,
                                                   "offset": 20})
    assert len(last.json()) == 5 and 'rel="prev"' in last.headers["link"]
    assert 'rel="next"' not in last.headers["link"]
    only = client.get(f"{BASE}/entities", params={"type": "Streetlight", "limit": 0,
                                                   "count": "true"})
    assert only.json() == [] and only.headers["ngsild-results-count"] == "25"
    problem(client.get(f"{BASE}/entities", params={"type": "Streetlight", "limit": 100000}),
            403, "TooManyResults")


# -- batch -------------------------------------------------------------------------------------


def test_batch_create_reports_each_error_and_commits_the_rest(client: TestClient) -> None:
    create(client, light(1))
    bad = {"id": "not a uri", "type": "Streetlight"}
    response = client.post(f"{BASE}/entityOperations/create",
                           json=[light(1), light(2), bad, light(3)])
    assert response.status_code == 207
    body = response.json()
    assert body["success"] == ["urn:ngsi-ld:Streetlight:MI-0002",
                               "urn:ngsi-ld:Streetlight:MI-0003"]
    errors = {e["entityId"]: e["error"]["type"].rsplit("/", 1)[1] for e in body["errors"]}
    assert errors == {"urn:ngsi-ld:Streetlight:MI-0001": "AlreadyExists",
                      "not a uri": "BadRequestData"}
    assert client.get(f"{BASE}/entities/urn:ngsi-ld:Streetlight:MI-0003").status_code == 200


def test_batch_upsert_update_merge_delete(client: TestClient) -> None:
    upsert = client.post(f"{BASE}/entityOperations/upsert", json=[light(1), light(2)])
    assert upsert.status_code == 201 and len(upsert.json()) == 2
    again = client.post(f"{BASE}/entityOperations/upsert", params={"options": "update"},
                        json=[{"id": light(1)["id"], "type": "Streetlight", "dimming": 0.3}])
    assert again.status_code == 204
    kv = client.get(f"{BASE}/entities/{light(1)['id']}", params={"options": "keyValues"}).json()
    assert kv["dimming"] == 0.3 and kv["powerState"] == "on"
    replaced = client.post(f"{BASE}/entityOperations/upsert",
                           json=[{"id": light(1)["id"], "type": "Streetlight", "dimming": 0.1}])
    assert replaced.status_code == 204
    kv = client.get(f"{BASE}/entities/{light(1)['id']}", params={"options": "keyValues"}).json()
    assert set(kv) == {"id", "type", "dimming"}
    update = client.post(f"{BASE}/entityOperations/update",
                         json=[{"id": light(2)["id"], "dimming": 0.7},
                               {"id": "urn:ngsi-ld:Streetlight:missing", "dimming": 1}])
    assert update.status_code == 207
    merge = client.post(f"{BASE}/entityOperations/merge",
                        json=[{"id": light(2)["id"], "powerState": "off"}])
    assert merge.status_code == 204
    kv = client.get(f"{BASE}/entities/{light(2)['id']}", params={"options": "keyValues"}).json()
    assert kv["dimming"] == 0.7 and kv["powerState"] == "off"
    delete = client.post(f"{BASE}/entityOperations/delete",
                         json=[light(1)["id"], light(2)["id"]])
    assert delete.status_code == 204
    assert client.get(f"{BASE}/entities", params={"type": "Streetlight"}).json() == []


def test_batch_query_with_geo_and_q(client: TestClient) -> None:
    for n in range(1, 6):
        create(client, light(n))
    body = {"type": "Query", "entities": [{"type": "Streetlight"}], "q": "illuminanceLevel>0.1",
            "geoQ": {"georel": "near;maxDistance==100", "geometry": "Point",
                     "coordinates": [9.192, 45.46]}, "attrs": ["illuminanceLevel"]}
    response = client.post(f"{BASE}/entityOperations/query", json=body)
    assert response.status_code == 200, response.text
    assert [e["id"] for e in response.json()] == [light(2)["id"], light(3)["id"]]
    assert set(response.json()[0]) == {"id", "type", "illuminanceLevel"}


# -- discovery ---------------------------------------------------------------------------------


def test_types_and_attributes(client: TestClient) -> None:
    create(client, light())
    create(client, {"id": "urn:ngsi-ld:Sensor:1", "type": "Sensor", "temperature": 20})
    types = client.get(f"{BASE}/types").json()
    assert types["type"] == "EntityTypeList"
    assert sorted(types["typeList"]) == ["Sensor", "Streetlight"]
    details = client.get(f"{BASE}/types", params={"details": "true"}).json()
    light_info = next(t for t in details if t["typeName"] == "Streetlight")
    assert "powerState" in light_info["attributeNames"]
    info = client.get(f"{BASE}/types/Streetlight").json()
    assert info["entityCount"] == 1
    attrs = client.get(f"{BASE}/attributes").json()
    assert "temperature" in attrs["attributeList"]
    temperature = client.get(f"{BASE}/attributes/temperature").json()
    assert temperature["attributeCount"] == 1 and temperature["typeNames"] == ["Sensor"]
    problem(client.get(f"{BASE}/types/Nothing"), 404, "ResourceNotFound")


# -- tenants -----------------------------------------------------------------------------------


def test_tenants_are_isolated(client: TestClient) -> None:
    create(client, light(), **{"NGSILD-Tenant": "comune-a"})
    url = f"{BASE}/entities/{light()['id']}"
    assert client.get(url, headers={"NGSILD-Tenant": "comune-a"}).status_code == 200
    problem(client.get(url), 404, "ResourceNotFound")
    problem(client.get(url, headers={"NGSILD-Tenant": "comune-b"}), 404, "NonexistentTenant")
    problem(client.get(f"{BASE}/entities", params={"type": "Streetlight"},
                       headers={"NGSILD-Tenant": "comune-b"}), 404, "NonexistentTenant")
    problem(client.get(url, headers={"NGSILD-Tenant": "bad tenant!"}), 400, "BadRequestData")


# -- service -----------------------------------------------------------------------------------


def test_openapi_and_docs_are_served(client: TestClient) -> None:
    spec = client.get("/openapi.json")
    assert spec.status_code == 200 and spec.json()["openapi"].startswith("3.")
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
    assert client.get("/docs/static/swagger-ui-bundle.js").status_code == 200
