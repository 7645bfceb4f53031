"""Bad input, end to end: every kind of malformed, invalid, oversized or hostile request gets
the right NGSI-LD ProblemDetails (never a 500) and changes nothing in the store; a batch
reports each entity's error and commits the rest.

Cases are grouped in tables and looped over inside a test (the message names the case) so
the seeded store is built once per group rather than once per case."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from starlette.testclient import TestClient

from sinergia.api.app import create_app
from sinergia.api.http import MAX_JSON_DEPTH
from sinergia.ngsild.model import CORE_CONTEXT_URL
from sinergia.settings import Settings

BASE = "/ngsi-ld/v1"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
ID = "urn:ngsi-ld:Streetlight:MI-0001"
OTHER = "urn:ngsi-ld:Streetlight:MI-0002"
NEW = "urn:ngsi-ld:Streetlight:NEW"
MISSING = "urn:ngsi-ld:Streetlight:missing"
TENANT = "comune-a"
FRESH = "never-written"  # a tenant that no failed request may create
SQL = ("' OR 1=1 --", '"; DROP TABLE entities; --')
JSON_CT = {"Content-Type": "application/json"}


def light(n: int, **extra: Any) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "id": f"urn:ngsi-ld:Streetlight:MI-{n:04d}", "type": "Streetlight",
        "powerState": {"type": "Property", "value": "on", "observedAt": "2026-11-21T18:00:00Z"},
        "illuminanceLevel": {"type": "Property", "value": n / 10, "unitCode": "C62"},
        "refGroup": {"type": "Relationship", "object": "urn:ngsi-ld:StreetlightGroup:G1"},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [9.19 + n / 1000, 45.46]}},
    }
    entity.update(extra)
    return entity


# -- helpers: the ProblemDetails shape and "nothing changed" ---------------------------------------


def problem(response: Any, status: int, name: str | set[str], case: object = "") -> None:
    """Assert an NGSI-LD ProblemDetails response of this status and error type (or one of
    these types)."""
    where = f"{case}: {response.text[:300]}"
    assert response.status_code == status, where
    assert response.headers["content-type"].split(";")[0] == "application/json", where
    body = response.json()
    names = {name} if isinstance(name, str) else name
    assert body["type"] in {ERRORS + n for n in names}, where
    assert isinstance(body["title"], str) and body["title"], where
    assert isinstance(body["detail"], str) and body["detail"], where


def snapshot(client: TestClient) -> dict[str, Any]:
    """Everything a client can see of the store: every entity of every tenant with its system
    timestamps (so even a rewrite with equal values shows), the hosted @contexts, and that the
    never-written tenant still does not exist."""
    state: dict[str, Any] = {}
    for tenant in ("", TENANT, FRESH):
        headers = {"NGSILD-Tenant": tenant} if tenant else {}
        entities = client.get(f"{BASE}/entities", headers=headers, params={
            "idPattern": ".*", "options": "sysAttrs", "limit": 1000})
        contexts = client.get(f"{BASE}/jsonldContexts", headers=headers,
                              params={"kind": "hosted", "details": "true"})
        state[tenant] = (entities.status_code, entities.json(), contexts.json())
    assert state[FRESH][0] == 404
    return state


@contextmanager
def unchanged(client: TestClient) -> Iterator[None]:
    before = snapshot(client)
    yield
    assert snapshot(client) == before


@pytest.fixture
def city(client: TestClient) -> TestClient:
    """Two streetlights, a sensor in another tenant and a hosted @context."""
    for entity in (light(1), light(2)):
        assert client.post(f"{BASE}/entities", json=entity).status_code == 201
    sensor = {"id": "urn:ngsi-ld:Sensor:1", "type": "Sensor", "temperature": 20.5}
    assert client.post(f"{BASE}/entities", json=sensor,
                       headers={"NGSILD-Tenant": TENANT}).status_code == 201
    hosted = client.post(f"{BASE}/jsonldContexts",
                         json={"@context": {"Lamp": "https://example.org/city#Lamp"}})
    assert hosted.status_code == 201
    return client


def send(client: TestClient, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None, params: dict[str, str] | None = None) -> Any:
    return client.request(method, BASE + path, content=body,
                          headers=JSON_CT if headers is None else headers, params=params)


def encoded(body: Any) -> bytes | None:
    return None if body is None else orjson.dumps(body)


# Every endpoint that reads a JSON body, with a body it would accept.
OBJECT_BODY = [
    ("POST", "/entities", light(9)),
    ("PUT", f"/entities/{ID}", {"type": "Streetlight", "powerState": "off"}),
    ("PATCH", f"/entities/{ID}", {"powerState": "off"}),
    ("POST", f"/entities/{ID}/attrs", {"dimming": 0.5}),
    ("PATCH", f"/entities/{ID}/attrs", {"powerState": "off"}),
    ("PATCH", f"/entities/{ID}/attrs/powerState", {"value": "off"}),
    ("PUT", f"/entities/{ID}/attrs/powerState", {"type": "Property", "value": "off"}),
    ("POST", "/entityOperations/query", {"type": "Query", "entities": [{"type": "Streetlight"}]}),
    ("POST", "/jsonldContexts", {"@context": {"Bin": "https://example.org/city#Bin"}}),
]
ARRAY_BODY = [
    ("POST", "/entityOperations/create", [light(9)]),
    ("POST", "/entityOperations/upsert", [light(9)]),
    ("POST", "/entityOperations/update", [{"id": ID, "powerState": "off"}]),
    ("POST", "/entityOperations/merge", [{"id": ID, "powerState": "off"}]),
    ("POST", "/entityOperations/delete", [ID]),
]
BODY_ENDPOINTS = OBJECT_BODY + ARRAY_BODY


def endpoint_id(endpoint: tuple[str, str, Any]) -> str:
    return f"{endpoint[0]} {endpoint[1].replace(ID, '{id}')}"


# -- malformed and mis-shaped bodies ---------------------------------------------------------------


MALFORMED = [b"{", b'{"id": }', b"[1, 2", b"{'single': 'quotes'}", b'{"a": 1}{"b": 2}', b"NaN",
             b'{"a": "\\ud800"}', b"\xff\xfe\x00{", b"", b"   \n"]


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=endpoint_id)
def test_malformed_json_is_400_invalid_request(city: TestClient,
                                               endpoint: tuple[str, str, Any]) -> None:
    method, path, _ = endpoint
    with unchanged(city):
        for raw in MALFORMED:
            problem(send(city, method, path, raw), 400, "InvalidRequest", raw)


def test_bodies_of_the_wrong_json_type_are_400(city: TestClient) -> None:
    with unchanged(city):
        for method, path, _ in OBJECT_BODY:
            for body in ([], ["x"], "text", 42, None, True):
                if path.endswith("/attrs/powerState") and method == "PUT" and body is not None:
                    continue  # any other JSON value there is a concise Property
                problem(send(city, method, path, orjson.dumps(body)), 400, "BadRequestData",
                        (method, path, body))
        for method, path, _ in ARRAY_BODY:
            for not_array in ({}, {"id": ID}, "text", 42, None):
                problem(send(city, method, path, orjson.dumps(not_array)), 400,
                        "BadRequestData", (path, not_array))


# -- media types -----------------------------------------------------------------------------------


CONTENT_TYPES = [None, "text/plain", "application/xml", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=x", "application/jsonx",
                 "application/merge-patch+json"]


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=endpoint_id)
def test_unsupported_content_type_is_415(city: TestClient,
                                         endpoint: tuple[str, str, Any]) -> None:
    method, path, body = endpoint
    with unchanged(city):
        for content_type in CONTENT_TYPES:
            if content_type == "application/merge-patch+json" and method == "PATCH":
                continue  # ETSI GS CIM 009 6.3.4: allowed on every PATCH
            headers = {"Content-Type": content_type} if content_type else {}
            problem(send(city, method, path, orjson.dumps(body), headers), 415,
                    "UnsupportedMediaType", content_type)


def test_unacceptable_accept_is_406(city: TestClient) -> None:
    local_id = city.get(f"{BASE}/jsonldContexts", params={"kind": "hosted"}).json()[0]
    reads = ["/entities?type=Streetlight", f"/entities/{ID}", "/types", "/types/Streetlight",
             "/attributes", "/attributes/powerState", "/jsonldContexts",
             local_id.removeprefix("http://testserver" + BASE)]
    query = orjson.dumps({"type": "Query", "entities": [{"type": "Streetlight"}]})
    for accept in ("application/xml", "text/html", "image/*", "application/json;q=0",
                   "text/csv, application/pdf"):
        for path in reads:
            problem(city.get(BASE + path, headers={"Accept": accept}), 406, "NotAcceptable",
                    (path, accept))
        problem(send(city, "POST", "/entityOperations/query", query,
                     {"Accept": accept, **JSON_CT}), 406, "NotAcceptable", accept)
    for path in ("/types", "/attributes", "/jsonldContexts"):  # no features to give there
        problem(city.get(BASE + path, headers={"Accept": "application/geo+json"}), 406,
                "NotAcceptable", path)


# -- @context rules --------------------------------------------------------------------------------


def test_context_member_with_application_json_is_400(city: TestClient) -> None:
    cases = [(*endpoint, "application/json") for endpoint in BODY_ENDPOINTS
             if endpoint[1] != "/jsonldContexts"]  # (there the body *is* a context document)
    cases.append(("PATCH", f"/entities/{ID}", {"a": 1}, "application/merge-patch+json"))
    with unchanged(city):
        for method, path, body, media in cases:
            if isinstance(body, list):
                items = [{"id": i} if isinstance(i, str) else i for i in body]
                with_context: Any = [{**i, "@context": CORE_CONTEXT_URL} for i in items]
            else:
                with_context = {**body, "@context": CORE_CONTEXT_URL}
            problem(send(city, method, path, orjson.dumps(with_context),
                         {"Content-Type": media}), 400, "BadRequestData", (path, media))


def test_invalid_contexts_are_400(city: TestClient) -> None:
    ld = {"Content-Type": "application/ld+json"}
    rel = 'rel="http://www.w3.org/ns/json-ld#context"'
    with unchanged(city):
        for context in (5, [None, 5], {"@vocab": 7}, "not a url", "file:///etc/passwd",
                        {"a": {"@id": 5}}):
            body = orjson.dumps({**light(9), "@context": context})
            problem(send(city, "POST", "/entities", body, ld), 400, "InvalidRequest", context)
            problem(city.post(f"{BASE}/jsonldContexts", json={"@context": context}), 400,
                    "InvalidRequest", context)
        problem(send(city, "POST", "/entities", orjson.dumps(light(9)), ld), 400,
                "BadRequestData", "ld+json without @context")
        for link in (f"<>; {rel}", f"<{SQL[0]}>; {rel}", f"<file:///etc/passwd>; {rel}"):
            for method, path, entity in [("GET", f"/entities/{ID}", None),
                                         ("POST", "/entities", light(9))]:
                response = send(city, method, path, encoded(entity),
                                {"Link": link, **JSON_CT})
                problem(response, 400, {"BadRequestData", "InvalidRequest"}, (link, method))


# -- ids -------------------------------------------------------------------------------------------


BAD_IDS = ["not-a-uri", "1234", "urn:has space", "urn:tab\there", "<urn:x:1>", *SQL]
ID_ROUTES = ([(m, "/entities/{}") for m in ("GET", "PUT", "PATCH", "DELETE")]
             + [(m, "/entities/{}/attrs") for m in ("POST", "PATCH")]
             + [(m, "/entities/{}/attrs/powerState") for m in ("PATCH", "PUT", "DELETE")])


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_non_uri_ids_are_400(city: TestClient, bad_id: str) -> None:
    attr = orjson.dumps({"type": "Property", "value": 1})
    with unchanged(city):
        for method, path in ID_ROUTES:
            response = send(city, method, path.format(quote(bad_id)),
                            None if method in ("GET", "DELETE") else attr)
            problem(response, 400, "BadRequestData", (method, path))
        problem(city.get(f"{BASE}/entities", params={"id": f"{ID},{bad_id}"}), 400,
                "BadRequestData", "id parameter")
        for body_id in (bad_id, "", 5, None, [ID], {"id": ID}):
            problem(city.post(f"{BASE}/entities", json={**light(9), "id": body_id}), 400,
                    "BadRequestData", body_id)
            problem(city.put(f"{BASE}/entities/{ID}", json={"id": body_id, "type": "T"}), 400,
                    "BadRequestData", body_id)


def test_entity_without_id_or_with_a_bad_type_is_400(city: TestClient) -> None:
    with unchanged(city):
        problem(city.post(f"{BASE}/entities", json={"type": "Streetlight"}), 400,
                "BadRequestData")
        for bad_type in (None, "", 5, [], ["ok", "bad name"], "a;b", *SQL):
            body = {"id": NEW} if bad_type is None else {"id": NEW, "type": bad_type}
            problem(city.post(f"{BASE}/entities", json=body), 400, "BadRequestData", bad_type)


# -- attributes: unknown kinds and invalid values per kind -----------------------------------------


def geo(gtype: str, coordinates: Any) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": gtype, "coordinates": coordinates}}


def prop(**members: Any) -> dict[str, Any]:
    return {"type": "Property", "value": 1, **members}


def nested_subattributes(levels: int) -> dict[str, Any]:
    value = prop()
    for _ in range(levels):
        value = prop(sub=value)
    return value


BAD_ATTRIBUTES: list[tuple[str, str, Any]] = [
    ("unknown kind", "p", {"type": "Foo", "value": 1}),
    ("kind not a string", "p", {"type": 5, "value": 1}),
    ("Property without value", "p", {"type": "Property"}),
    ("Property with null value", "p", {"type": "Property", "value": None}),
    ("null attribute", "p", None),
    ("Relationship without object", "rel", {"type": "Relationship"}),
    ("Relationship to a non-URI", "rel", {"type": "Relationship", "object": "nope"}),
    ("Relationship to a number", "rel", {"type": "Relationship", "object": 5}),
    ("Relationship to no one", "rel", {"type": "Relationship", "object": []}),
    ("Relationship with a value", "rel", {"type": "Relationship", "object": "urn:a:1",
                                          "value": 1}),
    ("objectType on a Property", "p", prop(objectType="T")),
    ("unclosed polygon", "location", geo("Polygon", [[[0, 0], [1, 0], [1, 1], [0, 1]]])),
    ("polygon of three positions", "location", geo("Polygon", [[[0, 0], [1, 0], [0, 0]]])),
    ("latitude 123", "location", geo("Point", [9.19, 123])),
    ("longitude 200", "location", geo("Point", [200, 45])),
    ("latitude as text", "location", geo("Point", [9.19, "45"])),
    ("one coordinate", "location", geo("Point", [9.19])),
    ("four coordinates", "location", geo("Point", [9.19, 45.4, 1, 2])),
    ("line of one position", "location", geo("LineString", [[9.19, 45.4]])),
    ("unknown geometry", "location", geo("Circle", [9.19, 45.4])),
    ("geometry without coordinates", "location", {"type": "GeoProperty",
                                                  "value": {"type": "Point"}}),
    ("GeoProperty value is text", "location", {"type": "GeoProperty", "value": "Milano"}),
    ("location that is a Property", "location", {"type": "Property", "value": "Milano"}),
    ("languageMap not an object", "name", {"type": "LanguageProperty", "languageMap": "ciao"}),
    ("languageMap bad tag", "name", {"type": "LanguageProperty",
                                     "languageMap": {"not a tag!": "x"}}),
    ("vocab not a term", "cat", {"type": "VocabProperty", "vocab": 5}),
    ("valueList not a list", "readings", {"type": "ListProperty", "valueList": 5}),
    ("objectList of non-URIs", "near", {"type": "ListRelationship", "objectList": ["nope"]}),
    ("JsonProperty without json", "cfg", {"type": "JsonProperty", "value": {}}),
    ("observedAt not a time", "p", prop(observedAt="yesterday")),
    ("observedAt month 13", "p", prop(observedAt="2026-13-01T00:00:00Z")),
    ("datasetId not a URI", "p", prop(datasetId="not uri")),
    ("unitCode not a string", "p", prop(unitCode=5)),
    ("two default instances", "p", [prop(), prop(value=2)]),
    ("marker without a value member", "p", {"unitCode": "C62"}),
    ("ambiguous value members", "p", {"value": 1, "object": "urn:a:1"}),
    ("sub-attribute of unknown kind", "p", prop(sub={"type": "Foo", "value": 2})),
    ("sub-attributes 20 levels deep", "p", nested_subattributes(20)),
    ("space in a name", "bad name", 1),
    ("equals sign in a name", "a=b", 1),
    ("SQL as a name", SQL[0], 1),
    ("SQL as a name (2)", SQL[1], 1),
    ("JSON-LD keyword as a name", "@id", 1),
    ("empty name", "", 1),
]


@pytest.mark.parametrize("write", ["create", "append", "update", "merge", "replace"])
def test_invalid_attributes_are_400_and_write_nothing(city: TestClient, write: str) -> None:
    """Each bad attribute travels next to a good one: a failed single-entity operation
    writes nothing, not even the good part."""
    url = f"{BASE}/entities/{ID}"
    with unchanged(city):
        for case, name, value in BAD_ATTRIBUTES:
            if write == "create":
                response = city.post(f"{BASE}/entities", json={
                    "id": NEW, "type": "Streetlight", "dimming": 0.5, name: value})
            elif write == "append":
                response = city.post(f"{url}/attrs", json={"dimming": 0.5, name: value})
            elif write == "update":
                response = city.patch(f"{url}/attrs", json={"powerState": "off", name: value})
            elif write == "merge":
                response = city.patch(url, json={"powerState": "off", name: value})
            else:
                response = city.put(url, json={"type": "Streetlight", "powerState": "off",
                                               name: value})
            problem(response, 400, "BadRequestData", case)


def test_invalid_attributes_are_400_on_the_attribute_endpoints(city: TestClient) -> None:
    url = f"{BASE}/entities/{ID}/attrs"
    with unchanged(city):
        for case, name, value in BAD_ATTRIBUTES:
            if not isinstance(value, dict | None) or not name or name[0] == "@" or any(
                    c in name for c in " ='\"?#/%"):
                continue  # names that cannot travel in a URL path as they are
            problem(send(city, "PUT", f"/entities/{ID}/attrs/{name}", orjson.dumps(value)), 400,
                    "BadRequestData", case)
        for case, fragment in [("kind change", {"type": "Relationship", "object": "urn:a:1"}),
                               ("null value", {"value": None}),
                               ("bad observedAt", prop(observedAt="never")),
                               ("unknown kind", {"type": "Foo", "value": 1})]:
            problem(city.patch(f"{url}/powerState", json=fragment), 400, "BadRequestData",
                    case)
        for name in ("id", "type", "@id", *SQL):
            problem(city.patch(f"{url}/{quote(name)}", json={"value": 1}), 400,
                    "BadRequestData", name)
            problem(city.put(f"{url}/{quote(name)}", json={"value": 1}), 400,
                    "BadRequestData", name)


# -- representations and options -------------------------------------------------------------------


def test_unknown_representations_and_options_are_400(city: TestClient) -> None:
    for params in ({"format": "xml"}, {"format": ""}, {"format": SQL[0]},
                   {"options": "bogus"}, {"options": "keyValues,bogus"}, {"options": SQL[1]},
                   {"pick": "id", "omit": "type"}):
        problem(city.get(f"{BASE}/entities/{ID}", params=params), 400, "BadRequestData",
                params)
        problem(city.get(f"{BASE}/entities", params={"type": "Streetlight", **params}), 400,
                "BadRequestData", params)
    with unchanged(city):
        for method, path, body in [*ARRAY_BODY, ("POST", f"/entities/{ID}/attrs", {"a": 1})]:
            problem(send(city, method, path, orjson.dumps(body),
                         params={"options": "overwriteEverything"}), 400, "BadRequestData",
                    path)


# -- queries: q, geoQ, scopeQ, type, idPattern, paging ---------------------------------------------


def near(georel: str = "near;maxDistance==100", geometry: str = "Point",
         coordinates: str | None = "[9,45]") -> dict[str, str]:
    params = {"type": "Streetlight", "georel": georel, "geometry": geometry}
    return params if coordinates is None else {**params, "coordinates": coordinates}


def page(**params: str) -> dict[str, str]:
    return {"type": "Streetlight", **params}


BAD = "BadRequestData"
COMPLEX = "TooComplexQuery"
BAD_QUERIES: list[tuple[dict[str, str], int, str]] = [
    *[({"q": q}, 400, BAD) for q in (
        "powerState==", "(((", "powerState=='on'", "powerState>>1", 'powerState=="open',
        'powerState~="(("', "illuminanceLevel==1e999", ";", "a[b", "==1", "a..b==1",
        "powerState.observedAt>2026-13-45T99:00:00Z", "a==1..", "a==(1,", *SQL)],
    ({"q": "(" * 40 + "powerState" + ")" * 40}, 403, COMPLEX),
    ({"q": ";".join(["powerState"] * 200)}, 403, COMPLEX),
    ({"q": "p" * 9000}, 403, COMPLEX),
    *[({"type": t}, 400, BAD) for t in ("((", "A;;B", "A,", "bad name", "A|", *SQL)],
    ({"type": ",".join(["T"] * 200)}, 403, COMPLEX),
    *[({"type": "Streetlight", "scopeQ": s}, 400, BAD) for s in ("Milano", "/a;", "//a", "/#/a",
                                                                  *SQL)],
    ({"idPattern": "(("}, 400, BAD),
    ({"attrs": ",".join(f"a{i}" for i in range(1000))}, 403, COMPLEX),
    *[(near(georel=g), 400, BAD) for g in ("near", "near;maxDistance==-1", "nearby",
                                           "near;maxDistance==nan", "near;maxDistance==x",
                                           "within;maxDistance==5", "near;size==3", *SQL)],
    *[(near(geometry=g), 400, BAD) for g in ("Circle", "GeometryCollection", "", *SQL)],
    *[(near(coordinates=c), 400, BAD) for c in ("[9,123]", "[200,45]", "[9]", "[9,45,1,2]",
                                                "[9, 45", '{"a": 1}', "[[9,45]]", "[]",
                                                "[" * 2000 + "]" * 2000, *SQL)],
    *[(near("within", "Polygon", c), 400, BAD) for c in ("[[[0,0],[1,0],[1,1],[0,1]]]",
                                                         "[[[0,0],[1,0],[0,0]]]", "[9,45]")],
    (near(coordinates=None), 400, BAD),
    ({"type": "Streetlight", "coordinates": "[9,45]"}, 400, BAD),
    *[(page(limit=v), 400, BAD) for v in ("-1", "abc", "1.5", " 5", "1e3", "0x10", "1_0",
                                          "\u0661\u0662", *SQL)],
    *[(page(offset=v), 400, BAD) for v in ("-5", "two", str(2**63), "9" * 40, *SQL)],
    (page(limit="1001"), 403, "TooManyResults"),
    (page(limit="9" * 40), 403, "TooManyResults"),
    ({}, 400, BAD),
    ({"count": "true"}, 400, BAD),
]


def test_invalid_query_parameters(city: TestClient) -> None:
    for params, status, name in BAD_QUERIES:
        problem(city.get(f"{BASE}/entities", params=params), status, name, params)


def test_largest_offset_is_an_empty_page(city: TestClient) -> None:
    response = city.get(f"{BASE}/entities", params=page(offset=str(2**63 - 1), count="true"))
    assert response.status_code == 200 and response.json() == []
    assert response.headers["ngsild-results-count"] == "2"


def query(**members: Any) -> dict[str, Any]:
    return {"type": "Query", **members}


def geoq(coordinates: Any, georel: str = "near;maxDistance==10",
         geometry: str = "Point") -> dict[str, Any]:
    return query(geoQ={"georel": georel, "geometry": geometry, "coordinates": coordinates})


BAD_QUERY_BODIES: list[tuple[dict[str, Any], int, str]] = [
    ({"type": "Subscription", "entities": [{"type": "Streetlight"}]}, 400, BAD),
    *[(query(entities=e), 400, BAD) for e in (
        5, {"type": "Streetlight"}, ["Streetlight"], [{"type": ["Streetlight"]}], [{"id": 5}],
        [{"id": "not a uri"}], [{"idPattern": "(("}], [{"type": SQL[0]}], [{"id": SQL[1]}])],
    *[(query(attrs=a), 400, BAD) for a in ("powerState", [1], {"a": 1})],
    *[(query(q=q), 400, BAD) for q in (5, "powerState==", *SQL)],
    (query(scopeQ="Milano"), 400, BAD),
    (query(lang=["it"]), 400, BAD),
    (query(geoQ="near"), 400, BAD),
    (geoq([[[0, 0], [1, 0], [1, 1], [0, 1]]], "within", "Polygon"), 400, BAD),
    (geoq([9, 123]), 400, BAD),
    (geoq("[9, 45]x"), 400, BAD),
    (geoq([9, 45], "nearby"), 400, BAD),
    (geoq([9, 45], geometry="Circle"), 400, BAD),
    (query(q="(" * 40 + "p" + ")" * 40), 403, COMPLEX),
]


def test_invalid_query_bodies(city: TestClient) -> None:
    url = f"{BASE}/entityOperations/query"
    for body, status, name in BAD_QUERY_BODIES:
        problem(city.post(url, json=body), status, name, body)
    good = query(entities=[{"type": "Streetlight"}])
    for params, status, name in [({"limit": "-1"}, 400, BAD), ({"offset": "x"}, 400, BAD),
                                 ({"limit": "5000"}, 403, "TooManyResults")]:
        problem(city.post(url, json=good, params=params), status, name, params)


# -- size and depth --------------------------------------------------------------------------------


@pytest.fixture
def small_limit(settings: Settings) -> Iterator[TestClient]:
    """A server whose body limit is 2 KiB, so oversized bodies stay cheap to build."""
    app = create_app(settings.replace(max_body_bytes=2048))
    with TestClient(app, base_url="http://testserver") as test_client:
        assert test_client.post(f"{BASE}/entities", json=light(1)).status_code == 201
        yield test_client


def padded(body: Any, size: int) -> bytes:
    """``body`` encoded as JSON of exactly ``size`` bytes: its last string is made longer
    (a ``padding`` member added to an object for the purpose)."""
    raw = orjson.dumps(body if isinstance(body, list) else {**body, "padding": ""})
    cut = raw.rindex(b'"')  # pad inside the last string of the document
    return raw[:cut] + b"x" * (size - len(raw)) + raw[cut:]


def test_body_over_the_size_limit_is_413(small_limit: TestClient) -> None:
    with unchanged(small_limit):
        for method, path, body in BODY_ENDPOINTS:
            problem(send(small_limit, method, path, padded(body, 2049)), 413,
                    "PayloadTooLarge", path)


def test_body_at_the_size_limit_is_accepted(small_limit: TestClient) -> None:
    response = send(small_limit, "POST", "/entities", padded(light(9), 2048))
    assert response.status_code == 201, response.text


def test_streamed_body_without_length_is_refused_unread(small_limit: TestClient) -> None:
    # ETSI GS CIM 009 6.3.4: a body without Content-Length is a bare 411, never read
    raw = padded(light(9), 10_000)
    chunks = (raw[start:start + 1000] for start in range(0, len(raw), 1000))
    with unchanged(small_limit):
        response = small_limit.post(f"{BASE}/entities", content=chunks, headers=JSON_CT)
        assert response.status_code == 411 and response.content == b""


def test_fifty_megabytes_are_refused_with_the_default_limit(client: TestClient) -> None:
    assert Settings().max_body_bytes < 50 * 1024 * 1024
    body = padded(light(9), 50 * 1024 * 1024)
    with unchanged(client):
        problem(send(client, "POST", "/entities", body), 413, "PayloadTooLarge")
        problem(send(client, "POST", "/entityOperations/upsert", b"[" + body + b"]"), 413,
                "PayloadTooLarge")


def nested(depth: int, leaf: bytes = b"1") -> bytes:
    """A JSON value ``depth`` levels deep, arrays and objects alternating."""
    opening = b"".join(b'{"k":' if i % 2 else b"[" for i in range(depth))
    closing = b"".join(b"}" if i % 2 else b"]" for i in reversed(range(depth)))
    return opening + leaf + closing


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 300, 5000])
def test_deeply_nested_json_is_400(city: TestClient, depth: int) -> None:
    deep = nested(depth)
    with unchanged(city):
        for method, path, body in BODY_ENDPOINTS:
            if isinstance(body, list):
                raw = b'[{"id": "urn:ngsi-ld:T:deep", "type": "T", "p": ' + deep + b"}]"
            else:
                raw = orjson.dumps(body)[:-1] + b', "deep": ' + deep + b"}"
            problem(send(city, method, path, raw), 400, "InvalidRequest", path)


def test_nesting_within_the_limit_is_stored_and_returned(city: TestClient) -> None:
    value = orjson.loads(nested(MAX_JSON_DEPTH - 3))
    entity = {"id": NEW, "type": "T", "cfg": {"type": "JsonProperty", "json": value},
              "p": {"type": "Property", "value": value}}
    assert city.post(f"{BASE}/entities", json=entity).status_code == 201
    body = city.get(f"{BASE}/entities/{NEW}").json()
    assert body["cfg"]["json"] == value and body["p"]["value"] == value


# -- SQL-looking input -----------------------------------------------------------------------------


# What each GET /entities parameter does with an SQL-looking string: refuse it (a status), or
# take it as the plain text it is: a filter that matches nothing ("none"), a rendering choice
# that leaves the entities as they are ("all") or drops their attributes ("bare").
SQL_PARAMS: dict[str, int | str] = {
    "id": 400, "idPattern": "none", "type": 400, "attrs": "none", "q": 400, "scopeQ": 400,
    "georel": 400, "geometry": 400, "coordinates": 400, "geoproperty": "none", "limit": 400,
    "offset": 400, "options": 400, "format": 400, "datasetId": "bare", "pick": "bare",
    "omit": "all", "lang": "all", "count": "all",
}
GEO = {"georel": "near;maxDistance==100000", "geometry": "Point", "coordinates": "[9.19,45.46]"}


@pytest.mark.parametrize("sql", SQL)
def test_sql_in_query_parameters_is_only_text(city: TestClient, sql: str) -> None:
    with unchanged(city):
        for param, expected in SQL_PARAMS.items():
            base = {**GEO} if param in GEO or param == "geoproperty" else {"type": "Streetlight"}
            response = city.get(f"{BASE}/entities", params={**base, param: sql})
            if isinstance(expected, int):
                problem(response, expected, "BadRequestData", param)
                continue
            assert response.status_code == 200, (param, response.text)
            found = response.json()
            if expected == "none":
                assert found == [], param
            elif expected == "bare":
                assert len(found) == 2 and all(
                    set(e) <= {"id", "type"} for e in found), (param, found)
            else:
                assert [e["id"] for e in found] == [ID, OTHER], param
            for path in (f"/entities/{ID}", "/types", "/attributes", "/jsonldContexts"):
                assert city.get(BASE + path, params={param: sql}).status_code < 500, path


@pytest.mark.parametrize("sql", SQL)
def test_sql_in_paths_and_headers_is_refused_or_not_found(city: TestClient, sql: str) -> None:
    url = f"/entities/{ID}/attrs"
    with unchanged(city):
        for method, path, status, name in [
                ("GET", f"/entities/{quote(sql)}", 400, BAD),
                ("GET", f"/types/{quote(sql)}", 404, "ResourceNotFound"),
                ("GET", f"/attributes/{quote(sql)}", 404, "ResourceNotFound"),
                ("GET", f"/jsonldContexts/{quote(sql)}", 404, "ResourceNotFound"),
                ("DELETE", f"/jsonldContexts/{quote(sql)}", 404, "ResourceNotFound"),
                ("DELETE", f"{url}/{quote(sql)}", 404, "ResourceNotFound")]:
            problem(send(city, method, path), status, name, path)
        problem(send(city, "DELETE", f"{url}/powerState", params={"datasetId": sql}), 404,
                "ResourceNotFound", "datasetId")
        endpoints: list[tuple[str, str, Any]] = [("GET", f"/entities/{ID}", None),
                                                 ("GET", "/types", None), *BODY_ENDPOINTS]
        for method, path, body in endpoints:
            response = send(city, method, path, encoded(body),
                            {"NGSILD-Tenant": sql, **JSON_CT})
            problem(response, 400, BAD, ("tenant", path))


def test_sql_in_ids_and_values_is_stored_and_matched_as_text(city: TestClient) -> None:
    # A valid URI may hold SQL metacharacters: it must round-trip exactly and harm nothing.
    odd_id = "urn:ngsi-ld:Streetlight:';DROP-TABLE-entities;--"
    entity = {"id": odd_id, "type": "Streetlight", "note": SQL[0], "remark": SQL[1],
              "refGroup": {"type": "Relationship", "object": "urn:x:'OR-1=1--"}}
    assert city.post(f"{BASE}/entities", json=entity).status_code == 201
    got = city.get(f"{BASE}/entities/{quote(odd_id)}", params={"options": "keyValues"}).json()
    assert got == {"id": odd_id, "type": "Streetlight", "note": SQL[0], "remark": SQL[1],
                   "refGroup": "urn:x:'OR-1=1--"}
    # A q string equal to the SQL text finds exactly the entity holding it, nothing more.
    for attr, text in (("note", SQL[0]), ("remark", SQL[1])):
        q = f'{attr}=="' + text.replace('"', '\\"') + '"'
        found = city.get(f"{BASE}/entities", params={"type": "Streetlight", "q": q})
        assert [e["id"] for e in found.json()] == [odd_id], found.text
    assert len(city.get(f"{BASE}/entities", params={"type": "Streetlight"}).json()) == 3
    assert city.delete(f"{BASE}/entities/{quote(odd_id)}").status_code == 204


# -- conflicts, missing things and tenants ---------------------------------------------------------


def test_existing_id_is_409(city: TestClient) -> None:
    with unchanged(city):
        problem(city.post(f"{BASE}/entities", json=light(1)), 409, "AlreadyExists")
        problem(city.post(f"{BASE}/entities", json={**light(2), "powerState": "off"}), 409,
                "AlreadyExists")


MISSING_RESOURCES: list[tuple[str, str, Any]] = [
    ("GET", f"/entities/{MISSING}", None),
    ("PUT", f"/entities/{MISSING}", {"type": "Streetlight"}),
    ("PATCH", f"/entities/{MISSING}", {"powerState": "off"}),
    ("DELETE", f"/entities/{MISSING}", None),
    ("POST", f"/entities/{MISSING}/attrs", {"dimming": 1}),
    ("PATCH", f"/entities/{MISSING}/attrs", {"dimming": 1}),
    ("PATCH", f"/entities/{MISSING}/attrs/powerState", {"value": "off"}),
    ("PUT", f"/entities/{MISSING}/attrs/powerState", {"value": "off"}),
    ("DELETE", f"/entities/{MISSING}/attrs/powerState", None),
    ("PATCH", f"/entities/{ID}/attrs/missing", {"value": 1}),
    ("PUT", f"/entities/{ID}/attrs/missing", {"value": 1}),
    ("DELETE", f"/entities/{ID}/attrs/missing", None),
    ("GET", "/types/Nothing", None),
    ("GET", "/attributes/nothing", None),
    ("GET", "/jsonldContexts/0000", None),
    ("DELETE", "/jsonldContexts/0000", None),
    ("GET", "/no/such/path", None),
]


@pytest.mark.parametrize("tenant", ["", FRESH])
def test_missing_resource_is_404(city: TestClient, tenant: str) -> None:
    headers = {**JSON_CT, **({"NGSILD-Tenant": tenant} if tenant else {})}
    # In a tenant that does not exist, saying so is as right as "no such resource".
    names = {"ResourceNotFound", "NonexistentTenant"} if tenant else "ResourceNotFound"
    with unchanged(city):  # the snapshot also shows the unknown tenant was not created
        for method, path, body in MISSING_RESOURCES:
            response = send(city, method, path, encoded(body), headers)
            problem(response, 404, names, (method, path))


def test_unknown_tenant_on_read_is_404_nonexistent_tenant(city: TestClient) -> None:
    fresh = {"NGSILD-Tenant": FRESH}
    for path in ("/entities?type=Streetlight", f"/entities/{ID}", "/types",
                 "/types/Streetlight", "/attributes", "/attributes/powerState",
                 "/entities?idPattern=.*&count=true&limit=0"):
        problem(city.get(BASE + path, headers=fresh), 404, "NonexistentTenant", path)
    problem(city.post(f"{BASE}/entityOperations/query", headers=fresh,
                      json=query(entities=[{"type": "Streetlight"}])), 404, "NonexistentTenant")


def test_failed_writes_do_not_create_a_tenant(city: TestClient) -> None:
    fresh = {"NGSILD-Tenant": FRESH}
    with unchanged(city):  # the snapshot asserts FRESH is still unknown
        problem(city.post(f"{BASE}/entities", json={"id": "bad"}, headers=fresh), 400, BAD)
        problem(city.patch(f"{BASE}/entities/{ID}/attrs", json={"a": 1}, headers=fresh), 404,
                "ResourceNotFound")
        for op, body in [("create", [{"id": "bad"}]), ("update", [{"id": ID, "a": 1}]),
                         ("merge", [{"id": ID, "a": 1}]), ("delete", [ID]), ("create", [])]:
            response = city.post(f"{BASE}/entityOperations/{op}", json=body, headers=fresh)
            assert response.status_code in (201, 207), response.text


def test_wrong_method_is_405(city: TestClient) -> None:
    with unchanged(city):
        for method, path in [("DELETE", "/entities"), ("PUT", "/entities"),
                             ("GET", "/entityOperations/create"), ("PATCH", "/types"),
                             ("POST", "/attributes"), ("PUT", "/jsonldContexts")]:
            problem(send(city, method, path), 405, "MethodNotAllowed", (method, path))


# -- batches: each entity fails alone, the rest commit ---------------------------------------------


def errors_by_id(response: Any) -> dict[str, str]:
    """The per-entity errors of a 207 batch response, each checked to be ProblemDetails."""
    assert response.status_code == 207, response.text
    assert response.headers["content-type"].split(";")[0] == "application/json"
    out: dict[str, str] = {}
    for entry in response.json()["errors"]:
        error = entry["error"]
        assert error["type"].startswith(ERRORS) and error["title"] and error["detail"], entry
        out[entry["entityId"]] = error["type"].removeprefix(ERRORS)
    return out


def key_values(client: TestClient, entity_id: str) -> Any:
    response = client.get(f"{BASE}/entities/{entity_id}", params={"options": "keyValues"})
    return response.json() if response.status_code == 200 else None


def test_batch_create_commits_the_good_and_reports_the_bad(city: TestClient) -> None:
    before = key_values(city, ID)
    response = city.post(f"{BASE}/entityOperations/create", json=[
        light(3), light(1), {"id": "not a uri", "type": "T"}, 5,
        {"id": "urn:ngsi-ld:T:bad-geo", "type": "T", "location": geo("Point", [9, 123])},
        {"id": "urn:ngsi-ld:T:no-type"}, light(4)])
    assert errors_by_id(response) == {
        ID: "AlreadyExists", "not a uri": BAD, "item 3": BAD, "urn:ngsi-ld:T:bad-geo": BAD,
        "urn:ngsi-ld:T:no-type": BAD}
    assert response.json()["success"] == [light(3)["id"], light(4)["id"]]
    assert key_values(city, light(3)["id"])["powerState"] == "on"
    assert key_values(city, light(4)["id"]) is not None
    assert key_values(city, ID) == before
    assert key_values(city, "urn:ngsi-ld:T:bad-geo") is None


def test_batch_upsert_update_merge_delete_report_each_error(city: TestClient) -> None:
    upsert = city.post(f"{BASE}/entityOperations/upsert", json=[
        {**light(1), "powerState": "off"}, {"id": OTHER, "type": "Streetlight", "p": None},
        light(5)])
    assert errors_by_id(upsert) == {OTHER: BAD}
    assert set(upsert.json()["success"]) == {ID, light(5)["id"]}
    assert key_values(city, ID)["powerState"] == "off"
    assert key_values(city, OTHER)["powerState"] == "on"

    update = city.post(f"{BASE}/entityOperations/update", json=[
        {"id": ID, "dimming": 0.1}, {"id": MISSING, "dimming": 1},
        {"id": OTHER, "location": geo("Point", [9, 123])}])
    assert errors_by_id(update) == {MISSING: "ResourceNotFound", OTHER: BAD}
    assert key_values(city, OTHER)["location"]["coordinates"] == [9.192, 45.46]

    merge = city.post(f"{BASE}/entityOperations/merge", json=[
        {"id": OTHER, "powerState": "off"}, {"id": MISSING, "powerState": "off"},
        {"id": ID, "rel": {"type": "Relationship"}}])
    assert errors_by_id(merge) == {MISSING: "ResourceNotFound", ID: BAD}
    assert key_values(city, OTHER)["powerState"] == "off"
    assert "rel" not in key_values(city, ID)

    delete = city.post(f"{BASE}/entityOperations/delete",
                       json=[OTHER, MISSING, "not a uri", 7])
    assert errors_by_id(delete) == {MISSING: "ResourceNotFound", "not a uri": BAD, "7": BAD}
    assert delete.json()["success"] == [OTHER]
    assert key_values(city, OTHER) is None and key_values(city, ID) is not None


def test_batch_where_everything_fails_changes_nothing(city: TestClient) -> None:
    with unchanged(city):
        response = city.post(f"{BASE}/entityOperations/create",
                             json=[light(1), light(2), {"id": "x"}, []])
        assert response.json()["success"] == []
        assert set(errors_by_id(response)) == {ID, OTHER, "x", "item 3"}
        response = city.post(f"{BASE}/entityOperations/update",
                             json=[{"id": MISSING, "a": 1}, {"id": ID, "a": None}])
        assert set(errors_by_id(response)) == {MISSING, ID}


def test_batch_over_the_size_cap_is_refused_whole(settings: Settings) -> None:
    with TestClient(create_app(settings.replace(max_batch_size=3))) as small, unchanged(small):
        problem(small.post(f"{BASE}/entityOperations/upsert",
                           json=[light(n) for n in range(1, 5)]), 400, BAD)
