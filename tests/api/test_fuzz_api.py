"""Property-based fuzzing of the NGSI-LD HTTP API: arbitrary JSON bodies, bytes, path
segments and parameter strings thrown at the main endpoints never get a 5xx; every 4xx is
ProblemDetails; and a refused write changes nothing.

Strategies mix pure noise with NGSI-LD-shaped input (entity-like objects, q/type/scope/geo
tokens) so that the examples get past the first checks and reach the parsers and the store."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from sinergia.ngsild.model import CORE_CONTEXT_URL

BASE = "/ngsi-ld/v1"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
ID = "urn:ngsi-ld:Streetlight:MI-0001"
FRESH = "never-written"
FUZZ = settings(max_examples=80, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

LIGHT = {
    "id": ID, "type": "Streetlight",
    "powerState": {"type": "Property", "value": "on", "observedAt": "2026-11-21T18:00:00Z"},
    "refGroup": {"type": "Relationship", "object": "urn:ngsi-ld:StreetlightGroup:G1"},
    "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [9.19, 45.46]}},
}

# -- strategies --------------------------------------------------------------------------------

WORDS = ["", " ", "id", "type", "value", "object", "Property", "Relationship", "GeoProperty",
         "LanguageProperty", "VocabProperty", "JsonProperty", "ListProperty", "ListRelationship",
         "languageMap", "vocab", "json", "valueList", "objectList", "datasetId", "observedAt",
         "unitCode", "objectType", "scope", "location", "powerState", "Streetlight", "Point",
         "Polygon", "coordinates", "geometries", "@context", "@id", "@type", "urn:ngsi-ld:null",
         ID, "urn:ngsi-ld:T:1", "/Milano/Centro", "2026-11-21T18:00:00Z", "C62",
         "' OR 1=1 --", '"; DROP TABLE entities; --', "\x00", "é", "\u202e", "🚲"]
words = st.sampled_from(WORDS)
text = st.text(max_size=24)
strings = words | text
uris = strings | text.map(lambda t: "urn:ngsi-ld:Streetlight:" + t)  # many get past is_uri
leaves = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
          | st.floats(allow_nan=False, allow_infinity=False) | strings)
json_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(strings, inner, max_size=4),
    max_leaves=16)
positions = st.lists(st.floats(-200, 200, allow_nan=False) | st.integers(-200, 200)
                     | strings, max_size=4)
geometries = st.fixed_dictionaries(
    {"type": st.sampled_from(["Point", "LineString", "Polygon", "MultiPoint", "Circle"])},
    optional={"coordinates": positions | st.lists(positions, max_size=5)
              | st.lists(st.lists(positions, max_size=5), max_size=2)})
attributes = json_values | geometries | st.fixed_dictionaries(
    {"type": words},
    optional={"value": json_values | geometries, "object": strings | st.lists(strings),
              "observedAt": strings, "datasetId": strings, "languageMap": json_values,
              "unitCode": leaves, "sub": json_values})
entities = st.fixed_dictionaries(
    {}, optional={"id": uris | leaves, "type": strings | st.lists(strings, max_size=3),
                  "scope": strings | st.lists(strings, max_size=2)}
).flatmap(lambda head: st.dictionaries(strings, attributes, max_size=4).map(
    lambda attrs: {**attrs, **head}))
bodies = (entities | st.lists(entities | json_values, max_size=4) | json_values)

BODY_ENDPOINTS = [
    ("POST", "/entities"), ("PUT", f"/entities/{ID}"), ("PATCH", f"/entities/{ID}"),
    ("POST", f"/entities/{ID}/attrs"), ("PATCH", f"/entities/{ID}/attrs"),
    ("PATCH", f"/entities/{ID}/attrs/powerState"), ("PUT", f"/entities/{ID}/attrs/powerState"),
    *[("POST", f"/entityOperations/{op}")
      for op in ("create", "upsert", "update", "merge", "delete", "query")],
    ("POST", "/jsonldContexts"),
]
tenants = st.sampled_from(["", "comune-a", FRESH]) | st.text(
    st.characters(min_codepoint=32, max_codepoint=126), max_size=70)


def tokens(*choices: str) -> st.SearchStrategy[str]:
    """Strings assembled from grammar tokens and noise: they reach deep into a parser."""
    return st.lists(st.sampled_from(choices) | text, max_size=10).map("".join)


PARAMS: dict[str, st.SearchStrategy[str]] = {
    "q": tokens("powerState", "refGroup", "location", ".", "observedAt", "[", "]", "==", "!=",
                ">", ">=", "<", "<=", "~=", "!~=", ";", "|", "(", ")", '"on"', "'", "1", "0.5",
                "-", "..", ",", "2026-11-21T18:00:00Z", "urn:ngsi-ld:X:1", "true", " "),
    "type": tokens("Streetlight", "Sensor", ",", ";", "|", "(", ")", "https://x.org/T", " "),
    "scopeQ": tokens("/", "Milano", "Centro", "+", "#", ",", ";", "|", "(", ")"),
    "georel": tokens("near", "within", "intersects", "contains", ";", "maxDistance",
                     "minDistance", "==", "100", "-1", "1e308"),
    "geometry": tokens("Point", "Polygon", "LineString", "MultiPolygon", "Geometry"),
    "coordinates": json_values.map(lambda v: orjson.dumps(v).decode()) | tokens(
        "[", "]", ",", "9.19", "45.46", "123", "-200", "0"),
    "geoproperty": strings, "attrs": strings, "pick": strings, "omit": strings,
    "id": tokens(ID, ",", "urn:x:", " ", "'"), "idPattern": strings | tokens(
        "(", ")", "*", "+", "?", ".", "[", "]", "\\", "^", "$", "|", "{", "}"),
    "limit": strings | st.integers().map(str), "offset": strings | st.integers().map(str),
    "options": tokens("keyValues", "sysAttrs", "concise", ",", "bogus"),
    "format": strings, "lang": strings, "datasetId": strings, "count": strings,
    "geometryProperty": strings, "details": strings, "kind": strings,
}
params = st.dictionaries(st.sampled_from(sorted(PARAMS)), st.just(""), max_size=5).flatmap(
    lambda keys: st.fixed_dictionaries({k: PARAMS[k] for k in keys}))


# -- checks ------------------------------------------------------------------------------------


def check(response: Any) -> None:
    """No 5xx (but the one for an @context that cannot be fetched); ProblemDetails on 4xx;
    per-entity ProblemDetails in a 207."""
    status = response.status_code
    if status >= 400:
        assert response.headers["content-type"].split(";")[0] == "application/json"
        body = response.json()
        assert body["type"].startswith(ERRORS), body
        assert isinstance(body["title"], str) and isinstance(body["detail"], str), body
        assert status < 500 or body["type"] == ERRORS + "LdContextNotAvailable", body
    elif status == 207 and "errors" in response.json():  # batch; attrs 207s name reasons
        for entry in response.json()["errors"]:
            error = entry["error"]
            assert error["type"].startswith(ERRORS) and error["title"] and error["detail"]


def snapshot(client: TestClient) -> Any:
    every = client.get(f"{BASE}/entities", params={"idPattern": ".*", "options": "sysAttrs",
                                                   "limit": 1000})
    fresh = client.get(f"{BASE}/types", headers={"NGSILD-Tenant": FRESH})
    return every.json(), fresh.status_code


def seeded(client: TestClient) -> TestClient:
    if client.get(f"{BASE}/entities/{ID}").status_code == 404:
        assert client.post(f"{BASE}/entities", json=LIGHT).status_code == 201
    return client


# -- properties ----------------------------------------------------------------------------------


@FUZZ
@given(endpoint=st.sampled_from(BODY_ENDPOINTS), body=bodies, tenant=tenants,
       ld=st.sampled_from([None, CORE_CONTEXT_URL, {"x": "https://example.org/x"}, "x:y"]))
def test_any_json_body_on_any_write_endpoint(client: TestClient, endpoint: tuple[str, str],
                                             body: Any, tenant: str, ld: Any) -> None:
    client = seeded(client)
    headers = {"Content-Type": "application/json"}
    if tenant:
        headers["NGSILD-Tenant"] = tenant
    if ld is not None and isinstance(body, dict):
        body = {**body, "@context": ld}
        headers["Content-Type"] = "application/ld+json"
    before = snapshot(client)
    response = client.request(endpoint[0], BASE + endpoint[1], content=orjson.dumps(body),
                              headers=headers)
    check(response)
    if response.status_code >= 400:
        assert snapshot(client) == before


@FUZZ
@given(endpoint=st.sampled_from(BODY_ENDPOINTS), raw=st.binary(max_size=64)
       | bodies.map(lambda b: orjson.dumps(b)[: len(orjson.dumps(b)) // 2]))
def test_any_bytes_as_a_body(client: TestClient, endpoint: tuple[str, str], raw: bytes) -> None:
    client = seeded(client)
    before = snapshot(client)
    response = client.request(endpoint[0], BASE + endpoint[1], content=raw,
                              headers={"Content-Type": "application/json"})
    check(response)
    if response.status_code >= 400:
        assert snapshot(client) == before


@FUZZ
@given(query=params, path=st.sampled_from(["/entities", f"/entities/{ID}", "/types",
                                           "/attributes", "/jsonldContexts",
                                           "/types/Streetlight", "/attributes/powerState"]),
       accept=st.sampled_from([None, "application/json", "application/ld+json",
                               "application/geo+json", "*/*", "text/html"]))
def test_any_query_parameters_on_reads(client: TestClient, query: dict[str, str], path: str,
                                       accept: str | None) -> None:
    client = seeded(client)
    headers = {"Accept": accept} if accept else {}
    check(client.get(BASE + path, params=query, headers=headers))
    body: dict[str, Any] = {k: v for k, v in query.items() if k in ("q", "scopeQ", "lang")}
    geo_q = {k: query[k] for k in ("georel", "geometry", "coordinates") if k in query}
    if geo_q:
        body["geoQ"] = geo_q
    if "type" in query:
        body["entities"] = [{"type": query["type"]}]
    check(client.post(f"{BASE}/entityOperations/query", params=query, headers=headers,
                      json={"type": "Query", **body}))


@FUZZ
@given(entity_id=uris, attr=strings, method=st.sampled_from(["GET", "PUT", "PATCH",
                                                               "DELETE", "POST"]),
       body=attributes)
def test_any_path_segments(client: TestClient, entity_id: str, attr: str, method: str,
                           body: Any) -> None:
    client = seeded(client)
    before = snapshot(client)
    paths = [f"/entities/{quote(entity_id, safe='')}",
             f"/entities/{quote(entity_id, safe='')}/attrs",
             f"/entities/{ID}/attrs/{quote(attr, safe='')}",
             f"/types/{quote(attr, safe='')}", f"/attributes/{quote(attr, safe='')}",
             f"/jsonldContexts/{quote(attr, safe='')}"]
    refused = True
    for path in paths:
        content = None if method in ("GET", "DELETE") else orjson.dumps(body)
        response = client.request(method, BASE + path, content=content,
                                  headers={"Content-Type": "application/json"})
        check(response)
        refused = refused and response.status_code >= 400
    if refused:
        assert snapshot(client) == before
