"""Conformance of the entity and batch operations with ETSI GS CIM 009 clauses 4.5, 4.17,
4.21, 5.6 and 5.7: selectors, projections, attribute kinds and per-entity batch outcomes."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from sinergia.ngsild.model import CORE_CONTEXT_URL
from support.problems import problem

BASE = "/ngsi-ld/v1"
LD = {"Content-Type": "application/ld+json"}
ID = "urn:ngsi-ld:Building:E-1"
BUILDING = {"id": ID, "type": "Building", "scope": "/Milano",
            "name": {"type": "Property", "value": "Pirelli"},
            "street": {"type": "Property", "value": "Via Fabio Filzi"},
            "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Company:Lombardia"},
            "location": {"type": "GeoProperty",
                         "value": {"type": "Point", "coordinates": [9.2, 45.48]}}}


@pytest.fixture
def building(client: TestClient) -> TestClient:
    assert client.post(f"{BASE}/entities", json=BUILDING).status_code == 201
    return client


# -- retrieve --------------------------------------------------------------------------------


def test_retrieve_with_a_type_the_entity_lacks_is_not_found(building: TestClient) -> None:
    # ETSI GS CIM 009 5.7.1.4 and 4.17: the type selector narrows the target
    problem(building.get(f"{BASE}/entities/{ID}", params={"type": "Vehicle"}), 404,
            "ResourceNotFound")
    found = building.get(f"{BASE}/entities/{ID}", params={"type": "Vehicle,Building"})
    assert found.status_code == 200 and found.json()["id"] == ID


def test_geometry_property_needs_a_geojson_answer(building: TestClient) -> None:
    # ETSI GS CIM 009 5.7.1.4 / 5.7.2.4
    for path, params in ((f"/entities/{ID}", {}), ("/entities", {"type": "Building"})):
        refused = building.get(BASE + path, params={**params, "geometryProperty": "location"},
                               headers={"Accept": "application/ld+json"})
        problem(refused, 400, "BadRequestData")
        served = building.get(BASE + path, params={**params, "geometryProperty": "location"},
                              headers={"Accept": "application/geo+json"})
        assert served.status_code == 200, served.text


def test_a_linked_entity_projection_needs_join(building: TestClient) -> None:
    # ETSI GS CIM 009 5.7.1.4 and 4.21: {…} terms project inside joined entities only
    for params in ({"pick": "owner{name}"}, {"omit": "owner{name}"}):
        problem(building.get(f"{BASE}/entities/{ID}", params=params), 400, "BadRequestData")
        problem(building.get(f"{BASE}/entities", params={"type": "Building", **params}), 400,
                "BadRequestData")
    kept = building.get(f"{BASE}/entities/{ID}",
                        params={"pick": "id,owner{name}", "join": "flat"}).json()
    assert set(kept) == {"id", "owner"}


def test_a_pipe_separates_projection_alternatives(building: TestClient) -> None:
    # ETSI GS CIM 009 4.21: orOp = "|" / ","
    picked = building.get(f"{BASE}/entities/{ID}", params={"pick": "id,name|street"}).json()
    assert set(picked) == {"id", "name", "street"}


# -- partial attribute update ----------------------------------------------------------------


def test_partial_update_respects_the_type_selector(building: TestClient) -> None:
    # ETSI GS CIM 009 5.6.4.4 and 4.17
    url = f"{BASE}/entities/{ID}/attrs/name"
    problem(building.patch(url, params={"type": "Vehicle"}, json={"value": "Galfa"}), 404,
            "ResourceNotFound")
    assert building.get(f"{BASE}/entities/{ID}").json()["name"]["value"] == "Pirelli"
    done = building.patch(url, params={"type": "Building"}, json={"value": "Galfa"})
    assert done.status_code == 204, done.text
    assert building.get(f"{BASE}/entities/{ID}").json()["name"]["value"] == "Galfa"


def test_scope_cannot_be_partially_updated(building: TestClient) -> None:
    # ETSI GS CIM 009 5.6.4.4
    problem(building.patch(f"{BASE}/entities/{ID}/attrs/scope", json={"value": "/Roma"}), 400,
            "BadRequestData")
    assert building.get(f"{BASE}/entities/{ID}").json()["scope"] == "/Milano"


# -- attribute kinds -------------------------------------------------------------------------


@pytest.mark.parametrize("attribute", [
    {"type": "JsonProperty", "json": {"a": 1}, "unitCode": "MTR"},
    {"type": "JsonProperty", "json": {"a": 1}, "value": 1},
    {"type": "JsonProperty", "json": 5},
    {"type": "Property", "value": "urn:ngsi-ld:null"},
    {"type": "Relationship", "object": "urn:ngsi-ld:null"},
    {"type": "Property", "value": 1, "sub": {"type": "Property", "value": "urn:ngsi-ld:null"}},
])
def test_invalid_attributes_are_refused_on_create(client: TestClient,
                                                  attribute: dict[str, Any]) -> None:
    # ETSI GS CIM 009 4.5.24.2 (JsonProperty is unitless, json is not a value, no scalars)
    # and 5.2.1 (the NGSI-LD Null only in partial updates and merges)
    entity = {"id": ID, "type": "Building", "probe": attribute}
    problem(client.post(f"{BASE}/entities", json=entity), 400, "BadRequestData")
    problem(client.get(f"{BASE}/entities/{ID}"), 404, "ResourceNotFound")


def test_concise_json_property_keeps_its_json_verbatim(client: TestClient) -> None:
    # ETSI GS CIM 009 4.5.24.3: the type is inferred from json, whose keys are not expanded
    raw = {"speed": 3, "type": "raw", "name": "x"}
    entity = {"id": ID, "type": "Building", "tickets": {"json": raw},
              "@context": [CORE_CONTEXT_URL]}
    assert client.post(f"{BASE}/entities", json=entity, headers=LD).status_code == 201
    tickets = client.get(f"{BASE}/entities/{ID}").json()["tickets"]
    assert tickets == {"type": "JsonProperty", "json": raw}


# -- batches ---------------------------------------------------------------------------------


def test_each_ld_json_batch_entity_brings_its_own_context(client: TestClient) -> None:
    # ETSI GS CIM 009 6.3.5: with application/ld+json the @context is in each entity
    city = {"@context": {"Tower": "https://example.org/city/Tower"}}
    entities = [{"id": "urn:ngsi-ld:Building:B-1", "type": "Building",
                 "@context": CORE_CONTEXT_URL},
                {"id": "urn:ngsi-ld:Tower:B-2", "type": "Tower",
                 "@context": [city["@context"], CORE_CONTEXT_URL]}]
    created = client.post(f"{BASE}/entityOperations/create", json=entities, headers=LD)
    assert created.status_code == 201, created.text
    assert created.json() == ["urn:ngsi-ld:Building:B-1", "urn:ngsi-ld:Tower:B-2"]
    tower = client.get(f"{BASE}/entities/urn:ngsi-ld:Tower:B-2").json()
    assert tower["type"] == "https://example.org/city/Tower"


def test_an_unavailable_context_fails_its_batch_entity_alone(client: TestClient) -> None:
    # ETSI GS CIM 009 5.6.7.4 and 5.5.6: a 207 whose errors carry LdContextNotAvailable
    unreachable = "https://contexts.invalid/none.jsonld"
    entities = [{"id": "urn:ngsi-ld:Building:B-1", "type": "Building", "@context": unreachable},
                {"id": "urn:ngsi-ld:Building:B-2", "type": "Building",
                 "@context": CORE_CONTEXT_URL},
                {"id": "urn:ngsi-ld:Building:B-3", "type": "Building"}]
    response = client.post(f"{BASE}/entityOperations/create", json=entities, headers=LD)
    assert response.status_code == 207, response.text
    body = response.json()
    assert body["success"] == ["urn:ngsi-ld:Building:B-2"]
    errors = {e["entityId"]: e["error"] for e in body["errors"]}
    assert errors["urn:ngsi-ld:Building:B-1"]["type"].endswith("/LdContextNotAvailable")
    assert errors["urn:ngsi-ld:Building:B-1"]["title"]
    assert errors["urn:ngsi-ld:Building:B-3"]["type"].endswith("/BadRequestData")


def test_batch_delete_sent_as_ld_json_takes_plain_ids(building: TestClient) -> None:
    # ETSI GS CIM 009 5.6.10: the body is an array of ids, which carry no @context
    response = building.post(f"{BASE}/entityOperations/delete",
                             json=[ID, "urn:ngsi-ld:Building:none"], headers=LD)
    assert response.status_code == 207, response.text
    body = response.json()
    assert body["success"] == [ID]
    assert [e["entityId"] for e in body["errors"]] == ["urn:ngsi-ld:Building:none"]
    assert body["errors"][0]["error"]["type"].endswith("/ResourceNotFound")
