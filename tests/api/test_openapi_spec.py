"""The OpenAPI description: a valid 3.1 document, in step with the routes the app serves,
with examples that match their own schemas."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.routing import Route

from sinergia.api import batch, contexts, discovery, docs, entities
from sinergia.api.openapi import TAGS, build_spec
from sinergia.api.openapi_schemas import error_types
from sinergia.ngsild.errors import ERROR_BASE

METHODS = {"get", "put", "post", "patch", "delete"}
SPEC = build_spec("9.9.9-test")
SPEC_URI = "urn:sinergia:openapi"

# Starlette's path parameter names -> the ones the spec shows to clients.
_PARAM_NAMES = {"entity_id": "entityId", "id": "contextId", "type": "type", "attr": "attr"}


def _spec_path(starlette_path: str) -> str:
    def rename(match: re.Match[str]) -> str:
        name = match.group(2)
        if name == "attr" and match.group(1) == "/attrs/":
            return match.group(1) + "{attrId}"
        return match.group(1) + "{" + _PARAM_NAMES[name] + "}"

    return re.sub(r"(/[^/{]*/?)\{(\w+)(?::\w+)?\}", rename, starlette_path)


def _app_operations() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for module in (entities, batch, discovery, contexts, docs):
        for route in module.routes:
            if not isinstance(route, Route):  # Mounts serve static files, not API calls
                continue
            for method in route.methods or ():
                if method != "HEAD":  # Starlette adds HEAD to every GET by itself
                    found.add((_spec_path(route.path), method.lower()))
    return found


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


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


def _media_examples() -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(where, schema, example value) for each example attached to a media type."""
    for path, method, operation in _operations():
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


# -- the document -------------------------------------------------------------------------

def test_the_document_is_valid_openapi_3_1() -> None:
    assert SPEC["openapi"].startswith("3.1.")
    validate(SPEC)  # raises on any violation


def test_the_document_is_plain_json_and_carries_the_version() -> None:
    assert orjson.loads(orjson.dumps(SPEC)) == SPEC
    assert SPEC["info"]["version"] == "9.9.9-test"
    assert build_spec("1.2.3")["info"]["version"] == "1.2.3"


def test_every_route_is_described_and_nothing_else() -> None:
    described = {(path, method) for path, method, _ in _operations()}
    served = _app_operations()
    assert served - described == set(), "routes missing from the OpenAPI description"
    assert described - served == set(), "described operations that no route serves"


def test_path_parameters_use_the_documented_names() -> None:
    names = {name for path in SPEC["paths"] for name in re.findall(r"\{(\w+)\}", path)}
    assert names == {"entityId", "attrId", "type", "attr", "contextId"}


def test_route_path_conversion() -> None:
    base = "/ngsi-ld/v1"
    assert (_spec_path(f"{base}/entities/{{entity_id:path}}/attrs/{{attr}}")
            == f"{base}/entities/{{entityId}}/attrs/{{attrId}}")
    assert _spec_path(f"{base}/attributes/{{attr:path}}") == f"{base}/attributes/{{attr}}"
    assert (_spec_path(f"{base}/jsonldContexts/{{id:path}}")
            == f"{base}/jsonldContexts/{{contextId}}")


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
    for path, method, operation in _operations():
        where = f"{method.upper()} {path}"
        ids.append(operation["operationId"])
        assert operation["summary"].strip(), where
        assert len(operation["description"]) >= 40, where
        assert len(operation["tags"]) == 1 and operation["tags"][0] in TAGS, where
        assert _has_message_example(operation), f"{where} has no example"
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    assert {tag["name"] for tag in SPEC["tags"]} == {
        "Entities", "Attributes", "Batch", "Discovery", "Contexts", "Service"}


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


def test_query_entities_takes_every_standard_parameter() -> None:
    names = _parameter_names("/ngsi-ld/v1/entities", "get")
    assert names >= {"NGSILD-Tenant", "Link", "Accept", "id", "idPattern", "type", "attrs",
                     "pick", "omit", "q", "scopeQ", "georel", "geometry", "coordinates",
                     "geoproperty", "geometryProperty", "lang", "datasetId", "options",
                     "format", "limit", "offset", "count"}
    ok = SPEC["paths"]["/ngsi-ld/v1/entities"]["get"]["responses"]["200"]
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
])
def test_operation_specific_parameters(path: str, method: str, expected: set[str]) -> None:
    assert _parameter_names(path, method) >= expected


def test_option_values_match_each_operation() -> None:
    def options(path: str) -> set[str]:
        for param in SPEC["paths"][path]["post"]["parameters"]:
            resolved = _resolve(param)
            if resolved["name"] == "options":
                return set(resolved["schema"]["items"]["enum"])
        raise AssertionError(f"no options on {path}")

    assert options("/ngsi-ld/v1/entities/{entityId}/attrs") == {"noOverwrite"}
    assert options("/ngsi-ld/v1/entityOperations/upsert") == {"replace", "update"}
    assert options("/ngsi-ld/v1/entityOperations/update") == {"noOverwrite"}


def test_partial_success_answers_are_described() -> None:
    paths = SPEC["paths"]
    for op in ("create", "upsert", "update", "merge", "delete"):
        partial = paths[f"/ngsi-ld/v1/entityOperations/{op}"]["post"]["responses"]["207"]
        schema = partial["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/BatchOperationResult"}
    for method in ("post", "patch"):
        responses = paths["/ngsi-ld/v1/entities/{entityId}/attrs"][method]["responses"]
        assert {"204", "207"} <= set(responses)
        schema = responses["207"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/UpdateResult"}


# -- schemas and examples ------------------------------------------------------------------

def test_the_entity_schema_knows_the_eight_attribute_kinds() -> None:
    schemas = SPEC["components"]["schemas"]
    kinds = [ref["$ref"].rsplit("/", 1)[1] for ref in schemas["EntityAttribute"]["oneOf"]]
    assert kinds == ["Property", "Relationship", "GeoProperty", "LanguageProperty",
                     "VocabProperty", "JsonProperty", "ListProperty", "ListRelationship"]
    assert schemas["Entity"]["additionalProperties"] == {
        "$ref": "#/components/schemas/AttributeOrInstances"}


def test_every_example_matches_its_schema() -> None:
    checked = 0
    for where, schema, value in _media_examples():
        errors = [e.message for e in _validator(schema).iter_errors(value)]
        assert errors == [], where
        checked += 1
    assert checked >= 30


@pytest.mark.parametrize(("schema", "bad"), [
    ("Entity", {"id": "urn:ngsi-ld:Streetlight:MI-0002", "type": "Streetlight",
                "powerState": {"type": "Property"}}),                    # no value
    ("Entity", {"id": "urn:ngsi-ld:Streetlight:MI-0002", "type": "Streetlight",
                "refGroup": {"type": "Link", "object": "urn:x"}}),       # unknown kind
    ("Entity", {"type": "Streetlight"}),                                   # no id
    ("BatchOperationResult", {"success": []}),                             # no errors
    ("Query", {"type": "Subscription"}),
])
def test_schemas_reject_what_the_broker_rejects(schema: str, bad: Any) -> None:
    validator = _validator({"$ref": f"#/components/schemas/{schema}"})
    assert not validator.is_valid(bad)


def test_the_streetlight_example_is_the_milan_one() -> None:
    light = SPEC["components"]["examples"]["Streetlight"]["value"]
    assert light["id"] == "urn:ngsi-ld:Streetlight:MI-0001"
    assert light["location"]["value"]["coordinates"] == [9.19, 45.46]
    assert {"powerState", "illuminanceLevel"} <= set(light)
