"""The OpenAPI description: a valid 3.1 document, in step with the routes the app serves, with
examples that match their own schemas and that the real app accepts and answers."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, quote

import orjson
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.testclient import TestClient

from sinergia.api.app import create_app
from sinergia.api.openapi import TAGS, build_spec
from sinergia.api.openapi_schemas import error_types
from sinergia.ngsild.errors import ERROR_BASE
from sinergia.settings import Settings
from support.receiver import http_receiver

METHODS = {"get", "put", "post", "patch", "delete"}
SPEC = build_spec("9.9.9-test")
SPEC_URI = "urn:sinergia:openapi"
NGSI = "/ngsi-ld/v1"
JSON = "application/json"

# Starlette's path parameter names -> the ones the spec shows to clients (the NGSI-LD names).
_PARAM_NAMES = {"entity_id": "entityId", "id": "contextId", "sub_id": "subscriptionId",
                "instance_id": "instanceId", "device_id": "deviceId"}


def _spec_path(starlette_path: str) -> str:
    """``{x:path}`` → ``{x}``, with the parameter renamed as the description names it."""
    def rename(match: re.Match[str]) -> str:
        before, name = match.group(1), match.group(2)
        if name == "attr" and before == "/attrs/":
            return before + "{attrId}"
        return before + "{" + _PARAM_NAMES.get(name, name) + "}"

    return re.sub(r"(/[^/{]*/?)\{(\w+)(?::\w+)?\}", rename, starlette_path)


def _served(routes: Iterable[BaseRoute], prefix: str = "") -> set[tuple[str, str]]:
    """(path, method) of every HTTP operation the routes serve, mounted routers included."""
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Mount):
            # A mounted router's routes are API calls too; a mounted app (the static files of
            # the docs page) has no routes.
            found |= _served(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            for method in route.methods or ():
                if method != "HEAD":  # Starlette adds HEAD to every GET by itself
                    found.add((_spec_path(prefix + route.path), method.lower()))
        else:
            raise AssertionError(f"{route!r}: a kind of route this test cannot check")
    return found


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def _callback_operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """The requests the broker itself sends (notifications), described as callbacks."""
    for path, method, operation in _operations():
        for name, callback in operation.get("callbacks", {}).items():
            for expression, item in callback.items():
                where = f"{method.upper()} {path} -> {name} {expression}"
                for cb_method, cb_operation in item.items():
                    yield where, cb_method, cb_operation


def _resolve(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = SPEC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every object reachable from ``node``, following component references."""
    node = _resolve(node)
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    # Inline schemas refer to "#/components/schemas/..." of the whole document, so the
    # schema under test is placed inside (a copy of) the document and reached from there.
    document = {**SPEC, "x-under-test": schema}
    registry: Registry[Any] = Registry().with_resource(
        SPEC_URI, Resource.from_contents(document, default_specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"{SPEC_URI}#/x-under-test"}, registry=registry)


def _schema(name: str) -> Draft202012Validator:
    return _validator({"$ref": f"#/components/schemas/{name}"})


def _media_examples() -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(where, schema, example value) for each example attached to a media type, in the API's
    operations and in the notifications it sends."""
    for path, method, operation in [*_operations(), *_callback_operations()]:
        media_sets = []
        if "requestBody" in operation:
            media_sets.append(("request", operation["requestBody"]["content"]))
        for status, response in operation["responses"].items():
            media_sets.append((status, _resolve(response).get("content", {})))
        for label, content in media_sets:
            for media_type, media in content.items():
                where = f"{method.upper()} {path} {label} {media_type}"
                if "example" in media:
                    yield where, media["schema"], media["example"]
                for name, example in media.get("examples", {}).items():
                    yield f"{where} {name}", media["schema"], _resolve(example)["value"]


def _example(name: str) -> Any:
    return copy.deepcopy(SPEC["components"]["examples"][name]["value"])


# -- the document -------------------------------------------------------------------------

def test_the_document_is_valid_openapi_3_1() -> None:
    assert SPEC["openapi"].startswith("3.1.")
    validate(SPEC)  # raises on any violation


def test_the_document_is_plain_json_and_carries_the_version() -> None:
    assert orjson.loads(orjson.dumps(SPEC)) == SPEC
    assert SPEC["info"]["version"] == "9.9.9-test"
    assert build_spec("1.2.3")["info"]["version"] == "1.2.3"


def _described() -> set[tuple[str, str]]:
    return {(path, method) for path, method, _ in _operations()}


def test_every_route_of_the_app_is_described_and_nothing_else(settings: Settings) -> None:
    served = _served(create_app(settings).routes)
    assert served - _described() == set(), "routes missing from the OpenAPI description"
    assert _described() - served == set(), "described operations that no route serves"


async def _nothing(request: Request) -> Response:
    return Response(status_code=204)


def test_an_undocumented_route_would_be_caught(settings: Settings) -> None:
    app = create_app(settings)
    app.router.routes.append(Route(f"{NGSI}/secrets/{{secret_id:path}}", _nothing,
                                   methods=["GET", "DELETE"]))
    app.router.routes.append(Mount("/admin", routes=[Route("/purge", _nothing,
                                                           methods=["POST"])]))
    assert _served(app.routes) - _described() == {
        (f"{NGSI}/secrets/{{secret_id}}", "get"), (f"{NGSI}/secrets/{{secret_id}}", "delete"),
        ("/admin/purge", "post")}


def test_path_parameters_use_the_documented_names() -> None:
    names = {name for path in SPEC["paths"] for name in re.findall(r"\{(\w+)\}", path)}
    assert names == {"entityId", "attrId", "type", "attr", "contextId", "subscriptionId",
                     "instanceId", "deviceId"}


def test_route_path_conversion() -> None:
    assert (_spec_path(f"{NGSI}/entities/{{entity_id:path}}/attrs/{{attr}}")
            == f"{NGSI}/entities/{{entityId}}/attrs/{{attrId}}")
    assert _spec_path(f"{NGSI}/attributes/{{attr:path}}") == f"{NGSI}/attributes/{{attr}}"
    assert (_spec_path(f"{NGSI}/jsonldContexts/{{id:path}}")
            == f"{NGSI}/jsonldContexts/{{contextId}}")
    assert (_spec_path(f"{NGSI}/subscriptions/{{sub_id:path}}")
            == f"{NGSI}/subscriptions/{{subscriptionId}}")
    assert (_spec_path(f"{NGSI}/temporal/entities/{{entity_id}}/attrs/{{attr}}/{{instance_id}}")
            == f"{NGSI}/temporal/entities/{{entityId}}/attrs/{{attrId}}/{{instanceId}}")


# -- operations ---------------------------------------------------------------------------

def _has_message_example(operation: dict[str, Any]) -> bool:
    """An example of a request or response body; for a call without any body in either
    direction (deletes, a redirect), an example of its path parameters or answer headers."""
    responses = [_resolve(r) for status, r in operation["responses"].items()
                 if int(status) < 400]  # every operation shares the error examples
    contents = [r.get("content", {}) for r in responses]
    if "requestBody" in operation:
        contents.append(operation["requestBody"]["content"])
    if any("example" in media or media.get("examples")
           for content in contents for media in content.values()):
        return True
    if any(contents):
        return False
    path_params = [p for p in map(_resolve, operation["parameters"]) if p["in"] == "path"]
    return (any("example" in p for p in path_params)
            or any("example" in node for r in responses for node in _walk(r.get("headers", {}))))


def test_every_operation_is_documented_for_people() -> None:
    ids = []
    for path, method, operation in [*_operations(), *_callback_operations()]:
        where = f"{method.upper()} {path}"
        ids.append(operation["operationId"])
        assert operation["summary"].strip(), where
        assert len(operation["description"]) >= 40, where
        assert len(operation["tags"]) == 1 and operation["tags"][0] in TAGS, where
        assert _has_message_example(operation), f"{where} has no example"
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    assert {tag["name"] for tag in SPEC["tags"]} == {
        "Entities", "Attributes", "Batch", "Discovery", "Contexts", "Subscriptions",
        "Temporal", "Service", "UrbanDataset", "Devices", "Dashboard"}


def test_every_error_response_is_problem_details() -> None:
    for path, method, operation in _operations():
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            media = _resolve(response)["content"]["application/json"]
            assert media["schema"] == {"$ref": "#/components/schemas/ProblemDetails"}
            problem_type = media["example"]["type"]
            assert problem_type.startswith(ERROR_BASE), (method, path, status)


def test_error_examples_carry_their_own_status() -> None:
    status_of = {name: status for name, status, _ in error_types()}
    for name, response in SPEC["components"]["responses"].items():
        example = response["content"]["application/json"]["example"]
        code = status_of[example["type"].removeprefix(ERROR_BASE)]
        used_as = {status for *_, op in _operations()
                   for status, r in op["responses"].items()
                   if r == {"$ref": f"#/components/responses/{name}"}}
        assert used_as <= {str(code)}, name


def test_problem_details_lists_the_ngsi_ld_error_types() -> None:
    text = SPEC["components"]["schemas"]["ProblemDetails"]["description"]
    for name in ("InvalidRequest", "BadRequestData", "AlreadyExists", "OperationNotSupported",
                 "ResourceNotFound", "InternalError", "TooComplexQuery", "TooManyResults",
                 "LdContextNotAvailable", "NonexistentTenant"):
        assert f"`{name}`" in text


def _parameter_names(path: str, method: str) -> set[str]:
    params = SPEC["paths"][path][method]["parameters"]
    return {_resolve(p)["name"] for p in params}


def _parameter(path: str, method: str, name: str) -> dict[str, Any]:
    for param in SPEC["paths"][path][method]["parameters"]:
        resolved: dict[str, Any] = _resolve(param)
        if resolved["name"] == name:
            return resolved
    raise AssertionError(f"no parameter {name} on {method.upper()} {path}")


def test_query_entities_takes_every_standard_parameter() -> None:
    names = _parameter_names(f"{NGSI}/entities", "get")
    assert names >= {"NGSILD-Tenant", "Link", "Accept", "id", "idPattern", "type", "attrs",
                     "pick", "omit", "q", "scopeQ", "georel", "geometry", "coordinates",
                     "geoproperty", "geometryProperty", "lang", "datasetId", "options",
                     "format", "limit", "offset", "count"}
    ok = SPEC["paths"][f"{NGSI}/entities"]["get"]["responses"]["200"]
    assert set(ok["headers"]) == {"NGSILD-Results-Count", "Link"}
    assert set(ok["content"]) == {"application/json", "application/ld+json",
                                  "application/geo+json"}


@pytest.mark.parametrize(("path", "method", "expected"), [
    ("/ngsi-ld/v1/entities/{entityId}/attrs", "post", {"options"}),
    ("/ngsi-ld/v1/entities/{entityId}/attrs/{attrId}", "delete", {"datasetId", "deleteAll"}),
    ("/ngsi-ld/v1/entityOperations/upsert", "post", {"options"}),
    ("/ngsi-ld/v1/types", "get", {"details"}),
    ("/ngsi-ld/v1/jsonldContexts", "get", {"details", "kind"}),
    ("/ngsi-ld/v1/jsonldContexts/{contextId}", "delete", {"reload"}),
    ("/ngsi-ld/v1/subscriptions", "get", {"limit", "offset", "count", "Accept"}),
    ("/ngsi-ld/v1/subscriptions/{subscriptionId}", "patch", {"NGSILD-Tenant", "Link"}),
    ("/ngsi-ld/v1/temporal/entityOperations/query", "post",
     {"lastN", "format", "options", "aggrMethods", "aggrPeriodDuration", "limit"}),
])
def test_operation_specific_parameters(path: str, method: str, expected: set[str]) -> None:
    assert _parameter_names(path, method) >= expected


def test_option_values_match_each_operation() -> None:
    def options(path: str, method: str = "post") -> set[str]:
        return set(_parameter(path, method, "options")["schema"]["items"]["enum"])

    assert options(f"{NGSI}/entities/{{entityId}}/attrs") == {"noOverwrite"}
    assert options(f"{NGSI}/entityOperations/upsert") == {"replace", "update"}
    assert options(f"{NGSI}/entityOperations/update") == {"noOverwrite"}
    assert options(f"{NGSI}/temporal/entities", "get") == {
        "sysAttrs", "normalized", "concise", "temporalValues", "aggregatedValues"}


def test_partial_success_answers_are_described() -> None:
    paths = SPEC["paths"]
    for op in ("create", "upsert", "update", "merge", "delete"):
        partial = paths[f"{NGSI}/entityOperations/{op}"]["post"]["responses"]["207"]
        schema = partial["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/BatchOperationResult"}
    for method in ("post", "patch"):
        responses = paths[f"{NGSI}/entities/{{entityId}}/attrs"][method]["responses"]
        assert {"204", "207"} <= set(responses)
        schema = responses["207"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/UpdateResult"}


TEMPORAL_READS = [(f"{NGSI}/temporal/entities", "get"),
                  (f"{NGSI}/temporal/entities/{{entityId}}", "get"),
                  (f"{NGSI}/temporal/entityOperations/query", "post")]


@pytest.mark.parametrize(("path", "method"), TEMPORAL_READS)
def test_temporal_reads_take_the_temporal_parameters_and_answer_in_pages(
        path: str, method: str) -> None:
    names = _parameter_names(path, method)
    assert names >= {"NGSILD-Tenant", "Link", "Accept", "lastN", "options", "format",
                     "aggrMethods", "aggrPeriodDuration", "lang"}
    if method == "get":  # the POST query carries the time relation in its body (temporalQ)
        assert names >= {"timerel", "timeAt", "endTimeAt", "timeproperty", "attrs"}
    responses = SPEC["paths"][path][method]["responses"]
    assert {"200", "206", "400", "404", "406"} <= set(responses)
    assert set(responses["206"]["headers"]) >= {"Content-Range", "Link"}
    assert "next" in responses["206"]["description"]


def test_temporal_query_takes_the_entity_selection_and_paging() -> None:
    assert _parameter_names(f"{NGSI}/temporal/entities", "get") >= {
        "id", "idPattern", "type", "attrs", "q", "scopeQ", "georel", "geometry",
        "coordinates", "geoproperty", "limit", "offset", "count"}


def test_subscription_shapes_carry_every_member() -> None:
    schemas = SPEC["components"]["schemas"]
    assert set(schemas["Subscription"]["properties"]) >= {
        "id", "type", "subscriptionName", "description", "entities", "watchedAttributes",
        "notificationTrigger", "q", "geoQ", "scopeQ", "lang", "datasetId", "throttling",
        "timeInterval", "expiresAt", "isActive", "jsonldContext", "notification", "status",
        "@context"}
    notification = schemas["NotificationParams"]["properties"]
    assert set(notification) >= {
        "attributes", "format", "showChanges", "sysAttrs", "endpoint", "status", "timesSent",
        "timesFailed", "lastNotification", "lastSuccess", "lastFailure"}
    for member in ("status", "timesSent", "timesFailed", "lastNotification", "lastSuccess",
                   "lastFailure"):
        assert notification[member]["readOnly"] is True, member
    assert set(schemas["Endpoint"]["properties"]) == {"uri", "accept", "receiverInfo",
                                                      "notifierInfo"}
    assert set(schemas["Notification"]["properties"]) >= {"id", "type", "subscriptionId",
                                                          "notifiedAt", "data"}


def test_notifications_are_described_as_a_callback_of_create_subscription() -> None:
    create = SPEC["paths"][f"{NGSI}/subscriptions"]["post"]
    ((expression, item),) = create["callbacks"]["notification"].items()
    assert expression == "{$request.body#/notification/endpoint/uri}"
    schema = item["post"]["requestBody"]["content"][JSON]["schema"]
    assert schema == {"$ref": "#/components/schemas/Notification"}


# -- schemas and examples ------------------------------------------------------------------

def test_the_entity_schema_knows_the_eight_attribute_kinds() -> None:
    schemas = SPEC["components"]["schemas"]
    kinds = [ref["$ref"].rsplit("/", 1)[1] for ref in schemas["EntityAttribute"]["oneOf"]]
    assert kinds == ["Property", "Relationship", "GeoProperty", "LanguageProperty",
                     "VocabProperty", "JsonProperty", "ListProperty", "ListRelationship"]
    assert schemas["Entity"]["additionalProperties"] == {
        "$ref": "#/components/schemas/AttributeOrInstances"}


def test_the_temporal_representation_schema_offers_the_four_forms() -> None:
    forms = SPEC["components"]["schemas"]["TemporalEntityRepresentation"]["anyOf"]
    assert [ref["$ref"].rsplit("/", 1)[1] for ref in forms] == [
        "TemporalEntity", "TemporalEntityConcise", "TemporalEntityTemporalValues",
        "TemporalEntityAggregated"]


def test_every_example_matches_its_schema() -> None:
    checked = 0
    for where, schema, value in _media_examples():
        errors = [e.message for e in _validator(schema).iter_errors(value)]
        assert errors == [], where
        checked += 1
    assert checked >= 60


_SUBSCRIPTION = {"entities": [{"type": "Streetlight"}],
                 "notification": {"endpoint": {"uri": "http://lighting.comune.example/n"}}}


@pytest.mark.parametrize(("schema", "bad", "endpoint"), [
    ("Entity", {"id": "urn:ngsi-ld:Streetlight:MI-0002", "type": "Streetlight",
                "powerState": {"type": "Property"}}, "entities"),       # no value
    ("Entity", {"id": "urn:ngsi-ld:Streetlight:MI-0002", "type": "Streetlight",
                "refGroup": {"type": "Link", "object": "urn:x"}}, "entities"),  # unknown kind
    ("Entity", {"type": "Streetlight"}, "entities"),                        # no id
    ("BatchOperationResult", {"success": []}, None),                        # no errors
    ("Query", {"type": "Subscription"}, "entityOperations/query"),
    ("Subscription", {"notification": _SUBSCRIPTION["notification"]},       # selects nothing
     "subscriptions"),
    ("Subscription", {**_SUBSCRIPTION, "watchedAttribute": ["powerState"]},  # misspelt
     "subscriptions"),
    ("Subscription", {**_SUBSCRIPTION, "timeInterval": 60,                  # periodic + change
                      "watchedAttributes": ["powerState"]}, "subscriptions"),
    ("Subscription", {**_SUBSCRIPTION, "notificationTrigger": ["entityRenamed"]},
     "subscriptions"),
    ("Subscription", {**_SUBSCRIPTION, "notification": {"endpoint": {"uri": "ftp://x.y/z"}}},
     "subscriptions"),
    ("Subscription", {**_SUBSCRIPTION, "notification": {"endpoint": {
        "uri": "mqtt://mqtt.example/t", "notifierInfo": [{"key": "MQTT-QoS", "value": "3"}]}}},
     "subscriptions"),
    ("Subscription", {**_SUBSCRIPTION, "entities": [{"type": "Streetlight", "id": "urn:a:b",
                                                     "idPattern": ".*"}]}, "subscriptions"),
    ("TemporalEntityInput", {"id": "urn:ngsi-ld:Meter:1", "type": "Meter",       # no time
                             "energy": {"type": "Property", "value": 1.0}}, "temporal/entities"),
])
def test_schemas_reject_what_the_broker_rejects(client: TestClient, schema: str, bad: Any,
                                                endpoint: str | None) -> None:
    assert not _schema(schema).is_valid(bad)
    if endpoint is not None:
        response = client.post(f"{NGSI}/{endpoint}", json=bad)
        assert response.status_code == 400, response.text


def test_the_streetlight_example_is_the_milan_one() -> None:
    light = _example("Streetlight")
    assert light["id"] == "urn:ngsi-ld:Streetlight:MI-0001"
    assert light["location"]["value"]["coordinates"] == [9.19, 45.46]
    assert {"powerState", "illuminanceLevel"} <= set(light)


# -- the examples against the real app -------------------------------------------------------

def _request_examples() -> Iterator[Any]:
    for path, method, operation in _operations():
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            for name in media.get("examples", {}):
                yield pytest.param(path, method, media_type, name,
                                   id=f"{method.upper()} {path} {media_type} {name}")


# What an example acts on must exist first; it is made with an example of this description.
_STREETLIGHT = ("post", f"{NGSI}/entities", "Streetlight")
_CITY = ("post", f"{NGSI}/entityOperations/create", "CityBatch")
_SUBSCRIBED = ("post", f"{NGSI}/subscriptions", "LightsOffSubscription")
_HISTORY = ("post", f"{NGSI}/temporal/entities", "TrafficHistory")
_NEEDS = {
    f"{NGSI}/entities/{{entityId}}": _STREETLIGHT,
    f"{NGSI}/entities/{{entityId}}/attrs": _STREETLIGHT,
    f"{NGSI}/entities/{{entityId}}/attrs/{{attrId}}": _STREETLIGHT,
    f"{NGSI}/entityOperations/update": _CITY,
    f"{NGSI}/entityOperations/merge": _CITY,
    f"{NGSI}/entityOperations/delete": _CITY,
    f"{NGSI}/subscriptions/{{subscriptionId}}": _SUBSCRIBED,
    f"{NGSI}/temporal/entities/{{entityId}}/attrs": _HISTORY,
    f"{NGSI}/temporal/entities/{{entityId}}/attrs/{{attrId}}/{{instanceId}}": _HISTORY,
}


def _path_values(path: str, method: str) -> dict[str, str]:
    """The documented example of each path parameter."""
    params = map(_resolve, SPEC["paths"][path][method]["parameters"])
    return {p["name"]: p["example"] for p in params if p["in"] == "path"}


def _send(client: TestClient, method: str, path: str, media_type: str, example: str,
          values: dict[str, str] | None = None) -> Any:
    media = SPEC["paths"][path][method]["requestBody"]["content"][media_type]
    value = _resolve(media["examples"][example])["value"]
    filled = {**_path_values(path, method), **(values or {})}
    url = re.sub(r"\{(\w+)\}", lambda m: quote(filled[m.group(1)], safe=":"), path)
    return client.request(method.upper(), url, content=orjson.dumps(value),
                          headers={"Content-Type": media_type})


def _accepted(status: int) -> bool:
    # 207 is a partial failure: an example the broker only half applies is not a good one.
    return 200 <= status < 300 and status != 207


@pytest.mark.parametrize(("path", "method", "media_type", "example"), list(_request_examples()))
def test_every_request_example_is_accepted_by_the_app(
        client: TestClient, path: str, method: str, media_type: str, example: str) -> None:
    values: dict[str, str] = {}
    if path in _NEEDS:
        need_method, need_path, need_example = _NEEDS[path]
        made = _send(client, need_method, need_path, JSON, need_example)
        assert _accepted(made.status_code), made.text
    if "{instanceId}" in path:  # instance ids are the broker's: read one back
        known = _path_values(path, method)
        history = client.get(f"{NGSI}/temporal/entities/{known['entityId']}").json()
        values["instanceId"] = history[known["attrId"]][0]["instanceId"]
    response = _send(client, method, path, media_type, example, values)
    assert _accepted(response.status_code), response.text


_DELIVERY = {"status", "timesSent", "timesFailed", "lastNotification", "lastSuccess",
             "lastFailure"}


def _without_delivery(subscription: dict[str, Any]) -> dict[str, Any]:
    notification = {k: v for k, v in subscription["notification"].items()
                    if k not in _DELIVERY}
    return {**subscription, "notification": notification}


def test_subscription_examples_read_back_as_documented(client: TestClient) -> None:
    create = SPEC["paths"][f"{NGSI}/subscriptions"]["post"]["requestBody"]["content"][JSON]
    for name in create["examples"]:
        response = _send(client, "post", f"{NGSI}/subscriptions", JSON, name)
        assert response.status_code == 201, response.text
        read = client.get(response.headers["location"])
        assert read.status_code == 200, read.text
        errors = [e.message for e in _schema("Subscription").iter_errors(read.json())]
        assert errors == [], name
    shown = client.get(f"{NGSI}/subscriptions/{_example('LightsOffSubscription')['id']}")
    assert (_without_delivery(shown.json())
            == _without_delivery(_example("LightsOffSubscriptionRead")))
    listed = {s["id"]: _without_delivery(s) for s in client.get(f"{NGSI}/subscriptions").json()}
    for documented in _example("Subscriptions"):
        assert listed[documented["id"]] == _without_delivery(documented)


def test_the_notification_example_is_what_a_subscriber_receives(client: TestClient) -> None:
    with http_receiver() as receiver:
        subscription = _example("LightsOffSubscription")
        subscription["notification"]["endpoint"]["uri"] = receiver.url
        assert client.post(f"{NGSI}/subscriptions", json=subscription).status_code == 201
        assert client.post(f"{NGSI}/entities", json=_example("Streetlight")).status_code == 201
        switched = client.patch(
            f"{NGSI}/entities/{_example('Streetlight')['id']}/attrs/powerState",
            json=_example("PowerStateFragment"))
        assert switched.status_code == 204, switched.text
        received = receiver.next()
    documented = _example("LightsOffNotification")
    assert received.headers["x-api-key"] == "lighting-2026"
    assert received.body["subscriptionId"] == documented["subscriptionId"]
    assert received.body["data"] == documented["data"]
    assert _schema("Notification").is_valid(received.body)


def _without_instance_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_instance_ids(v) for k, v in value.items() if k != "instanceId"}
    if isinstance(value, list):
        return [_without_instance_ids(v) for v in value]
    return value


def test_temporal_examples_are_what_the_app_answers(client: TestClient) -> None:
    history = _example("TrafficHistory")
    assert client.post(f"{NGSI}/temporal/entities", json=history).status_code == 201
    url = f"{NGSI}/temporal/entities/{history['id']}"
    normalized = client.get(url)
    assert normalized.status_code == 200, normalized.text
    assert (_without_instance_ids(normalized.json())
            == _without_instance_ids(_example("TrafficHistoryNormalized")))
    concise = client.get(url, params={"format": "concise"}).json()
    assert _without_instance_ids(concise) == _without_instance_ids(
        _example("TrafficHistoryConcise"))
    values = client.get(url, params={"format": "temporalValues"}).json()
    assert values == _example("TrafficHistoryTemporalValues")
    # The aggregated example's summary is the query that gives it.
    asked = dict(parse_qsl(SPEC["components"]["examples"]["TrafficHistoryAggregated"]
                           ["summary"]))
    aggregated = client.get(url, params=asked)
    assert aggregated.status_code == 200, aggregated.text
    assert aggregated.json() == _example("TrafficHistoryAggregated")
    for body in (normalized.json(), concise, values, aggregated.json()):
        assert _schema("TemporalEntityRepresentation").is_valid(body)


def test_the_deletion_marker_example_is_what_the_app_records(client: TestClient) -> None:
    history = _example("TrafficHistory")
    assert client.post(f"{NGSI}/temporal/entities", json=history).status_code == 201
    assert client.delete(f"{NGSI}/entities/{history['id']}/attrs/intensity").status_code == 204
    shown = client.get(f"{NGSI}/temporal/entities/{history['id']}",
                       params={"attrs": "intensity"}).json()["intensity"]
    kept, marker = _without_instance_ids(_example("CounterRemoved")["intensity"])
    assert kept in _without_instance_ids(shown)
    (recorded,) = [i for i in _without_instance_ids(shown) if "deletedAt" in i]
    assert set(recorded) == set(marker)
    assert recorded["value"] == marker["value"] == "urn:ngsi-ld:null"
    assert _schema("TemporalEntity").is_valid({"id": history["id"], "type": history["type"],
                                               "intensity": shown})


def test_the_first_page_example_and_its_content_range(settings: Settings) -> None:
    with TestClient(create_app(settings.replace(max_history_instances=2))) as client:
        assert client.post(f"{NGSI}/temporal/entities",
                           json=_example("TrafficHistory")).status_code == 201
        page = client.get(f"{NGSI}/temporal/entities", params={
            "type": "TrafficFlowObserved", "timerel": "after", "timeAt": "2026-11-21T06:00:00Z"})
    assert page.status_code == 206, page.text
    assert page.headers["content-range"] == SPEC["components"]["headers"]["ContentRange"][
        "example"]
    assert 'rel="next"' in page.headers["link"]
    assert _without_instance_ids(page.json()) == _without_instance_ids(
        _example("TrafficHistoriesFirstPage"))


def test_every_documented_temporal_choice_is_accepted(client: TestClient) -> None:
    history = _example("TrafficHistory")
    assert client.post(f"{NGSI}/temporal/entities", json=history).status_code == 201
    path = f"{NGSI}/temporal/entities/{{entityId}}"
    url = f"{NGSI}/temporal/entities/{history['id']}"
    interval = {"timeAt": _parameter(path, "get", "timeAt")["example"],
                "endTimeAt": _parameter(path, "get", "endTimeAt")["example"]}
    choices: list[dict[str, str]] = []
    for timerel in _parameter(path, "get", "timerel")["schema"]["enum"]:
        choices.append({"timerel": timerel, "timeAt": interval["timeAt"]}
                       | ({"endTimeAt": interval["endTimeAt"]} if timerel == "between" else {}))
    choices += [{"timeproperty": p}
                for p in _parameter(path, "get", "timeproperty")["schema"]["enum"]]
    aggregation = {"aggrMethods": "totalCount", "aggrPeriodDuration": "PT1H"}
    for fmt in _parameter(path, "get", "format")["schema"]["enum"]:
        choices.append({"format": fmt} | (aggregation if fmt == "aggregatedValues" else {}))
    for option in _parameter(path, "get", "options")["schema"]["items"]["enum"]:
        choices.append({"options": option}
                       | (aggregation if option == "aggregatedValues" else {}))
    choices += [{"format": "aggregatedValues", "aggrMethods": method}
                for method in _parameter(path, "get", "aggrMethods")["schema"]["items"]["enum"]]
    choices.append({"lastN": str(_parameter(path, "get", "lastN")["example"])})
    for params in choices:
        response = client.get(url, params=params)
        assert response.status_code == 200, (params, response.text)
