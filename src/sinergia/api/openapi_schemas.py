"""The data shapes (``components.schemas``) and the Smart City examples
(``components.examples``) of Sinergia's OpenAPI description.

Schemas are JSON Schema 2020-12, as OpenAPI 3.1 wants them, so the examples can be checked
against them by any JSON Schema validator (the tests do)."""

from __future__ import annotations

from typing import Any, Final

from sinergia.api.openapi_builders import STRINGS, TIME, URI, example, ref
from sinergia.ngsild import errors
from sinergia.ngsild.model import CORE_CONTEXT_URL

STREETLIGHT_ID: Final = "urn:ngsi-ld:Streetlight:MI-0001"
TRAFFIC_ID: Final = "urn:ngsi-ld:TrafficFlowObserved:MI-Viale-Monza-01"
LINK_EXAMPLE: Final = (f'<{CORE_CONTEXT_URL}>; rel="http://www.w3.org/ns/json-ld#context"; '
                       'type="application/ld+json"')


def error_types() -> list[tuple[str, int, str]]:
    """(name, HTTP status, title) of every problem type the broker answers with, read from
    the error classes themselves so the description cannot drift from the code."""
    seen: dict[str, tuple[str, int, str]] = {}
    # Breadth first, so a base class names a type before its specialisations do.
    classes: list[type[errors.NgsiLdError]] = [errors.NgsiLdError]
    for cls in classes:
        classes.extend(cls.__subclasses__())
        seen.setdefault(cls.name, (cls.name, cls.status, cls.title))
    return sorted(seen.values(), key=lambda item: (item[1], item[0]))


# -- attributes ----------------------------------------------------------------------------

_RESERVED: Final[dict[str, Any]] = {
    "observedAt": {**TIME, "description": "When the value was observed (UTC)."},
    "unitCode": {"type": "string", "description": "UN/CEFACT unit code, e.g. `C62` (no unit), "
                 "`MTR` (metre), `KWH` (kilowatt hour)."},
    "datasetId": {**URI, "description": "Tells apart several instances of the same "
                  "attribute (e.g. one per data source); absent on the default instance."},
    "createdAt": {**TIME, "readOnly": True, "description": "Kept by the broker; shown "
                  "with `options=sysAttrs`."},
    "modifiedAt": {**TIME, "readOnly": True, "description": "Kept by the broker; shown "
                   "with `options=sysAttrs`."},
    "instanceId": {**URI, "readOnly": True, "description": "Names one instance of an "
                   "attribute's history (temporal representation)."},
}

ATTRIBUTE_KINDS: Final[dict[str, tuple[str, dict[str, Any], str]]] = {
    "Property": ("value", {"description": "Any JSON value: number, text, boolean, object."},
                 "A measured or declared value, e.g. a lamp's power state."),
    "Relationship": ("object", {"oneOf": [URI, {"type": "array", "items": URI}]},
                     "A link to another entity, e.g. the cabinet feeding a streetlight."),
    "GeoProperty": ("value", ref("Geometry"),
                    "A place, as a GeoJSON geometry in WGS84 (longitude, latitude)."),
    "LanguageProperty": ("languageMap", {"type": "object", "additionalProperties": {
        "oneOf": [{"type": "string"}, STRINGS]}},
        "Text in several languages, keyed by language tag (`it`, `en`, ...)."),
    "VocabProperty": ("vocab", {"oneOf": [{"type": "string"}, STRINGS]},
                      "A term of a controlled vocabulary, expanded with the @context."),
    "JsonProperty": ("json", {"oneOf": [{"type": "object"}, {"type": "array"}]},
                     "A JSON document stored verbatim and never interpreted as JSON-LD."),
    "ListProperty": ("valueList", {"type": "array"}, "An ordered list of values."),
    "ListRelationship": ("objectList", {"type": "array", "items": {"oneOf": [
        URI, {"type": "object", "required": ["object"], "properties": {"object": URI}}]}},
        "An ordered list of links to other entities, e.g. the stops of a bus line."),
}


def _previous_members() -> dict[str, Any]:
    """Notifications of a subscription with ``showChanges`` add the value before the change,
    named after the old instance's value member (a kind change shows the old kind's one)."""
    members = dict.fromkeys(member for member, _, _ in ATTRIBUTE_KINDS.values())
    return {f"previous{m[0].upper()}{m[1:]}": {
        "readOnly": True, "description": "Only in notifications of subscriptions with "
        "`showChanges`: the value before the change."} for m in members}


def _attribute_kind(kind: str) -> dict[str, Any]:
    member, member_schema, description = ATTRIBUTE_KINDS[kind]
    properties: dict[str, Any] = {"type": {"const": kind}, member: member_schema, **_RESERVED,
                                  **_previous_members()}
    if kind == "Relationship":
        properties["objectType"] = {"oneOf": [{"type": "string"}, STRINGS]}
    return {"type": "object", "description": description + " Any other member is a "
            "sub-attribute (an attribute about this attribute).",
            "required": ["type", member], "properties": properties,
            "additionalProperties": ref("AttributeOrInstances")}


def _attribute_schemas() -> dict[str, Any]:
    out: dict[str, Any] = {kind: _attribute_kind(kind) for kind in ATTRIBUTE_KINDS}
    out["EntityAttribute"] = {
        "description": "One attribute instance in normalized form; its `type` says which of "
                       "the eight kinds it is.",
        "oneOf": [ref(kind) for kind in ATTRIBUTE_KINDS]}
    out["AttributeOrInstances"] = {
        "description": "An attribute, or an array of its instances (each with a distinct "
                       "`datasetId`; at most one without, the default instance).",
        "oneOf": [ref("EntityAttribute"),
                  {"type": "array", "minItems": 1, "items": ref("EntityAttribute")}]}
    out["ConciseAttribute"] = {
        "description": "Concise form, accepted on input: a bare value (`\"on\"`), or an "
                       "object without `type` whose members say the kind (`value`, "
                       "`object`, `languageMap`, ...). GeoJSON values become GeoProperties.",
        "not": {"type": "null"}}
    return out


# -- entities ------------------------------------------------------------------------------

def entity_members() -> dict[str, Any]:
    """The members of an entity that are not attributes, in every representation (the
    temporal ones too)."""
    type_names = {"oneOf": [{"type": "string"}, {**STRINGS, "minItems": 1}],
                  "description": "One type name or several, e.g. `Streetlight`."}
    scope = {"oneOf": [{"type": "string"}, STRINGS],
             "description": "Hierarchical scopes, e.g. `/Milano/Municipio1`."}
    return {
        "id": {**URI, "description": "A URI, by convention "
               "`urn:ngsi-ld:<Type>:<local id>`."},
        "type": type_names, "scope": scope,
        "createdAt": _RESERVED["createdAt"], "modifiedAt": _RESERVED["modifiedAt"],
        "@context": ref("LdContext")}


def _entity_schemas() -> dict[str, Any]:
    members = entity_members()
    any_value = {"description": "An attribute in the chosen representation."}
    return {
        "Entity": {
            "type": "object", "required": ["id", "type"], "properties": members,
            "description": "An entity in normalized form: every other member is an attribute "
                           "(`location`, `observationSpace` and `operationSpace` are "
                           "GeoProperties by convention).",
            "additionalProperties": ref("AttributeOrInstances")},
        "EntityConcise": {
            "type": "object", "required": ["id", "type"], "properties": members,
            "description": "Concise form (`format=concise`): attribute `type` left out where "
                           "it can be inferred, `{\"value\": ...}` objects reduced to the bare "
                           "value when nothing else is attached. Accepted on input too.",
            "additionalProperties": any_value},
        "EntityKeyValues": {
            "type": "object", "required": ["id", "type"], "properties": members,
            "description": "Simplified form (`format=keyValues`): each attribute is just its "
                           "value; a relationship is the target id. It drops metadata such "
                           "as `observedAt`; sent back, it is read as concise.",
            "additionalProperties": any_value},
        "EntityRepresentation": {
            "description": "An entity in the representation asked with `format`/`options`.",
            "anyOf": [ref("Entity"), ref("EntityConcise"), ref("EntityKeyValues")]},
        "EntityInput": {
            "description": "An entity to create or replace, normalized or concise.",
            "anyOf": [ref("Entity"), ref("EntityConcise")]},
        "EntityFragment": {
            "type": "object", "properties": members,
            "description": "Part of an entity (merge, batch update): only the attributes "
                           "to change. In a merge, the value `urn:ngsi-ld:null` deletes.",
            "additionalProperties": {"anyOf": [ref("AttributeOrInstances"),
                                               ref("ConciseAttribute")]}},
        "EntityAttributes": {
            "type": "object", "properties": {"@context": ref("LdContext")},
            "description": "Attributes keyed by name, normalized or concise.",
            "additionalProperties": {"anyOf": [ref("AttributeOrInstances"),
                                               ref("ConciseAttribute")]}},
        "AttributeFragment": {
            "type": "object", "properties": {"@context": ref("LdContext")},
            "description": "The members of one attribute to change (e.g. `{\"value\": "
                           "\"off\"}`); `datasetId` chooses the instance.",
            "additionalProperties": True},
        "LdContext": {
            "description": "A JSON-LD @context: a URL, an object of term definitions, or an "
                           "array of both.",
            "oneOf": [{"type": "string"}, {"type": "object"}, {"type": "array"}]},
    }


# -- GeoJSON, queries, results, discovery, errors ------------------------------------------

def _geo_schemas() -> dict[str, Any]:
    geometry_types = ["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                      "MultiPolygon"]
    return {
        "Geometry": {
            "type": "object", "required": ["type", "coordinates"],
            "description": "A GeoJSON geometry (RFC 7946), longitude before latitude.",
            "properties": {"type": {"enum": geometry_types}, "coordinates": {"type": "array"}}},
        "Feature": {
            "type": "object", "required": ["type", "geometry", "properties"],
            "description": "An entity as a GeoJSON Feature (`Accept: application/geo+json`); "
                           "the geometry comes from `location` or `geometryProperty`.",
            "properties": {"id": URI, "type": {"const": "Feature"},
                           "geometry": {"oneOf": [ref("Geometry"), {"type": "null"}]},
                           "properties": {"type": "object"},
                           "@context": ref("LdContext")}},
        "FeatureCollection": {
            "type": "object", "required": ["type", "features"],
            "properties": {"type": {"const": "FeatureCollection"},
                           "features": {"type": "array", "items": ref("Feature")},
                           "@context": ref("LdContext")}},
        "GeoQuery": {
            "type": "object", "required": ["georel", "geometry", "coordinates"],
            "properties": {
                "georel": {"type": "string", "examples": ["near;maxDistance==500", "within"]},
                "geometry": {"enum": geometry_types},
                "coordinates": {"oneOf": [{"type": "array"}, {"type": "string"}]},
                "geoproperty": {"type": "string", "default": "location"}}},
    }


def _query_schemas() -> dict[str, Any]:
    return {
        "EntitySelector": {
            "type": "object",
            "properties": {"id": URI, "idPattern": {"type": "string", "format": "regex"},
                           "type": {"type": "string"}}},
        "Query": {
            "type": "object", "required": ["type"],
            "description": "The body of POST /entityOperations/query: the same selection as "
                           "the query parameters of GET /entities, as JSON.",
            "properties": {
                "type": {"const": "Query"},
                "entities": {"type": "array", "items": ref("EntitySelector")},
                "attrs": STRINGS, "q": {"type": "string"}, "geoQ": ref("GeoQuery"),
                "scopeQ": {"type": "string"}, "lang": {"type": "string"},
                "@context": ref("LdContext")}},
        "BatchEntityError": {
            "type": "object", "required": ["entityId", "error"],
            "properties": {"entityId": {"type": "string"}, "error": ref("ProblemDetails")}},
        "BatchOperationResult": {
            "type": "object", "required": ["success", "errors"],
            "description": "Partial success of a batch: ids that were applied, and why the "
                           "others were not.",
            "properties": {"success": {"type": "array", "items": URI},
                           "errors": {"type": "array", "items": ref("BatchEntityError")}}},
        "NotUpdatedDetails": {
            "type": "object", "required": ["attributeName", "reason"],
            "properties": {"attributeName": {"type": "string"}, "reason": {"type": "string"}}},
        "UpdateResult": {
            "type": "object", "required": ["updated", "notUpdated"],
            "properties": {"updated": STRINGS,
                           "notUpdated": {"type": "array", "items": ref("NotUpdatedDetails")}}},
        "EntityIdList": {"type": "array", "items": URI},
    }


def _discovery_schemas() -> dict[str, Any]:
    def typed(kind: str, required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "required": ["id", "type", *required],
                "properties": {"id": {"type": "string"}, "type": {"const": kind},
                               **properties}}

    return {
        "EntityTypeList": typed("EntityTypeList", ["typeList"], {"typeList": STRINGS}),
        "EntityType": typed("EntityType", ["typeName", "attributeNames"],
                            {"typeName": {"type": "string"}, "attributeNames": STRINGS}),
        "EntityTypeInfo": typed("EntityTypeInfo", ["typeName", "entityCount"], {
            "typeName": {"type": "string"}, "entityCount": {"type": "integer", "minimum": 0},
            "attributeDetails": {"type": "array", "items": ref("Attribute")}}),
        "AttributeList": typed("AttributeList", ["attributeList"],
                               {"attributeList": STRINGS}),
        "Attribute": typed("Attribute", ["attributeName"], {
            "attributeName": {"type": "string"},
            "attributeCount": {"type": "integer", "minimum": 0},
            "attributeTypes": {"type": "array", "items": {"enum": list(ATTRIBUTE_KINDS)}},
            "typeNames": STRINGS}),
    }


def _service_schemas() -> dict[str, Any]:
    problem_list = "\n".join(f"- `{name}` ({status}): {title}"
                             for name, status, title in error_types())
    return {
        "ProblemDetails": {
            "type": "object", "required": ["type", "title"],
            "description": "Every error (RFC 9457). `type` is "
                           "`https://uri.etsi.org/ngsi-ld/errors/<Name>`, one of:\n\n"
                           + problem_list,
            "properties": {"type": URI, "title": {"type": "string"},
                           "detail": {"type": "string", "description": "What was wrong and "
                                      "where, in words meant for the person who sent it."}}},
        "JsonldContextInfo": {
            "type": "object", "required": ["URL", "kind"],
            "properties": {"URL": URI, "localId": {"type": "string"},
                           "kind": {"enum": ["hosted", "cached", "implicitlycreated"]},
                           "createdAt": TIME, "lastUsage": TIME,
                           "numberOfHits": {"type": "integer", "minimum": 0}}},
        "JsonldContextDocument": {
            "type": "object", "required": ["@context"],
            "properties": {"@context": ref("LdContext")}},
        "ServiceVersion": {
            "type": "object", "required": ["name", "version"],
            "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                           "ngsiLd": {"type": "string"}, "docs": {"type": "string"}}},
    }


def schemas() -> dict[str, Any]:
    return {**_attribute_schemas(), **_entity_schemas(), **_geo_schemas(), **_query_schemas(),
            **_discovery_schemas(), **_service_schemas()}


# -- examples ------------------------------------------------------------------------------

_LOCATION: Final = {"type": "GeoProperty",
                    "value": {"type": "Point", "coordinates": [9.19, 45.46]}}


def _streetlight() -> dict[str, Any]:
    return {
        "id": STREETLIGHT_ID, "type": "Streetlight", "scope": "/Milano/Municipio1",
        "powerState": {"type": "Property", "value": "on",
                       "observedAt": "2026-11-21T18:00:00Z"},
        "illuminanceLevel": {"type": "Property", "value": 0.6, "unitCode": "C62"},
        "refStreetlightGroup": {"type": "Relationship",
                                "object": "urn:ngsi-ld:StreetlightGroup:MI-G01"},
        "location": _LOCATION,
    }


def _traffic_flow() -> dict[str, Any]:
    return {
        "id": TRAFFIC_ID, "type": "TrafficFlowObserved",
        "intensity": {"type": "Property", "value": 1240, "unitCode": "E50",
                      "observedAt": "2026-11-21T08:00:00Z"},
        "averageVehicleSpeed": {"type": "Property", "value": 31.5, "unitCode": "KMH"},
        "congested": {"type": "Property", "value": False},
        "name": {"type": "LanguageProperty",
                 "languageMap": {"it": "Viale Monza, direzione centro",
                                 "en": "Viale Monza, towards the centre"}},
        "location": {"type": "GeoProperty", "value": {
            "type": "LineString", "coordinates": [[9.2141, 45.5006], [9.2102, 45.4951]]}},
    }


def _problem(name: str, detail: str) -> dict[str, Any]:
    titles = {n: t for n, _, t in error_types()}
    return {"type": errors.ERROR_BASE + name, "title": titles[name], "detail": detail}


def examples() -> dict[str, Any]:
    light = _streetlight()
    return {
        "Streetlight": example("A Milan streetlight (normalized)", light),
        "StreetlightLd": example("The same streetlight as JSON-LD, @context in the body",
                                 {**light, "@context": [CORE_CONTEXT_URL]}),
        "StreetlightConcise": example("The streetlight in concise form", {
            "id": STREETLIGHT_ID, "type": "Streetlight", "scope": "/Milano/Municipio1",
            "powerState": {"value": "on", "observedAt": "2026-11-21T18:00:00Z"},
            "illuminanceLevel": {"value": 0.6, "unitCode": "C62"},
            "refStreetlightGroup": {"object": "urn:ngsi-ld:StreetlightGroup:MI-G01"},
            "location": {"type": "Point", "coordinates": [9.19, 45.46]}}),
        "StreetlightKeyValues": example("The streetlight as key-values", {
            "id": STREETLIGHT_ID, "type": "Streetlight", "scope": "/Milano/Municipio1",
            "powerState": "on", "illuminanceLevel": 0.6,
            "refStreetlightGroup": "urn:ngsi-ld:StreetlightGroup:MI-G01",
            "location": {"type": "Point", "coordinates": [9.19, 45.46]}}),
        "StreetlightFeature": example("The streetlight as a GeoJSON Feature", {
            "id": STREETLIGHT_ID, "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [9.19, 45.46]},
            "properties": {k: v for k, v in light.items() if k != "id"}}),
        "StreetlightFeatures": example("Streetlights as a GeoJSON FeatureCollection", {
            "type": "FeatureCollection", "features": [{
                "id": STREETLIGHT_ID, "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [9.19, 45.46]},
                "properties": {"type": "Streetlight", "powerState": light["powerState"]}}]}),
        "Streetlights": example("Query result: the streetlights that are on", [light]),
        "StreetlightsLd": example("The same as JSON-LD: each entity carries its @context",
                                  [{**light, "@context": [CORE_CONTEXT_URL]}]),
        "TrafficFlow": example("A traffic counter on Viale Monza", _traffic_flow()),
        "LightingAttrs": example("New readings for the streetlight", {
            "powerState": {"type": "Property", "value": "off",
                           "observedAt": "2026-11-22T07:10:00Z"},
            "illuminanceLevel": {"type": "Property", "value": 0.0, "unitCode": "C62"}}),
        "PowerStateFragment": example("Switch the lamp off", {
            "value": "off", "observedAt": "2026-11-22T07:10:00Z"}),
        "PowerStateAttribute": example("The whole powerState attribute", {
            "type": "Property", "value": "off", "observedAt": "2026-11-22T07:10:00Z"}),
        "StreetlightMerge": example("Dim the lamp and drop its group link", {
            "illuminanceLevel": {"type": "Property", "value": 0.3, "unitCode": "C62"},
            "refStreetlightGroup": "urn:ngsi-ld:null"}),
        "CityBatch": example("One streetlight and one traffic counter",
                             [light, _traffic_flow()]),
        "CityBatchIds": example("Ids of the entities created", [STREETLIGHT_ID, TRAFFIC_ID]),
        "CityBatchDelete": example("Ids of the entities to delete",
                                   [STREETLIGHT_ID, TRAFFIC_ID]),
        "CityBatchPartial": example("The streetlight was stored, the counter already existed", {
            "success": [STREETLIGHT_ID],
            "errors": [{"entityId": TRAFFIC_ID, "error": _problem(
                "AlreadyExists", f"Entity {TRAFFIC_ID!r} already exists")}]}),
        "NotUpdated": example("illuminanceLevel kept (options=noOverwrite)", {
            "updated": ["powerState"],
            "notUpdated": [{"attributeName": "illuminanceLevel",
                            "reason": "The attribute exists and options=noOverwrite"}]}),
        "QueryBusyRoads": example("Congested roads within 1 km of the Duomo", {
            "type": "Query", "entities": [{"type": "TrafficFlowObserved"}],
            "attrs": ["intensity", "averageVehicleSpeed"], "q": "intensity>1000",
            "geoQ": {"georel": "near;maxDistance==1000", "geometry": "Point",
                     "coordinates": [9.1919, 45.4642]}}),
        "TypeList": example("Types in the city", {
            "id": "urn:ngsi-ld:EntityTypeList:6f0d0b1e-7d4a-4b8e-9a57-2b1f0c6e1f00",
            "type": "EntityTypeList", "typeList": ["Streetlight", "TrafficFlowObserved"]}),
        "TypeDetails": example("Types with their attributes", [{
            "id": "https://uri.etsi.org/ngsi-ld/default-context/Streetlight",
            "type": "EntityType", "typeName": "Streetlight",
            "attributeNames": ["illuminanceLevel", "location", "powerState"]}]),
        "TypeInfo": example("Streetlights in the city", {
            "id": "https://uri.etsi.org/ngsi-ld/default-context/Streetlight",
            "type": "EntityTypeInfo", "typeName": "Streetlight", "entityCount": 13420,
            "attributeDetails": [{
                "id": "https://uri.etsi.org/ngsi-ld/default-context/powerState",
                "type": "Attribute", "attributeName": "powerState",
                "attributeTypes": ["Property"]}]}),
        "AttributeList": example("Attributes in the city", {
            "id": "urn:ngsi-ld:AttributeList:0b8e44a2-1c1d-4c39-9d3e-5f0a7e2d6c11",
            "type": "AttributeList",
            "attributeList": ["illuminanceLevel", "intensity", "location", "powerState"]}),
        "AttributeDetails": example("Attributes with the types that use them", [{
            "id": "https://uri.etsi.org/ngsi-ld/default-context/intensity",
            "type": "Attribute", "attributeName": "intensity",
            "typeNames": ["TrafficFlowObserved"]}]),
        "AttributeInfo": example("The powerState attribute", {
            "id": "https://uri.etsi.org/ngsi-ld/default-context/powerState",
            "type": "Attribute", "attributeName": "powerState", "attributeCount": 13420,
            "attributeTypes": ["Property"], "typeNames": ["Streetlight"]}),
        "LightingContext": example("The municipality's lighting vocabulary", {
            "@context": {"powerState": "https://smartdatamodels.org/dataModel.Streetlighting/"
                                       "powerState",
                         "Streetlight": "https://smartdatamodels.org/dataModel.Streetlighting/"
                                        "Streetlight"}}),
        "ContextUrls": example("URLs of the contexts", [
            "http://sinergia.comune.example/ngsi-ld/v1/jsonldContexts/"
            "5b1d3c6e-2f0a-4a8b-9c7d-1e2f3a4b5c6d"]),
        "ContextDetails": example("Contexts with details", [{
            "URL": "http://sinergia.comune.example/ngsi-ld/v1/jsonldContexts/"
                   "5b1d3c6e-2f0a-4a8b-9c7d-1e2f3a4b5c6d",
            "localId": "5b1d3c6e-2f0a-4a8b-9c7d-1e2f3a4b5c6d", "kind": "hosted",
            "createdAt": "2026-11-21T09:00:00Z"}]),
        "ContextInfo": example("Details of one hosted context", {
            "URL": "http://sinergia.comune.example/ngsi-ld/v1/jsonldContexts/"
                   "5b1d3c6e-2f0a-4a8b-9c7d-1e2f3a4b5c6d",
            "localId": "5b1d3c6e-2f0a-4a8b-9c7d-1e2f3a4b5c6d", "kind": "hosted",
            "createdAt": "2026-11-21T09:00:00Z"}),
        "Version": example("This server", {"name": "Sinergia", "version": "0.1.0",
                                           "ngsiLd": "ETSI GS CIM 009 V1.8", "docs": "/docs"}),
    }


PROBLEM_EXAMPLES: Final[dict[int, tuple[str, str]]] = {
    400: ("BadRequestData", "q: unexpected character '&' at position 9 of 'intensity&>100'"),
    403: ("TooManyResults", "limit=5000 is above the maximum of 1000; page through the "
          "results with offset"),
    404: ("ResourceNotFound", f"Entity {STREETLIGHT_ID!r} not found"),
    406: ("NotAcceptable", "Accept 'text/csv' names no representation this endpoint produces"),
    409: ("AlreadyExists", f"Entity {STREETLIGHT_ID!r} already exists"),
    413: ("PayloadTooLarge", "The body exceeds the limit of 10485760 bytes"),
    415: ("UnsupportedMediaType", "Content-Type 'text/plain' is not supported; use "
          "application/json or application/ld+json"),
    503: ("LdContextNotAvailable", "The @context https://example.org/ctx.jsonld could not be "
          "retrieved in time"),
}


def problem_example(status: int) -> dict[str, Any]:
    name, detail = PROBLEM_EXAMPLES[status]
    return _problem(name, detail)
