"""Conformance with the HTTP binding rules every NGSI-LD resource shares (ETSI GS CIM 009
clauses 5.5 and 6.3): resource paths, Content-Length, tenants, content negotiation, unknown
parameters, GeoJSON and remote @contexts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from starlette.testclient import TestClient

from sinergia.api.app import create_app
from sinergia.ngsild.model import CORE_CONTEXT_URL
from sinergia.settings import Settings
from support.problems import problem

BASE = "/ngsi-ld/v1"
CTX_REL = 'rel="http://www.w3.org/ns/json-ld#context"'
ID = "urn:ngsi-ld:Building:C-1"
BUILDING = {"id": ID, "type": "Building", "name": {"type": "Property", "value": "Pirelli"},
            "location": {"type": "GeoProperty",
                         "value": {"type": "Point", "coordinates": [9.2, 45.48]}}}
SUBSCRIPTION = {"type": "Subscription", "entities": [{"type": "Building"}],
                "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}}}


@pytest.fixture
def building(client: TestClient) -> TestClient:
    assert client.post(f"{BASE}/entities", json=BUILDING).status_code == 201
    return client


# -- resource paths --------------------------------------------------------------------------


def test_collections_answer_with_the_trailing_slash_of_the_standard(client: TestClient
                                                                     ) -> None:
    # ETSI GS CIM 009 6.1.3: the resources are named entities/, entities/{id}/attrs/, types/
    created = client.post(f"{BASE}/entities/", json=BUILDING)
    assert created.status_code == 201, created.text
    appended = client.post(f"{BASE}/entities/{ID}/attrs/",
                           json={"height": {"type": "Property", "value": 127}})
    assert appended.status_code == 204, appended.text
    updated = client.patch(f"{BASE}/entities/{ID}/attrs/",
                           json={"height": {"type": "Property", "value": 128}})
    assert updated.status_code == 204, updated.text
    found = client.get(f"{BASE}/entities/", params={"type": "Building"})
    assert [e["height"]["value"] for e in found.json()] == [128]
    assert client.get(f"{BASE}/types/").json()["typeList"] == ["Building"]
    subscribed = client.post(f"{BASE}/subscriptions/", json=SUBSCRIPTION)
    assert subscribed.status_code == 201, subscribed.text


def test_an_entity_id_ending_in_an_encoded_slash_keeps_it(client: TestClient) -> None:
    entity = {**BUILDING, "id": "http://example.org/building/"}
    assert client.post(f"{BASE}/entities", json=entity).status_code == 201
    got = client.get(f"{BASE}/entities/http%3A%2F%2Fexample.org%2Fbuilding%2F")
    assert got.status_code == 200 and got.json()["id"] == "http://example.org/building/"


# -- Content-Length --------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [("POST", "/entities"),
                                              ("PATCH", f"/entities/{ID}/attrs"),
                                              ("PUT", f"/entities/{ID}")])
def test_a_body_without_content_length_is_a_bare_411(client: TestClient, method: str,
                                                     path: str) -> None:
    # ETSI GS CIM 009 6.3.4: POST, PATCH and PUT without Content-Length: 411, no payload body,
    # decided before anything else (even a tenant that does not exist)
    chunks = iter([b'{"id": "urn:ngsi-ld:Building:C-2", "type": "Building"}'])
    response = client.request(method, BASE + path, content=chunks,
                              headers={"Content-Type": "application/json",
                                       "NGSILD-Tenant": "nowhere"})
    assert response.status_code == 411 and response.content == b""
    assert client.get(f"{BASE}/entities", params={"type": "Building"}).json() == []


def test_a_get_is_not_refused_for_lacking_content_length(client: TestClient) -> None:
    assert client.get(f"{BASE}/entities", params={"type": "Building"}).status_code == 200


# -- tenants ---------------------------------------------------------------------------------


def test_the_tenant_header_is_echoed_on_answers_and_errors(client: TestClient) -> None:
    # ETSI GS CIM 009 6.3.14 and 5.5.10
    tenant = {"NGSILD-Tenant": "comune_a"}
    missing = client.get(f"{BASE}/entities", params={"type": "Building"}, headers=tenant)
    problem(missing, 404, "NonexistentTenant")
    assert missing.headers["NGSILD-Tenant"] == "comune_a"
    created = client.post(f"{BASE}/entities", json=BUILDING, headers=tenant)
    assert created.status_code == 201 and created.headers["NGSILD-Tenant"] == "comune_a"
    found = client.get(f"{BASE}/entities/{ID}", headers=tenant)
    assert found.status_code == 200 and found.headers["NGSILD-Tenant"] == "comune_a"
    # the default tenant neither sees the entity nor gets a tenant header
    default = client.get(f"{BASE}/entities/{ID}")
    problem(default, 404, "ResourceNotFound")
    assert "NGSILD-Tenant" not in default.headers


# -- content negotiation ---------------------------------------------------------------------


@pytest.mark.parametrize(("accept", "expected"), [
    ("application/ld+json, application/json", "application/json"),
    ("application/geo+json, application/json", "application/json"),
    ("application/json;q=0.1, application/ld+json;q=0.9", "application/ld+json"),
    ("application/ld+json", "application/ld+json"),
    ("*/*", "application/json"),
    ("application/*", "application/json"),
    ("application/json;q=0, */*", "application/ld+json"),
    ("application/json;q=0, application/ld+json", "application/ld+json"),
    ("*/*;q=0.9, application/ld+json;q=0.8", "application/json"),
    ("application/ld+json;q=notanumber", "application/ld+json"),
    ("application/geo+json;q=0.9, application/json;q=0.5", "application/geo+json"),
])
def test_accept_picks_by_weight_then_by_the_standard_list_order(
        building: TestClient, accept: str, expected: str) -> None:
    # ETSI GS CIM 009 6.3.4 (order json, ld+json, geo+json) with RFC 9110 5.3.2 weights
    response = building.get(f"{BASE}/entities/{ID}", headers={"Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(expected), accept


@pytest.mark.parametrize(("accept", "expected"), [
    ("application/geo+json, application/json", "application/json"),
    ("application/geo+json;q=0.9, application/ld+json;q=0.1", "application/ld+json"),
])
def test_geojson_is_skipped_where_it_is_not_offered(client: TestClient, accept: str,
                                                    expected: str) -> None:
    # ETSI GS CIM 009 6.3.4 / 6.3.15: only Retrieve and Query Entities offer GeoJSON
    location = client.post(f"{BASE}/subscriptions", json=SUBSCRIPTION).headers["location"]
    response = client.get(location, headers={"Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(expected)
    problem(client.get(location, headers={"Accept": "application/geo+json"}), 406,
            "NotAcceptable")


def test_every_patch_accepts_merge_patch_json(building: TestClient) -> None:
    # ETSI GS CIM 009 6.3.4: PATCH bodies may be application/merge-patch+json
    merge = {"Content-Type": "application/merge-patch+json"}
    partial = building.patch(f"{BASE}/entities/{ID}/attrs/name", json={"value": "Galfa"},
                             headers=merge)
    assert partial.status_code == 204, partial.text
    update = building.patch(f"{BASE}/entities/{ID}/attrs",
                            json={"name": {"type": "Property", "value": "Diamante"}},
                            headers=merge)
    assert update.status_code == 204, update.text
    location = building.post(f"{BASE}/subscriptions", json=SUBSCRIPTION).headers["location"]
    subscription = building.patch(location, json={"description": "towers"}, headers=merge)
    assert subscription.status_code == 204, subscription.text
    assert building.get(f"{BASE}/entities/{ID}").json()["name"]["value"] == "Diamante"


# -- unknown parameters ----------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/entities", BUILDING),
    ("GET", "/entities?type=Building", None),
    ("GET", f"/entities/{ID}", None),
    ("POST", "/temporal/entities", BUILDING),
    ("GET", "/temporal/entities?type=Building&timerel=after&timeAt=2020-01-01T00:00:00Z",
     None),
    ("GET", "/types", None),
    ("POST", "/subscriptions", SUBSCRIPTION),
    ("GET", "/subscriptions", None),
    ("POST", "/entityOperations/create", [BUILDING]),
])
def test_an_unknown_parameter_is_invalid_request(building: TestClient, method: str, path: str,
                                                 body: Any) -> None:
    # ETSI GS CIM 009 6.3: a URI parameter the operation does not define is InvalidRequest
    joiner = "&" if "?" in path else "?"
    response = building.request(method, f"{BASE}{path}{joiner}invalidParams=invalidValue",
                                json=body)
    problem(response, 400, "InvalidRequest")


def test_parameters_of_the_standard_we_do_not_act_on_are_accepted(building: TestClient
                                                                  ) -> None:
    # ETSI GS CIM 009 6.4.3.2: local, via and others belong to the query operation
    response = building.get(f"{BASE}/entities", params={"type": "Building", "local": "true"})
    assert response.status_code == 200 and len(response.json()) == 1


# -- GeoJSON ---------------------------------------------------------------------------------


def test_geojson_carries_the_context_in_the_body_unless_prefer_body_json(
        building: TestClient) -> None:
    # ETSI GS CIM 009 6.3.6
    geo = {"Accept": "application/geo+json"}
    for path, params in ((f"/entities/{ID}", {}), ("/entities", {"type": "Building"})):
        embedded = building.get(BASE + path, params=params, headers=geo)
        assert embedded.headers["content-type"].startswith("application/geo+json")
        assert embedded.json()["@context"] == CORE_CONTEXT_URL
        linked = building.get(BASE + path, params=params, headers={**geo,
                                                                   "Prefer": "body=json"})
        assert "@context" not in linked.json()
        assert CTX_REL in linked.headers["link"] and CORE_CONTEXT_URL in linked.headers["link"]


def test_a_204_has_no_content_length(building: TestClient) -> None:
    # ETSI GS CIM 009 6.3.6
    response = building.delete(f"{BASE}/entities/{ID}")
    assert response.status_code == 204 and "content-length" not in response.headers


# -- remote @contexts ------------------------------------------------------------------------


class _ContextFiles(BaseHTTPRequestHandler):
    documents = {"/no-member.jsonld": b'{"note": "no context member here"}',
                 "/broken.jsonld": b"this is { not json",
                 "/good.jsonld": b'{"@context": {"Tower": "https://example.org/Tower"}}'}

    def do_GET(self) -> None:
        body = self.documents.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/ld+json")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def context_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ContextFiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def remote_client(settings: Settings) -> Iterator[TestClient]:
    remote = settings.replace(allow_remote_contexts=True, context_fetch_timeout=2.0)
    with TestClient(create_app(remote), base_url="http://testserver") as test_client:
        yield test_client


def test_an_unreachable_remote_context_is_ld_context_not_available(
        remote_client: TestClient, context_server: str) -> None:
    # ETSI GS CIM 009 5.5.6: 503 LdContextNotAvailable, and nothing is created
    ld = {"Content-Type": "application/ld+json"}
    for url in (f"{context_server}/missing.jsonld", "http://127.0.0.1:9/ctx.jsonld"):
        response = remote_client.post(f"{BASE}/entities", json={**BUILDING, "@context": url},
                                      headers=ld)
        problem(response, 503, "LdContextNotAvailable")
    problem(remote_client.get(f"{BASE}/entities/{ID}"), 404, "ResourceNotFound")


@pytest.mark.parametrize("document", ["/no-member.jsonld", "/broken.jsonld"])
def test_a_retrieved_but_invalid_remote_context_is_bad_request_data(
        remote_client: TestClient, context_server: str, document: str) -> None:
    # ETSI GS CIM 009 5.5.6: an invalid remote @context is BadRequestData
    response = remote_client.post(f"{BASE}/entities",
                                  json={**BUILDING, "@context": context_server + document},
                                  headers={"Content-Type": "application/ld+json"})
    problem(response, 400, "BadRequestData")
    problem(remote_client.get(f"{BASE}/entities/{ID}"), 404, "ResourceNotFound")


def test_a_reachable_remote_context_gives_the_terms_their_meaning(
        remote_client: TestClient, context_server: str) -> None:
    url = f"{context_server}/good.jsonld"
    tower = {"id": ID, "type": "Tower", "@context": url}
    created = remote_client.post(f"{BASE}/entities", json=tower,
                                 headers={"Content-Type": "application/ld+json"})
    assert created.status_code == 201, created.text
    expanded = remote_client.get(f"{BASE}/entities/{ID}").json()
    assert expanded["type"] == "https://example.org/Tower"
